"""SatImp: ascent on the forget answers weighted by saturation ``p^beta1`` and importance ``(1-p)^beta2``.

Loss: ``forget_weight * mean_t [p_t^beta1 (1 - p_t)^beta2 * log p_t] + retain_weight * CE(retain)``,
``p_t = p_theta(y_t | x, y_<t)`` on forget answer tokens, the weight held
constant (Yang et al. 2025, "Exploring Criteria of Loss Reweighting to Enhance
LLM Unlearning", SatImp). Defaults: open-unlearning's SatImp settings
(``beta1`` 5, ``beta2`` 1, forget weight 0.1, retain weight 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, ForgetPlusRetain, RetainTermConfig, setting
from .losses import forward_logits, weighted_ascent


@dataclass
class SatImpConfig(RetainTermConfig):
    """``beta1``: saturation exponent; ``beta2``: importance exponent; term weights."""

    beta1: float = setting(5.0, "saturation exponent")
    beta2: float = setting(1.0, "importance exponent")
    forget_weight: float = setting(0.1, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)


class SatImp(ForgetPlusRetain):
    """Gradient ascent re-weighted by ``p^beta1 (1-p)^beta2``."""

    name = "satimp"
    config_class = SatImpConfig

    def forget_term(self, model, batches, reference):
        forget, cfg = batches["forget"], self.config
        term = weighted_ascent(forward_logits(model, forget), forget["labels"],
                               lambda p: p ** cfg.beta1 * (1 - p) ** cfg.beta2)
        return term, {"forget_satimp": term.item()}
