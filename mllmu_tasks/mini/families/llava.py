"""LLaVA-1.5: the package's own tiny LLaVA (:mod:`mllmu_tasks.mini.tiny_vlm`), with the hub chat template.

The model, weights (hub layout), tokenizer and ``LlavaProcessor`` are those of
:func:`~mllmu_tasks.mini.tiny_vlm.build_tiny_vlm` at size ``"test"`` (Llama text
model hidden 64 x 2 layers, CLIP vision hidden 32 x 2 layers, 32 x 32 px images
in 8 px patches: one ``<image>`` becomes 16 ``<image>`` tokens; the tokenizer
prepends ``<s>``). Only the chat template differs: the built folder carries
:data:`CHAT_TEMPLATE`, the exact template of ``llava-hf/llava-1.5-7b-hf``.

Source of :data:`CHAT_TEMPLATE`: the llava-1.5 key of ``COMPLEX_CHAT_TEMPLATES``
in huggingface/optimum-intel ``optimum/exporters/openvino/utils.py`` (a table keyed
by the exact template strings the hub checkpoints ship), identical to the
llava-1.5 entry of openvino.genai's chat template fallback map. It renders
``USER: <image>\\n{text} ASSISTANT:`` (each turn: role upper-cased + ``": "``,
then every image as ``<image>\\n``, then every text item + ``" "``; no
``</s>`` after an assistant turn; ``add_generation_prompt`` appends
``ASSISTANT:``; no ``{{ bos_token }}``). Content must be a list of typed items: a
plain-string content renders nothing (hub behaviour).
"""

from __future__ import annotations

from pathlib import Path

MODEL_TYPE = "llava"
HUB_EXAMPLES = ("llava-hf/llava-1.5-7b-hf",)

#: ``llava-hf/llava-1.5-7b-hf`` chat template, verbatim (newlines are real newline characters, as in the hub JSON).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}"
    "{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def build(out_dir: Path, seed: int = 0) -> Path:
    """The test-size tiny LLaVA of :func:`~mllmu_tasks.mini.tiny_vlm.build_tiny_vlm`, re-saved with
    :data:`CHAT_TEMPLATE` on its processor and tokenizer. Returns ``out_dir``."""
    from transformers import AutoProcessor

    from ..tiny_vlm import build_tiny_vlm

    out = build_tiny_vlm(out_dir, size="test", seed=seed)
    processor = AutoProcessor.from_pretrained(out)
    processor.chat_template = CHAT_TEMPLATE
    processor.tokenizer.chat_template = CHAT_TEMPLATE
    processor.save_pretrained(out)
    return out
