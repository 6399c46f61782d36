"""LLaVA-1.5: the package's own tiny LLaVA (:mod:`mllmu_tasks.mini.tiny_vlm`), with the hub chat template.

The llava-hf 1.5 checkpoints' template renders ``USER: <image>\\n{text} ASSISTANT: {answer}</s>`` turns
(``add_generation_prompt`` appends ``ASSISTANT:``).
"""

from __future__ import annotations

from pathlib import Path

MODEL_TYPE = "llava"
HUB_EXAMPLES = ("llava-hf/llava-1.5-7b-hf",)


def build(out_dir: Path, seed: int = 0) -> Path:
    """The test-size tiny LLaVA from :func:`mllmu_tasks.mini.tiny_vlm.build_tiny_vlm`."""
    from ..tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(out_dir, size="test", seed=seed)
