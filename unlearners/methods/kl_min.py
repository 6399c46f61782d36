"""KL_Min: gradient ascent on the forget set; on the retain set, stay close to the vanilla model.

Loss: ``-CE(forget) + CE(retain) + kl_weight * KL(p_ref || p_theta)(retain)``,
the KL divergence over the vocabulary at the retain answers' positions,
against a frozen copy of the model unlearning starts from (the vanilla
model). MLLMU-Bench baseline "KL_Min" (Liu et al. 2025, Sec. 5), following
TOFU's KL method (Maini et al. 2024).

Under ``--protocol released`` (KL_Min.py:356-562): one set per batch, a whole
forget pass then a whole retain pass each epoch; ``-forget_weight * CE`` on a
forget batch; on a retain batch ``retain_weight * CE + kl_weight * KL`` with
the KL summed over every position and the vocabulary and divided by the batch
size (:func:`~unlearners.methods.losses.batchmean_kl`), labels on every non-pad token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, Method, MethodConfig, setting
from .losses import answer_kl, answer_nll, batch_nll, batchmean_kl, forward_logits


@dataclass
class KLMinConfig(MethodConfig):
    """Weights of the terms (dimensionless)."""

    forget_weight: float = setting(1.0, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)
    kl_weight: float = setting(1.0, "weight of the retain set's KL divergence from the reference model "
                                    "(dimensionless; 0: off)")


class KLMin(Method):
    """Forget ascent + retain CE + KL to the frozen reference on retain data."""

    name = "kl_min"
    streams = ("forget", "retain")
    config_class = KLMinConfig
    needs_reference = True

    def loss(self, model, batches, reference):
        if self.released:
            return self._released_loss(model, batches, reference)
        forget, retain = batches["forget"], batches["retain"]
        forget_nll = batch_nll(model, forget)
        logits = forward_logits(model, retain)
        retain_nll = answer_nll(logits, retain["labels"])
        with torch.no_grad():
            reference_logits = reference(retain)
        kl = answer_kl(reference_logits, logits, retain["labels"])
        cfg = self.config
        loss = -cfg.forget_weight * forget_nll + cfg.retain_weight * retain_nll + cfg.kl_weight * kl
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item(), "retain_kl": kl.item()}

    def _released_loss(self, model, batches, reference):
        cfg = self.config
        if "retain" not in batches:
            forget_nll = batch_nll(model, batches["forget"])
            return -cfg.forget_weight * forget_nll, {"forget_nll": forget_nll.item()}
        retain = batches["retain"]
        logits = forward_logits(model, retain)
        retain_nll = answer_nll(logits, retain["labels"])
        with torch.no_grad():
            reference_logits = reference(retain)
        kl = batchmean_kl(reference_logits, logits)
        loss = cfg.retain_weight * retain_nll + cfg.kl_weight * kl
        return loss, {"retain_nll": retain_nll.item(), "retain_kl": kl.item()}
