"""RMU (representation misdirection for unlearning): scramble the forget activations at one layer.

Loss: ``mean_t ||h_theta(x_f)_t - c u||^2 / d + alpha * mean_t ||h_theta(x_r)_t - h_ref(x_r)_t||^2 / d``,
``h`` the output of decoder layer ``layer`` of the language model, ``t`` over
answer positions, ``d`` the hidden size, ``u`` a fixed random direction
(uniform in [0, 1)^d, normalised; drawn with ``direction_seed``), ``h_ref`` the frozen
starting model (Li et al. 2024, "The WMDP Benchmark", Sec. 5, Eq. 1-2). Only
the chosen parameters train: by default the MLP down-projections of layers
``layer - 2 .. layer`` (the paper's ``param_ids``), under LoRA their adapters.
Defaults: the paper's Zephyr-7B settings (layer 7, ``c`` 6.5, ``alpha`` 1200).
A model with at most ``layer`` decoder layers uses layer ``(n - 1) // 2``
(logged). Unlike the paper, which averages over every token of raw text, the
terms cover the answer positions, as open-unlearning's RMU does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import torch

from .base import Method, MethodConfig, setting
from .losses import model_inputs, token_mean

log = logging.getLogger(__name__)


@dataclass
class RMUConfig(MethodConfig):
    """``layer``: decoder layer (0-based); ``steering_coeff``: ``c``; ``alpha``: retain weight;
    ``params``: which parameters train (``wmdp``: down-projections of layers layer-2..layer; ``all``; or a
    regular expression on parameter names); ``direction_seed``: of the random direction."""

    layer: int = setting(7, "decoder layer whose activations are steered (0-based)")
    steering_coeff: float = setting(6.5, "c: length of the random direction the forget activations are pushed to")
    alpha: float = setting(1200.0, "weight of the retain activations' distance from the frozen model's")
    params: str = setting("wmdp", "parameters that train: wmdp (down-projections of layers layer-2..layer), "
                                  "all, or a regular expression on parameter names")
    direction_seed: int = setting(0, "seed of the random direction")


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions in ``mask`` of the mean squared difference over the hidden size (scalar).

    ``a``, ``b``: (batch, seq, hidden); ``mask``: (batch, seq) bool.
    """
    return token_mean(((a.float() - b.float()) ** 2).mean(-1)[mask].sum(), mask.sum())


class RMU(Method):
    """Forget activations pushed towards ``c u``, retain activations held at the frozen model's."""

    name = "rmu"
    streams = ("forget", "retain")
    config_class = RMUConfig
    needs_reference = True

    def layer_index(self, model) -> int:
        """The decoder layer used: ``config.layer``, or ``(n - 1) // 2`` for a model with too few layers."""
        layers = model.config.get_text_config().num_hidden_layers
        if self.config.layer < layers:
            return self.config.layer
        chosen = (layers - 1) // 2
        if not getattr(self, "_told", False):
            log.warning("RMU: the model has %d decoder layers, not more than %d; using layer %d",
                        layers, self.config.layer, chosen)
            self._told = True
        return chosen

    def trainable_pattern(self, model) -> str | None:
        """Regular expression of the parameters that train (None: all that are trainable)."""
        if self.config.params == "all":
            return None
        if self.config.params != "wmdp":
            return self.config.params
        layer = self.layer_index(model)
        ids = "|".join(str(i) for i in range(max(0, layer - 2), layer + 1))
        return rf"(^|\.)layers\.({ids})\.mlp\.down_proj\."

    def restrict_trainable(self, model) -> None:
        """Freeze every trainable parameter outside :meth:`trainable_pattern` (language model only).

        Raises:
            ValueError: no trainable parameter matches (names the pattern).
        """
        from ..model import in_language_model

        pattern = self.trainable_pattern(model)
        if pattern is None:
            return
        kept = 0
        for name, param in model.named_parameters():
            keep = bool(re.search(pattern, name)) and in_language_model(name)
            if param.requires_grad and not keep:
                param.requires_grad_(False)
            kept += keep and param.requires_grad
        if not kept:
            raise ValueError(f"RMU: no trainable parameter matches {pattern!r} (set --params all or a pattern)")

    def control_vector(self, hidden: int) -> torch.Tensor:
        """``c u``: (hidden,), ``u`` uniform in [0, 1)^hidden normalised to length 1, drawn with ``direction_seed``."""
        u = torch.rand(hidden, generator=torch.Generator().manual_seed(self.config.direction_seed))
        return u / u.norm() * self.config.steering_coeff

    def loss(self, model, batches, reference):
        layer = self.layer_index(model) + 1  # hidden_states[0] is the embeddings
        forget, retain = batches["forget"], batches["retain"]
        h_forget = model(**model_inputs(forget), output_hidden_states=True).hidden_states[layer]
        target = self.control_vector(h_forget.shape[-1]).to(h_forget.device).expand_as(h_forget)
        forget_term = masked_mse(h_forget, target, forget["labels"] != -100)
        h_retain = model(**model_inputs(retain), output_hidden_states=True).hidden_states[layer]
        h_ref = reference.hidden_states(retain)[layer]
        retain_term = masked_mse(h_retain, h_ref, retain["labels"] != -100)
        loss = forget_term + self.config.alpha * retain_term
        return loss, {"forget_rmu": forget_term.item(), "retain_activation_mse": retain_term.item()}
