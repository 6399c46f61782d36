"""MMUnlearner: gradient ascent on the forget set restricted to the weights that matter more to it than to the retain set.

Mask (computed once before training, :meth:`MMUnlearner.prepare`):
``m = 1[(F_forget + 1e-15) / (F_retain + 1e-15) >= threshold]`` per trainable
weight, ``F`` the diagonal Fisher information estimated as the mean over
batches of the squared gradient of the answer cross-entropy, over one pass of
the forget and of the retain set in the training's own batches (Huo et al.
2025, "MMUnlearner: Reformulating Multimodal Machine Unlearning in the Era of
Multimodal Large Language Models", Sec. 3.2, Eq. 4-5; the released
``SFRon.prepare_weight_saliency_mask``).

Loss: ``-forget_weight * CE(forget)`` with its gradient multiplied by ``m``,
``+ retain_weight * CE(retain)`` unmasked (Eq. 6; the released
``MLLMU_manifold.py`` masks only the ascent's gradient). Defaults: the
released settings (threshold 1, both weights 1). The mask covers every
trainable weight (under LoRA the adapters'); the released code builds one for
the language model and one for the vision tower with separate retain data.
The fraction of weights selected goes to the log and the model card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, Method, MethodConfig, setting
from .losses import answer_nll, batch_nll, device_batches, model_inputs

log = logging.getLogger(__name__)


@dataclass
class MMUnlearnerConfig(MethodConfig):
    """``threshold``: Fisher ratio at or above which a weight is unlearned; term weights (dimensionless)."""

    threshold: float = setting(1.0, "Fisher ratio (forget / retain) at or above which a weight is unlearned")
    forget_weight: float = setting(1.0, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)


def diagonal_fisher(model, batches, desc: str = "Fisher") -> dict[int, torch.Tensor]:
    """Mean over ``batches`` of the squared gradient of the answer cross-entropy, per trainable parameter.

    Returns ``{id(parameter): tensor of its shape}``. The model is in eval mode
    meanwhile (no dropout: the mask is deterministic); gradients are cleared after.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    sums = {id(p): torch.zeros_like(p, dtype=torch.float32) for p in params}
    was_training = model.training
    model.eval()
    count = 0
    for batch in tqdm(batches, desc=desc, leave=False):
        model.zero_grad(set_to_none=True)
        batch_nll(model, batch).backward()
        for p in params:
            if p.grad is not None:
                sums[id(p)] += p.grad.detach().float() ** 2
        count += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {key: total / max(count, 1) for key, total in sums.items()}


class MMUnlearner(Method):
    """Masked gradient ascent on forget plus retain descent."""

    name = "mmunlearner"
    streams = ("forget", "retain")
    config_class = MMUnlearnerConfig

    def prepare(self, model, streams, collator, batch_size, device):
        """Compute the saliency mask from one pass over each of the forget and retain sets."""
        model.to(device)
        batches = lambda examples: device_batches(collator, examples, batch_size, device)  # noqa: E731
        forget = diagonal_fisher(model, batches(streams["forget"]), "Fisher, forget set")
        retain = diagonal_fisher(model, batches(streams["retain"]), "Fisher, retain set")
        self.masks = {key: (forget[key] + 1e-15) / (retain[key] + 1e-15) >= self.config.threshold for key in forget}
        selected = sum(int(m.sum()) for m in self.masks.values())
        total = sum(m.numel() for m in self.masks.values())
        self.selected = (selected, total)
        log.warning("MMUnlearner: the mask selects %d of %d trainable weights (%.2f %%)", selected, total,
                    100 * selected / max(total, 1))

    def card_notes(self) -> dict:
        selected, total = getattr(self, "selected", (0, 0))
        return {"mask_selected_weights": selected, "mask_trainable_weights": total,
                "mask_selected_percent": round(100 * selected / total, 4) if total else None}

    def masked_logits(self, model, batch) -> torch.Tensor:
        """Logits (batch, seq, vocab) of ``model`` whose masked-out weights pass no gradient."""
        masked = {name: torch.where(self.masks[id(p)], p, p.detach())
                  for name, p in model.named_parameters() if id(p) in self.masks}
        return torch.func.functional_call(model, masked, args=(), kwargs=model_inputs(batch), strict=False).logits

    def loss(self, model, batches, reference):
        if not hasattr(self, "masks"):
            raise RuntimeError("MMUnlearner: prepare() computes the mask before training (unlearners.api does it)")
        forget = batches["forget"]
        forget_nll = answer_nll(self.masked_logits(model, forget), forget["labels"])
        retain_nll = batch_nll(model, batches["retain"])
        loss = -self.config.forget_weight * forget_nll + self.config.retain_weight * retain_nll
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item()}
