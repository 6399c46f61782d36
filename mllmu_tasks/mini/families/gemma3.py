"""Gemma 3 (vision): a SigLIP vision tower, an average-pool + RMSNorm + matrix projector, a Gemma 3 text model.

Sizes: 64x64 px images, 8 px patches -> 8x8 = 64 vision tokens (SigLIP: hidden 32, 1 layer, 1 head),
average-pooled 2x2 to ``mm_tokens_per_image`` = 16 (a 4x4 grid, as the projector requires a perfect
square), RMSNorm, then a 32 x 64 projection matrix; Gemma 3 text model (hidden 64, 2 layers: one sliding-window
and one global, 2 query heads of dim 32, 1 KV head, MLP 128); vocabulary 512 BPE tokens + 9 specials.
About 0.1 M parameters.

One image in the prompt is the placeholder ``<start_of_image>``; the processor expands it to
``\\n\\n<start_of_image>`` + ``<image_soft_token>`` * 16 + ``<end_of_image>\\n\\n``.

Chat template: :data:`CHAT_TEMPLATE`, the google/gemma-3-4b-it (and other gemma-3 ``-it``) template, taken
verbatim from two independent public copies of the hub tokenizer config's ``chat_template``: the
Berkeley Function-Calling Leaderboard's Gemma handler (``bfcl/model_handler/local_inference/gemma.py``,
quoting the hub ``tokenizer_config.json``) and a Jinja engine's test "gemma3 tokenizer_config chat template
parses and renders"; transformers' own processor test uses a shortened variant (marked "TODO: add the
real chat template"). It renders ``{{ bos_token }}`` and, as on the hub, the tokenizer also adds ``<bos>``
on encoding, so tokenizing the rendered prompt with default settings gives a doubled ``<bos><bos>``.

Generation config: greedy; ``eos_token_id`` = [``<eos>``, ``<end_of_turn>``] as the hub lists ([1, 106]).
The projection matrix ``mm_input_projection_weight`` is zero-initialised by transformers and is re-drawn.
"""

from __future__ import annotations

from pathlib import Path

from ._common import (greedy_generation_config, hub_vision_layout, init_model, redraw_zero_parameters,
                      save_checkpoint)
from .paligemma import _gemma_tokenizer, _siglip_vision_config, _text_kwargs

MODEL_TYPE = "gemma3"
HUB_EXAMPLES = ("google/gemma-3-4b-it",)

#: Input image side and SigLIP patch side (pixels): 8x8 patches, pooled to TOKENS_PER_IMAGE = 4x4.
IMAGE_SIZE, PATCH_SIZE, TOKENS_PER_IMAGE = 64, 8, 16
BOI, IMAGE_TOKEN, EOI = "<start_of_image>", "<image_soft_token>", "<end_of_image>"

#: The gemma-3 ``-it`` hub chat template, verbatim (see the module docstring for its sources).
CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n"
)


def _processor():
    """``Gemma3Processor``: Gemma 3 image processor (64 px, bilinear, mean/std 0.5, no pan-and-scan, as on the
    hub but smaller), the Gemma tokenizer with the image specials, 16 soft tokens per image, the hub template."""
    from transformers import Gemma3ImageProcessor, Gemma3Processor

    image_processor = Gemma3ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5] * 3,
                                           image_std=[0.5] * 3, do_pan_and_scan=False)
    tokenizer = _gemma_tokenizer((BOI, EOI, IMAGE_TOKEN),
                                 {"boi_token": BOI, "eoi_token": EOI, "image_token": IMAGE_TOKEN}, CHAT_TEMPLATE)
    return Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
                           image_seq_length=TOKENS_PER_IMAGE)


def _config(tokenizer):
    """``Gemma3Config``: SigLIP tower (64 px / 8 px), 16 tokens per image, Gemma 3 text model with one
    sliding-window (512) and one global layer, the tokenizer's image/boi/eoi ids."""
    from transformers import Gemma3Config, Gemma3TextConfig

    text = Gemma3TextConfig(**_text_kwargs(tokenizer), sliding_window=512,
                            layer_types=["sliding_attention", "full_attention"])
    ids = tokenizer.convert_tokens_to_ids
    return Gemma3Config(text_config=text, vision_config=_siglip_vision_config(IMAGE_SIZE, PATCH_SIZE),
                        mm_tokens_per_image=TOKENS_PER_IMAGE, image_token_index=ids(IMAGE_TOKEN),
                        boi_token_index=ids(BOI), eoi_token_index=ids(EOI),
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=[tokenizer.eos_token_id, ids("<end_of_turn>")])


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Gemma 3 checkpoint; ``mm_input_projection_weight`` (zeros in transformers) is re-drawn."""
    from transformers import Gemma3ForConditionalGeneration

    processor = _processor()
    tokenizer = processor.tokenizer
    model = init_model(Gemma3ForConditionalGeneration, _config(tokenizer), seed)
    redraw_zero_parameters(model, ["mm_input_projection_weight"], seed, std=0.1)
    eos_ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]
    return hub_vision_layout(save_checkpoint(model, processor, out_dir, greedy_generation_config(tokenizer, eos_ids)))
