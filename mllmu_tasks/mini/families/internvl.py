"""InternVL (transformers-native, ``InternVLForConditionalGeneration``): InternViT tower, pixel-shuffle MLP projector,
Qwen2 text model; the layout of the ``OpenGVLab/InternVL3-*-hf`` checkpoints at test size.

Sizes: 56x56 images, 7x7 vision patches (8x8 = 64 patches; the CLS token is dropped), pixel shuffle by 0.5 to
4x4 = 16 image tokens of 4 * 32 = 128 features, projected to the 64-wide text model. Tiling (``crop_to_patches``,
which the processor switches on by default) is capped at one tile (``max_patches=1``), so one image is always
``<img>`` + 16 x ``<IMG_CONTEXT>`` + ``</img>``.

Tokenizer: like the hub's (Qwen2.5-VL's tokenizer plus the InternVL specials): no BOS is added, EOS and end of turn
is ``<|im_end|>``, padding ``<|endoftext|>``; ``<img>``, ``</img>``, ``<IMG_CONTEXT>`` and ``<video>`` are named as
``start_image_token``/``end_image_token``/``context_image_token``/``video_token`` (the processor reads them). Of
Qwen's own specials only ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>`` are kept.

Chat template: :data:`CHAT_TEMPLATE`, the ``chat_template`` constant of transformers'
``models/internvl/convert_internvl_weights_to_hf.py`` (the revision that writes ``<IMG_CONTEXT>`` and ``<video>``
placeholders, as mirrored on GitHub), which the conversion saves into the ``-hf`` checkpoints; transformers'
InternVL integration tests prompt with the same rendering (``<|im_start|>user\\n<IMG_CONTEXT>\\n...``).
"""

from __future__ import annotations

from pathlib import Path

from ._common import (TEXT_SIZES, greedy_generation_config, init_model, make_tokenizer, redraw_zero_parameters,
                      save_checkpoint)

MODEL_TYPE = "internvl"
HUB_EXAMPLES = ("OpenGVLab/InternVL3-1B-hf", "OpenGVLab/InternVL3-8B-hf")

#: The ``-hf`` checkpoints' chat template (see the module docstring for its source).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}"
    "{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}"
    "{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{'<|im_end|>\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{'<|im_start|>assistant\n' }}"
    "{% endif %}"
)

#: Named InternVL specials, as the hub tokenizer records them (``InternVLProcessor`` reads these attributes).
NAMED_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}
#: Special tokens in the hub's id order (Qwen's first, then InternVL's; ``<video>`` last).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<quad>",
                  "</quad>", "<ref>", "</ref>", "<box>", "</box>", "<video>")

IMAGE_SIZE = 56  # pixels per side
PATCH_SIZE = 7  # vision patch side: 8x8 patches
DOWNSAMPLE_RATIO = 0.5  # pixel shuffle: 8x8 patches -> 4x4 tokens
IMAGE_SEQ_LENGTH = int((IMAGE_SIZE // PATCH_SIZE * DOWNSAMPLE_RATIO) ** 2)  # 16 <IMG_CONTEXT> per image
#: ImageNet normalisation, as the hub's image processor uses.
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_tokenizer():
    """The tiny Qwen2-style tokenizer: shared BPE + :data:`SPECIAL_TOKENS`, no BOS, :data:`CHAT_TEMPLATE`."""
    return make_tokenizer(SPECIAL_TOKENS, bos=None, eos="<|im_end|>", pad="<|endoftext|>", add_bos=False,
                          chat_template=CHAT_TEMPLATE, extra_special_tokens=NAMED_TOKENS)


def build_config(tokenizer):
    """``InternVLConfig``: vision hidden 32 x 1 layer (2 heads), Qwen2 text hidden 64 x 2 layers (2 heads of 32,
    1 KV head), tied embeddings as in InternVL3-1B, ``image_token_id`` = ``<IMG_CONTEXT>``."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    ids = tokenizer.convert_tokens_to_ids
    vision = InternVLVisionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                  image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, attention_bias=True)
    text = Qwen2Config(vocab_size=len(tokenizer), **TEXT_SIZES,
                       bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                       pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=True)
    return InternVLConfig(vision_config=vision, text_config=text, image_token_id=ids("<IMG_CONTEXT>"),
                          image_seq_length=IMAGE_SEQ_LENGTH, downsample_ratio=DOWNSAMPLE_RATIO,
                          tie_word_embeddings=True)


def build_processor(tokenizer):
    """``InternVLProcessor``: ``GotOcr2ImageProcessor`` at 56x56 with at most one tile, ``InternVLVideoProcessor``
    at the same size, :data:`IMAGE_SEQ_LENGTH` context tokens per image."""
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    norm = {"image_mean": list(IMAGE_MEAN), "image_std": list(IMAGE_STD)}
    image_processor = GotOcr2ImageProcessor(size=size, crop_to_patches=False, min_patches=1, max_patches=1, **norm)
    video_processor = InternVLVideoProcessor(size=size, **norm)
    return InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                             image_seq_length=IMAGE_SEQ_LENGTH, chat_template=CHAT_TEMPLATE)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny InternVL checkpoint to ``out_dir``: random weights from ``seed``, with the vision tower's
    zero-initialised CLS token and position embeddings re-drawn; greedy decoding stopping at ``<|im_end|>``."""
    from transformers import InternVLForConditionalGeneration

    tokenizer = build_tokenizer()
    model = init_model(InternVLForConditionalGeneration, build_config(tokenizer), seed)
    redraw_zero_parameters(model, ("vision_tower.embeddings.cls_token", "vision_tower.embeddings.position_embeddings"),
                           seed)
    generation = greedy_generation_config(tokenizer, eos_ids=[tokenizer.convert_tokens_to_ids("<|im_end|>")])
    generation.bos_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return save_checkpoint(model, build_processor(tokenizer), out_dir, generation)
