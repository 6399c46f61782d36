"""UNDIAL: self-distillation on the forget answers towards the frozen model with the answer token's logit lowered.

Loss: ``forget_weight * mean_t CE(softmax(z_ref,t - beta * onehot(y_t)), p_theta,t) + retain_weight * CE(retain)``,
over forget answer positions ``t``, ``z_ref`` the frozen starting model's logits
(Dong et al. 2024, "UNDIAL: Self-Distillation with Adjusted Logits for Robust
Unlearning in Large Language Models", Eq. 2-3). Defaults: open-unlearning's
UNDIAL settings (``beta`` 10, forget weight 1, retain weight 0). Unlike
open-unlearning, which averages over every position (prompt included), the
loss covers the answer tokens only, as every method here does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, ForgetPlusRetain, RetainTermConfig, setting
from .losses import IGNORE_INDEX, forward_logits, token_mean


@dataclass
class UNDIALConfig(RetainTermConfig):
    """``beta``: how far the answer token's teacher logit is lowered (nats); term weights."""

    beta: float = setting(10.0, "how far the answer token's teacher logit is lowered (nats)")
    forget_weight: float = setting(1.0, FORGET_WEIGHT)
    retain_weight: float = setting(0.0, RETAIN_WEIGHT)


def adjusted_distillation(logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor,
                          beta: float) -> torch.Tensor:
    """UNDIAL's term: cross-entropy from the adjusted teacher distribution, mean over answer positions (nats).

    ``logits``, ``reference_logits``: (batch, seq, vocab); ``labels``: (batch, seq), -100 outside the answer.
    """
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    teacher = reference_logits[:, :-1].float()
    teacher = teacher - beta * F.one_hot(targets.masked_fill(~mask, 0), teacher.shape[-1]).to(teacher.dtype)
    cross = -(torch.softmax(teacher, -1) * torch.log_softmax(logits[:, :-1].float(), -1)).sum(-1)
    return token_mean((cross * mask).sum(), mask.sum())


class UNDIAL(ForgetPlusRetain):
    """Distil the frozen model with the true token's logit lowered by ``beta``."""

    name = "undial"
    config_class = UNDIALConfig
    needs_reference = True

    def forget_term(self, model, batches, reference):
        forget = batches["forget"]
        with torch.no_grad():
            reference_logits = reference(forget)
        term = adjusted_distillation(forward_logits(model, forget), reference_logits, forget["labels"],
                                     self.config.beta)
        return term, {"forget_undial": term.item()}
