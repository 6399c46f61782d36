"""MANU (modality-aware neuron unlearning): training-free pruning of the MLP neurons the forget set uses most.

Liu et al. 2025, "Modality-Aware Neuron Pruning for Unlearning in Multimodal
Large Language Models" (ACL 2025), Sec. 3: four importance functions of a
neuron's activations ``a`` over the tokens of a set — absolute ``mean |a|``,
frequency ``mean 1[a > 0]``, variance ``var a`` and root mean square
``sqrt(mean a^2)`` — compared between the forget and the retain set, per input
modality, and the top fraction of neurons pruned.

This implementation (the released code was not available to this project;
the combination below is ours, the four functions are the paper's):

- neurons: every language-model MLP neuron, i.e. each input channel of an
  ``mlp.down_proj`` (its activation is what the down-projection reads);
- ``ratio_k = I_k(forget) / (I_k(retain) + 1e-8)`` for each function ``k``,
  divided by its median over all neurons (so the four weigh alike), and the
  neuron's score is their mean;
- modality-aware: scores from image+text inputs and from the same questions
  text-only (the image dropped), the neuron's score the larger of the two
  (text-only data gives the text-only score alone);
- the ``fraction`` of neurons with the highest scores is pruned: their
  ``down_proj`` column set to zero, so they contribute nothing.

Tokens: every non-padding position of the question and answer. No training;
the checkpoint is written like any other (the card records how many neurons).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .base import Method, MethodConfig, setting
from .losses import device_batches, model_inputs

log = logging.getLogger(__name__)

#: The four importance functions of the paper, from per-neuron sums over tokens.
IMPORTANCE = ("absolute", "frequency", "variance", "rms")


@dataclass
class MANUConfig(MethodConfig):
    """``fraction``: share of the language model's MLP neurons pruned (0-1)."""

    fraction: float = setting(0.05, "share of the language model's MLP neurons pruned (0-1)")


def mlp_down_projections(model) -> dict[str, torch.nn.Linear]:
    """The language model's MLP down-projections by module name (their inputs are the MLP neurons).

    Raises:
        ValueError: none found.
    """
    from ..model import in_language_model

    found = {name: module for name, module in model.named_modules()
             if re.search(r"(^|\.)mlp\.down_proj$", name) and isinstance(module, torch.nn.Linear)
             and in_language_model(name)}
    if not found:
        raise ValueError(f"MANU: no language-model mlp.down_proj in {type(model).__name__}")
    return found


@torch.no_grad()
def neuron_importance(model, batches, modules: dict[str, torch.nn.Linear], desc: str) -> dict[str, torch.Tensor]:
    """The four importance functions per neuron: ``{module name: (4, neurons)}`` in :data:`IMPORTANCE` order.

    ``batches``: processor batches (their ``attention_mask`` picks the tokens counted).
    """
    sums = {name: torch.zeros(4, m.in_features, dtype=torch.float64) for name, m in modules.items()}
    tokens = {"mask": None, "count": 0}

    def hook(name):
        def record(module, inputs):
            a = inputs[0][tokens["mask"]].double().cpu()  # (tokens, neurons)
            sums[name] += torch.stack([a.abs().sum(0), (a > 0).double().sum(0), a.sum(0), (a * a).sum(0)])
        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in modules.items()]
    was_training = model.training
    model.eval()
    try:
        for batch in tqdm(batches, desc=desc, leave=False):
            tokens["mask"] = batch["attention_mask"].bool()
            tokens["count"] += int(tokens["mask"].sum())
            model(**model_inputs(batch))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    n = max(tokens["count"], 1)
    out = {}
    for name, (absolute, fires, total, squares) in sums.items():
        mean, mean_square = total / n, squares / n
        out[name] = torch.stack([absolute / n, fires / n, (mean_square - mean ** 2).clamp(min=0), mean_square.sqrt()])
    return out


def neuron_scores(forget: dict[str, torch.Tensor], retain: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each neuron's score: the mean over the four functions of its forget/retain ratio over that ratio's median."""
    ratios = {name: forget[name] / (retain[name] + 1e-8) for name in forget}
    medians = torch.cat(list(ratios.values()), dim=1).median(dim=1).values.clamp(min=1e-12)  # (4,)
    return {name: (r / medians[:, None]).mean(0) for name, r in ratios.items()}


class MANU(Method):
    """Score MLP neurons on forget vs retain inputs in both modalities; zero the top fraction."""

    name = "manu"
    streams = ("forget", "retain")
    config_class = MANUConfig
    training_free = True

    def prepare_streams(self, streams):
        """Adds text-only copies of image+text streams (``forget_text``, ``retain_text``)."""
        out = dict(streams)
        for name in ("forget", "retain"):
            if any(ex.image is not None for ex in streams[name]):
                out[f"{name}_text"] = [dataclasses.replace(ex, image=None) for ex in streams[name]]
        return out

    def prepare(self, model, streams, collator, batch_size, device):
        """Score the neurons and prune the top ``fraction`` (in place)."""
        model.to(device)
        modules = mlp_down_projections(model)
        batches = lambda examples: device_batches(collator, examples, batch_size, device)  # noqa: E731
        scores = None
        for suffix in ("", "_text"):
            if f"forget{suffix}" not in streams:
                continue
            stats = [neuron_importance(model, batches(streams[f"{s}{suffix}"]), modules, f"MANU {s}{suffix or ''}")
                     for s in ("forget", "retain")]
            modality = neuron_scores(*stats)
            scores = modality if scores is None else {n: torch.maximum(scores[n], modality[n]) for n in scores}
        self.pruned = prune_top(modules, scores, self.config.fraction)
        total = sum(m.in_features for m in modules.values())
        log.warning("MANU: pruned %d of %d MLP neurons (%.2f %%)", sum(len(v) for v in self.pruned.values()),
                    total, 100 * sum(len(v) for v in self.pruned.values()) / total)

    def card_notes(self) -> dict:
        pruned = getattr(self, "pruned", {})
        return {"pruned_neurons": {name: idx for name, idx in pruned.items() if idx}}

    def loss(self, model, batches, reference):
        raise RuntimeError("MANU is training-free: it edits the model in prepare() and never trains")


@torch.no_grad()
def prune_top(modules: dict[str, torch.nn.Linear], scores: dict[str, torch.Tensor], fraction: float
              ) -> dict[str, list[int]]:
    """Zero the ``down_proj`` columns of the ``round(fraction * neurons)`` highest-scoring neurons (ties: lower
    index first); returns ``{module name: sorted neuron indices}``.

    Raises:
        ValueError: ``fraction`` outside [0, 1].
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"MANU fraction must be in [0, 1], got {fraction}")
    names = list(modules)
    flat = torch.cat([scores[n] for n in names])
    k = round(fraction * flat.numel())
    order = sorted(range(flat.numel()), key=lambda i: (-float(flat[i]), i))[:k]
    offsets, start = {}, 0
    for n in names:
        offsets[n] = (start, start + modules[n].in_features)
        start += modules[n].in_features
    pruned = {n: sorted(i - lo for i in order if lo <= i < hi) for n, (lo, hi) in offsets.items()}
    for n, idx in pruned.items():
        if idx:
            modules[n].weight[:, idx] = 0
    return pruned
