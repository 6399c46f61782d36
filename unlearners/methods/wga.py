"""WGA (weighted gradient ascent): ascent on the forget answers, each token weighted by ``p^beta``.

Loss: ``forget_weight * mean_t [p_t^beta * log p_t] + retain_weight * CE(retain)``,
``p_t = p_theta(y_t | x, y_<t)`` on forget answer tokens, the weight held
constant (no gradient through it) (Wang et al. 2025, "Rethinking LLM
Unlearning Objectives: A Gradient Perspective and Go Beyond", Sec. 4, WGA).
Defaults: open-unlearning's WGA settings (``beta`` 1, both weights 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ForgetPlusRetain, RetainTermConfig, setting
from .losses import forward_logits, weighted_ascent


@dataclass
class WGAConfig(RetainTermConfig):
    """``beta``: exponent of the token weight ``p^beta``; term weights."""

    beta: float = setting(1.0, "exponent of the token weight p^beta")


class WGA(ForgetPlusRetain):
    """Gradient ascent re-weighted towards the tokens the model still predicts well."""

    name = "wga"
    config_class = WGAConfig

    def forget_term(self, model, batches, reference):
        forget = batches["forget"]
        term = weighted_ascent(forward_logits(model, forget), forget["labels"], lambda p: p ** self.config.beta)
        return term, {"forget_wga": term.item()}
