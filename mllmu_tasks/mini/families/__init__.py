"""Tiny, randomly initialised checkpoints of every major VLM family, built offline (issue 12).

One module per architecture (named by its transformers ``model_type``), each
exposing:

- ``MODEL_TYPE``: the ``config.model_type`` it writes;
- ``HUB_EXAMPLES``: real hub checkpoints of the family (for the README table);
- ``build(out_dir, seed=0) -> Path``: writes a checkpoint folder that reloads
  offline through ``AutoModelForImageTextToText`` and ``AutoProcessor``:
  the family's own model and processor classes at test size (a few hundred
  thousand parameters), random weights from ``seed``, a byte-level BPE
  tokenizer trained on the embedded mini benchmark with the family's special
  tokens (:mod:`._common`), the chat template the family's hub checkpoints
  ship, and weights where the image reaches the text (zero-initialised gates
  and projectors are re-drawn), so changing the image changes the logits.

:func:`build_family` dispatches by name; :data:`FAMILIES` lists them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

#: Architectures with a tiny builder, by ``model_type``.
FAMILIES = ("llava", "llava_next", "idefics2", "idefics3", "qwen2_vl", "qwen2_5_vl", "mllama", "paligemma",
            "gemma3", "internvl", "mistral3")


def family_module(name: str):
    """The builder module of family ``name``.

    Raises:
        ValueError: ``name`` is not one of :data:`FAMILIES`.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown VLM family {name!r}; expected one of {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{name}")


def build_family(name: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny checkpoint of family ``name`` into ``out_dir`` (see the module docstring); return its path."""
    return family_module(name).build(Path(out_dir), seed=seed)
