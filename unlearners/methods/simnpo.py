"""SimNPO: reference-free, length-normalised NPO on the forget set, with a retain term.

Loss: ``forget_weight * -(2/beta) * mean_i log sigmoid(-(beta/|y_i|) log p_theta(y_i|x_i) - gamma)
+ retain_weight * CE(retain)`` (Fan et al. 2024, "Simplicity Prevails: Rethinking
Negative Preference Optimization for LLM Unlearning", Eq. 4 with the retain
regulariser of Sec. 4), ``|y|`` the answer's token count, ``log p`` summed over
its tokens. Defaults: open-unlearning's SimNPO settings for TOFU
(``beta`` 4.5, margin ``gamma`` 0 — their ``delta`` —, forget weight 0.125 —
their ``gamma`` —, retain weight 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, ForgetPlusRetain, RetainTermConfig, setting
from .losses import answer_lengths, forward_logits, sequence_logprob


@dataclass
class SimNPOConfig(RetainTermConfig):
    """``beta``: inverse temperature; ``gamma``: reward margin (nats per token); term weights."""

    beta: float = setting(4.5, "inverse temperature")
    gamma: float = setting(0.0, "reward margin (nats per token)")
    forget_weight: float = setting(0.125, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)


class SimNPO(ForgetPlusRetain):
    """Length-normalised NPO without a reference model."""

    name = "simnpo"
    config_class = SimNPOConfig

    def forget_term(self, model, batches, reference):
        forget = batches["forget"]
        logp = sequence_logprob(forward_logits(model, forget), forget["labels"])
        per_token = logp / answer_lengths(forget["labels"]).clamp(min=1)
        beta = self.config.beta
        term = -(2.0 / beta) * F.logsigmoid(-beta * per_token - self.config.gamma).mean()
        return term, {"forget_simnpo": term.item(), "forget_logp_per_token": per_token.mean().item()}
