"""Qwen2.5-VL: ``Qwen2_5_VLForConditionalGeneration`` + ``Qwen2_5_VLProcessor`` at test size.

Same layout, tokenizer conventions, image-token expansion, generation config and chat template as
:mod:`.qwen2_vl` (built by its :func:`~.qwen2_vl._build_qwen_vl`): Qwen/Qwen2.5-VL-7B-Instruct ships the
Qwen2-VL ``chat_template.json`` unchanged (the same string appears as a "Qwen2.5-VL default template" in
public fine-tuning code). Differences: the vision tower uses RMSNorm, a SiLU-gated MLP and window attention
(``fullatt_block_indexes`` marks the full-attention blocks), its merger (``model.visual.merger.*``, also
inside the vision tower) has an RMSNorm ``ln_q`` without bias; the tokenizer also carries the Qwen2.5 tool/FIM
added tokens (hub ids 151657..151664).
"""

from __future__ import annotations

from pathlib import Path

from .qwen2_vl import SPECIAL_TOKENS as QWEN2_SPECIAL_TOKENS
from .qwen2_vl import _build_qwen_vl

MODEL_TYPE = "qwen2_5_vl"
HUB_EXAMPLES = ("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct")

#: Qwen2.5 special/added tokens in hub id order (151643..151664).
SPECIAL_TOKENS = QWEN2_SPECIAL_TOKENS + ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
                                         "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")
#: Vision tower: width 32, 2 blocks of 1 head (head_dim 32), MLP 64; block 1 full attention, block 0
#: windowed (112 px windows = the whole of a <= 112 px image); merger 4*32 -> 64 (the text width).
VISION = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=1, out_hidden_size=64,
              fullatt_block_indexes=[1], window_size=112, tokens_per_second=2)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Tiny Qwen2.5-VL (about 0.2 M parameters) into ``out_dir``; see the module docstring."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    return _build_qwen_vl(out_dir, seed, config_cls=Qwen2_5_VLConfig, model_cls=Qwen2_5_VLForConditionalGeneration,
                          processor_cls=Qwen2_5_VLProcessor, vision=VISION, specials=SPECIAL_TOKENS)
