"""NPO (negative preference optimization) on the forget set.

Loss: ``-(2/beta) * mean_i log sigmoid(-beta * (log p_theta(y_i|x_i) - log p_ref(y_i|x_i)))``
over forget pairs, sequence log-probabilities summed over answer tokens
(Zhang et al. 2024, "Negative Preference Optimization", Eq. 3), plus
``retain_weight * CE(retain)`` when ``retain_weight`` > 0 (their NPO+RT).
At the start, with the reference equal to the model, the forget term is
``(2/beta) * log 2``. The reference is a frozen copy of the model unlearning
starts from (the vanilla model) unless ``--reference_model`` names another
checkpoint (the released MLLMU code used a model trained on retain data
only, beta 0.4).

Under ``--protocol released`` (NPO.py:211-277): the log-ratio is the
difference of the two models' *batch-mean token* cross-entropies over every
non-pad token, one number per batch:
``-(2/beta) * log sigmoid(beta * (CE_theta(batch) - CE_ref(batch)))``, with
the reference given by ``--reference_model`` (a retain-only fine-tune of the
base model) and no retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Method, MethodConfig, setting
from .losses import answer_nll, batch_nll, forward_logits, sequence_logprob


@dataclass
class NPOConfig(MethodConfig):
    """``beta``: inverse temperature (released MLLMU code: 0.4); ``retain_weight``: 0 = plain NPO."""

    beta: float = setting(0.4, "inverse temperature (released MLLMU code: 0.4)")
    retain_weight: float = setting(0.0, "weight of the retain set's answer cross-entropy (0: plain NPO; "
                                        "> 0: NPO+RT)")


class NPO(Method):
    """NPO forget loss against the frozen reference, optional retain CE."""

    name = "npo"
    streams = ("forget", "retain")
    config_class = NPOConfig
    needs_reference = True

    def data_streams(self) -> tuple[str, ...]:
        """Retain data only when its term is on (never under the released protocol, which has none)."""
        return self.streams if self.config.retain_weight > 0 and not self.released else ("forget",)

    def loss(self, model, batches, reference):
        if self.released:
            return self._released_loss(model, batches, reference)
        forget = batches["forget"]
        logp = sequence_logprob(forward_logits(model, forget), forget["labels"])
        with torch.no_grad():
            logp_ref = sequence_logprob(reference(forget), forget["labels"])
        beta = self.config.beta
        npo = -(2.0 / beta) * F.logsigmoid(-beta * (logp - logp_ref)).mean()
        parts = {"forget_npo": npo.item(), "forget_logp": logp.mean().item()}
        loss = npo
        if self.config.retain_weight > 0:
            retain_nll = batch_nll(model, batches["retain"])
            loss = loss + self.config.retain_weight * retain_nll
            parts["retain_nll"] = retain_nll.item()
        return loss, parts

    def _released_loss(self, model, batches, reference):
        forget = batches["forget"]
        nll = answer_nll(forward_logits(model, forget), forget["labels"])
        with torch.no_grad():
            reference_nll = answer_nll(reference(forget), forget["labels"])
        beta = self.config.beta
        npo = -F.logsigmoid(beta * (nll - reference_nll)) * 2.0 / beta
        return npo, {"forget_npo": npo.item(), "forget_nll": nll.item()}
