"""Qwen2-VL: ``Qwen2VLForConditionalGeneration`` + ``Qwen2VLProcessor`` at test size.

Layout (as on the hub): ``model.visual`` is the ViT *including* the patch merger / projector
(``model.visual.merger.*``), ``model.language_model`` the Qwen2 decoder with M-RoPE, ``lm_head`` untied
(as Qwen2-VL-7B). One image becomes ``<|vision_start|>`` + ``<|image_pad|>`` * N + ``<|vision_end|>``,
N = (H/14)*(W/14)/4 after the processor's ``smart_resize``; here min/max pixels bound every image to
56x56..112x112 px, i.e. 4..16 image tokens (a 64x64 image -> 56x56 -> 4 tokens).

Tokenizer: no BOS is added (Qwen tokenizers have ``bos_token=None``); eos ``<|im_end|>``, pad ``<|endoftext|>``.
Generation config: greedy, eos ``[<|im_end|>, <|endoftext|>]`` as the hub ``generation_config.json``
(``[151645, 151643]``), bos/pad ``<|endoftext|>``.

Chat template: the hub ``chat_template.json`` of Qwen/Qwen2-VL-7B-Instruct (also shipped by
Qwen/Qwen2.5-VL-7B-Instruct), copied from the "qwen2-vl-instruct" entry of ``COMPLEX_CHAT_TEMPLATES`` in
huggingface/optimum-intel ``optimum/exporters/openvino/utils.py`` (identical strings in several Qwen2/2.5-VL
fine-tuning repositories). It adds the default system turn and ends every message with ``<|im_end|>\\n``.

:func:`_build_qwen_vl` is shared with :mod:`.qwen2_5_vl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import greedy_generation_config, init_model, make_tokenizer, save_checkpoint

MODEL_TYPE = "qwen2_vl"
HUB_EXAMPLES = ("Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2-VL-2B-Instruct")

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

#: Qwen2 special tokens in hub id order (151643..151656).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
#: Image processor bounds (pixels): 56x56 .. 112x112, i.e. 4..16 image tokens per image.
MIN_PIXELS, MAX_PIXELS = 56 * 56, 112 * 112
#: Text decoder: hidden 64, 2 layers, 2 heads of 32 (1 KV head); M-RoPE sections sum to head_dim / 2.
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=2048, max_window_layers=2,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]})
#: Vision tower: width 32, 1 block of 1 head (head_dim 32), 14 px patches, 2x2 merge into the text width.
VISION = dict(depth=1, embed_dim=32, hidden_size=64, num_heads=1, mlp_ratio=2)


def _tokenizer(specials: Sequence[str]):
    """The Qwen tokenizer: shared BPE + ``specials``; no BOS, eos ``<|im_end|>``, pad ``<|endoftext|>``."""
    return make_tokenizer(specials, bos=None, eos="<|im_end|>", pad="<|endoftext|>", add_bos=False,
                          chat_template=CHAT_TEMPLATE)


def _processor(processor_cls: type, tokenizer):
    """``processor_cls`` around ``tokenizer`` with image and video processors bounded to MIN/MAX_PIXELS."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    bounds = dict(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    return processor_cls(image_processor=Qwen2VLImageProcessor(**bounds), tokenizer=tokenizer,
                         video_processor=Qwen2VLVideoProcessor(**bounds), chat_template=CHAT_TEMPLATE)


def _config(config_cls: type, tokenizer, vision: dict[str, Any]):
    """``config_cls`` with :data:`TEXT`, ``vision`` and the vision/special token ids of ``tokenizer``."""
    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    text = dict(TEXT, vocab_size=len(tokenizer), bos_token_id=eot, eos_token_id=ids("<|im_end|>"), pad_token_id=eot)
    return config_cls(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                      video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                      vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False)


def _build_qwen_vl(out_dir: Path, seed: int, *, config_cls: type, model_cls: type, processor_cls: type,
                   vision: dict[str, Any], specials: Sequence[str] = SPECIAL_TOKENS) -> Path:
    """Build and save one Qwen-VL-style checkpoint (shared by Qwen2-VL and Qwen2.5-VL).

    Args:
        vision: the family's vision-config fields (output width must be the text hidden size, 64).
        specials: special tokens in hub id order.
    """
    tokenizer = _tokenizer(specials)
    model = init_model(model_cls, _config(config_cls, tokenizer, vision), seed)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    generation = greedy_generation_config(tokenizer, eos_ids=[tokenizer.eos_token_id, eot])
    generation.bos_token_id = eot
    return save_checkpoint(model, _processor(processor_cls, tokenizer), out_dir, generation)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Tiny Qwen2-VL (about 0.2 M parameters) into ``out_dir``; see the module docstring."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    return _build_qwen_vl(out_dir, seed, config_cls=Qwen2VLConfig, model_cls=Qwen2VLForConditionalGeneration,
                          processor_cls=Qwen2VLProcessor, vision=VISION)
