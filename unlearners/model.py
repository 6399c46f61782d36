"""Loading the model, choosing what trains (LoRA or full, frozen parts), and the frozen reference."""

from __future__ import annotations

import contextlib
import copy
import re

import torch

from .config import ModelArguments
from .methods.base import Reference
from .methods.losses import model_inputs

#: Name fragments of the vision encoder and of the vision-to-text projector across VLM families.
VISION_PARTS = ("vision_tower", "vision_model", "visual")
PROJECTOR_PARTS = ("multi_modal_projector", "mm_projector", "connector", "merger")


def pick_dtype(requested: str = "auto") -> torch.dtype:
    """``auto``: bfloat16 on a GPU that supports it, float32 otherwise (CPU training is fp32)."""
    if requested != "auto":
        return getattr(torch, requested)
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model(args: ModelArguments, path: str | None = None, dtype: torch.dtype = torch.float32):
    """``(model, processor)`` from ``path`` (default ``args.model``) through the Auto classes.

    Raises:
        ValueError: the checkpoint is not an image-text-to-text model (names its type).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    path = path or args.model
    remote = args.trust_remote_code
    model_type = AutoConfig.from_pretrained(path, trust_remote_code=remote).model_type
    if not remote and model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ValueError(f"{path!r} is a {model_type!r} model, not a vision-language (image-text-to-text) model")
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, trust_remote_code=remote)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=remote)
    return model, processor


def _in_part(name: str, parts: tuple[str, ...]) -> bool:
    return any(re.search(rf"(^|\.){p}(\.|$)", name) for p in parts)


def in_language_model(name: str) -> bool:
    """Whether a parameter or module name is outside the vision tower and the projector."""
    return not _in_part(name, VISION_PARTS + PROJECTOR_PARTS)


def language_model_linear_names(model) -> list[str]:
    """Qualified names of the language model's ``nn.Linear`` layers (not vision, projector or ``lm_head``).

    Raises:
        ValueError: none found.
    """
    names = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and in_language_model(name)
             and not name.endswith("lm_head")]
    if not names:
        raise ValueError(f"no language-model linear layer found in {type(model).__name__}")
    return names


def apply_lora(model, args: ModelArguments, gaussian_init: bool = False):
    """Wrap ``model`` with LoRA adapters on every language-model linear layer (released MLLMU settings).

    ``gaussian_init``: peft's ``init_lora_weights="gaussian"`` (the released
    scripts), else peft's default. Returns the ``peft.PeftModel``; only the adapters train.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=language_model_linear_names(model), bias="none",
                        init_lora_weights="gaussian" if gaussian_init else True)
    return get_peft_model(model, config)


def is_frozen_part(name: str, freeze_vision_tower: bool, freeze_projector: bool) -> bool:
    """Whether parameter ``name`` is frozen: the projector follows ``freeze_projector`` alone, even where it
    lives inside the vision tower module (Qwen2-VL/2.5-VL's ``visual.merger``); the rest of the tower follows
    ``freeze_vision_tower``."""
    if _in_part(name, PROJECTOR_PARTS):
        return freeze_projector
    return freeze_vision_tower and _in_part(name, VISION_PARTS)


def freeze_parts(model, args: ModelArguments) -> None:
    """Full fine-tuning: freeze the vision tower and/or the projector as asked (in place)."""
    for name, param in model.named_parameters():
        if is_frozen_part(name, args.freeze_vision_tower, args.freeze_projector):
            param.requires_grad_(False)


class FrozenReference:
    """The frozen reference model: ``reference(batch)`` -> logits (batch, seq, vocab), no gradients.

    ``reference.hidden_states(batch)`` gives the per-layer hidden states
    (``output_hidden_states``: a tuple of (batch, seq, hidden), embeddings
    first) for activation-level methods (RMU). ``adapters_off``: the model is a
    PEFT model whose adapters are switched off for each call (its base weights).
    """

    def __init__(self, model, adapters_off: bool = False):
        self.model, self.adapters_off = model, adapters_off

    def _forward(self, batch: dict, **kwargs):
        with torch.no_grad(), (self.model.disable_adapter() if self.adapters_off else contextlib.nullcontext()):
            return self.model(**model_inputs(batch), **kwargs)

    def __call__(self, batch: dict) -> torch.Tensor:
        return self._forward(batch).logits

    def hidden_states(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Per-layer hidden states of the reference: (layers + 1) x (batch, seq, hidden)."""
        return self._forward(batch, output_hidden_states=True).hidden_states


def frozen_copy_reference(model, device) -> Reference:
    """Reference = a frozen copy of ``model`` as it is now (the vanilla model), on ``device``."""
    return FrozenReference(copy.deepcopy(model).to(device).eval().requires_grad_(False))


def adapter_disabled_reference(peft_model) -> Reference:
    """Reference = the LoRA model with its adapters switched off (the base weights: no extra memory)."""
    return FrozenReference(peft_model, adapters_off=True)
