"""IdkDPO: DPO that prefers a refusal over the true answer on the forget set, against the frozen model.

Loss: ``forget_weight * -(2/beta) * mean_i log sigmoid(beta * [(log p_theta(r_i|x_i) - log p_ref(r_i|x_i))
- (log p_theta(y_i|x_i) - log p_ref(y_i|x_i))]) + retain_weight * CE(retain)``,
``r`` the refusal (:mod:`unlearners.methods.refusals`), ``y`` the true answer,
log-probabilities summed over answer tokens, the reference the frozen starting
model (Rafailov et al. 2023, Eq. 7, with TOFU's refusals as the preferred
answers, Maini et al. 2024; Zhang et al. 2024, Sec. 5). Defaults:
open-unlearning's DPO settings (``beta`` 0.1, both weights 1). At the start
(model = reference) the forget term is ``(2/beta) log 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import ForgetPlusRetain, RetainTermConfig, setting
from .losses import forward_logits, sequence_logprob
from .refusals import with_refusals


@dataclass
class IdkDPOConfig(RetainTermConfig):
    """``beta``: inverse temperature of the preference; term weights."""

    beta: float = setting(0.1, "inverse temperature of the preference (DPO's beta)")


class IdkDPO(ForgetPlusRetain):
    """Refusal preferred, true answer dispreferred, relative to the frozen model."""

    name = "idk_dpo"
    streams = ("forget", "forget_idk", "retain")
    config_class = IdkDPOConfig
    needs_reference = True
    aligned_streams = ("forget_idk",)

    def data_streams(self) -> tuple[str, ...]:
        """The forget and retain sets as loaded (the refusal stream is made from the forget set)."""
        return ("forget", "retain") if self.config.retain_weight > 0 else ("forget",)

    def prepare_streams(self, streams):
        """Adds ``forget_idk``: the forget examples in the same order, answered with refusals."""
        return {"forget": streams["forget"], "forget_idk": with_refusals(streams["forget"]),
                **{name: ex for name, ex in streams.items() if name != "forget"}}

    def _log_ratio(self, model, batch, reference) -> torch.Tensor:
        logp = sequence_logprob(forward_logits(model, batch), batch["labels"])
        with torch.no_grad():
            logp_ref = sequence_logprob(reference(batch), batch["labels"])
        return logp - logp_ref

    def forget_term(self, model, batches, reference):
        preferred = self._log_ratio(model, batches["forget_idk"], reference)
        rejected = self._log_ratio(model, batches["forget"], reference)
        beta = self.config.beta
        term = -(2.0 / beta) * F.logsigmoid(beta * (preferred - rejected)).mean()
        return term, {"forget_idk_dpo": term.item(), "refusal_log_ratio": preferred.mean().item(),
                      "answer_log_ratio": rejected.mean().item()}
