"""Mistral 3 (Mistral Small 3.1): ``Mistral3ForConditionalGeneration`` (Pixtral vision tower) + ``PixtralProcessor``.

Sizes: Mistral text model of :func:`.llava_next.mistral_text_config` (hidden 64, 2
layers, 2 x 32-dim query heads, 1 kv head, SwiGLU 128, untied); Pixtral vision tower
hidden 32, 2 layers, 2 heads of 16 dims (2-D rotary), MLP 128, 8 px patches, images
of at most 64 px on their longest edge; projector ``norm`` (RMS, 32), ``patch_merger``
(2 x 2 patches, 128 -> 32, no bias), ``linear_1`` (32 -> 64), GELU, ``linear_2``
(64 -> 64), no biases (as the hub's ``multimodal_projector_bias=False``).

Image geometry: the image is resized so its longest edge is at most 64 px, each side
rounded up to a multiple of 16 px (patch 8 x merge 2); each 16 x 16 block becomes one
``[IMG]`` token, each row of blocks ends in ``[IMG_BREAK]``, the last row in
``[IMG_END]``. A 64 x 64 image: ``([IMG] * 4 + [IMG_BREAK]) * 3 + [IMG] * 4 + [IMG_END]``
= 20 tokens (of which 16 ``[IMG]``).

Tokenizer: specials ``<unk> <s> </s> [INST] [/INST] [AVAILABLE_TOOLS]
[/AVAILABLE_TOOLS] [TOOL_RESULTS] [/TOOL_RESULTS] [TOOL_CALLS] [IMG] <pad> [IMG_BREAK]
[IMG_END] [PREFIX] [MIDDLE] [SUFFIX] [SYSTEM_PROMPT] [/SYSTEM_PROMPT] [TOOL_CONTENT]``
in the hub's (Tekken) id order, without its ``<SPECIAL_20>`` .. ``<SPECIAL_999>``
fillers; encoding prepends ``<s>`` as the hub tokenizer does. Generation stops at
``</s>``.

Chat template (:data:`CHAT_TEMPLATE`): the template of
``mistralai/Mistral-Small-3.1-24B-Instruct-2503`` as transformers' own tests carry it
(``tests/models/mistral3/test_processing_mistral3.py``, ``prepare_processor_dict``, for
``hf-internal-testing/Mistral-Small-3.1-24B-Instruct-2503-only-processor``); a public
copy of the hub ``chat_template.json`` holds the identical string. Its quirks are the
hub's and are kept: the default system message says "Mistral Small 3" and needs
``strftime_now``; it renders ``{{- bos_token }}`` (so with the tokenizer's own BOS a
rendered prompt encodes two ``<s>`` unless encoded with ``add_special_tokens=False``);
a user turn is ``[INST]{text and [IMG] in content order}[/INST]``, an assistant turn
``{text}</s>``; ``add_generation_prompt`` adds nothing; a first system message must
have list content (``messages[0] is string`` tests the message, not its content).
"""

from __future__ import annotations

from pathlib import Path

from . import _common
from .llava_next import mistral_text_config, mistral_tokenizer

MODEL_TYPE = "mistral3"
HUB_EXAMPLES = ("mistralai/Mistral-Small-3.1-24B-Instruct-2503",)

#: ``mistralai/Mistral-Small-3.1-24B-Instruct-2503`` chat template, verbatim (see the module docstring).
CHAT_TEMPLATE = (
    '{%- set today = strftime_now("%Y-%m-%d") %}\n'
    '{%- set default_system_message = "You are Mistral Small 3, a Large Language Model (LLM) created by '
    'Mistral AI, a French startup headquartered in Paris.\\nYour knowledge base was last updated on '
    '2023-10-01. The current date is " + today + ".\\n\\nWhen you\'re not sure about some information, you '
    "say that you don't have the information and don't make up anything.\\nIf the user's question is not "
    'clear, ambiguous, or does not provide enough context for you to accurately answer the question, you '
    'do not try to answer it right away and you rather ask the user to clarify their request (e.g. '
    '\\"What are some good restaurants around me?\\" => \\"Where are you?\\" or \\"When is the next flight to '
    'Tokyo\\" => \\"Where do you travel from?\\")" %}\n'
    '\n'
    '{{- bos_token }}\n'
    '\n'
    "{%- if messages[0]['role'] == 'system' %}\n"
    '    {%- if messages[0] is string %}\n'
    "        {%- set system_message = messages[0]['content'] %}\n"
    '        {%- set loop_messages = messages[1:] %}\n'
    '    {%- else %} \n'
    "        {%- set system_message = messages[0]['content'][0]['text'] %}\n"
    '        {%- set loop_messages = messages[1:] %}\n'
    '    {%- endif %}\n'
    '{%- else %}\n'
    '    {%- set system_message = default_system_message %}\n'
    '    {%- set loop_messages = messages %}\n'
    '{%- endif %}\n'
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}\n"
    '\n'
    '{%- for message in loop_messages %}\n'
    "    {%- if message['role'] == 'user' %}\n"
    "            {%- if message['content'] is string %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n"
    '            {%- else %}\n'
    "                    {{- '[INST]' }}\n"
    "                    {%- for block in message['content'] %}\n"
    "                            {%- if block['type'] == 'text' %}\n"
    "                                    {{- block['text'] }}\n"
    "                            {%- elif block['type'] == 'image' or block['type'] == 'image_url' %}\n"
    "                                    {{- '[IMG]' }}\n"
    '                                {%- else %}\n'
    "                                    {{- raise_exception('Only text and image blocks are supported "
    "in message content!') }}\n"
    '                                {%- endif %}\n'
    '                        {%- endfor %}\n'
    "                    {{- '[/INST]' }}\n"
    '                {%- endif %}\n'
    "    {%- elif message['role'] == 'system' %}\n"
    "        {{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- if message['content'] is string %}\n"
    "            {{- message['content'] + eos_token }}\n"
    '        {%- else %}\n'
    "            {{- message['content'][0]['text'] + eos_token }}\n"
    '        {%- endif %}\n'
    '    {%- else %}\n'
    "        {{- raise_exception('Only user, system and assistant roles are supported!') }}\n"
    '    {%- endif %}\n'
    '{%- endfor %}'
)
IMAGE_TOKEN, IMAGE_BREAK_TOKEN, IMAGE_END_TOKEN = "[IMG]", "[IMG_BREAK]", "[IMG_END]"
#: Special tokens in the hub tokenizer's id order (after the shared BPE's ids).
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                  "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", IMAGE_TOKEN, "<pad>", IMAGE_BREAK_TOKEN,
                  IMAGE_END_TOKEN, "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                  "[TOOL_CONTENT]")
#: Vision patch side, patch merge factor and longest image edge, in pixels / patches.
PATCH_SIZE, MERGE_SIZE, LONGEST_EDGE = 8, 2, 64


def _config(tokenizer):
    """Mistral3Config: :func:`.llava_next.mistral_text_config` + a tiny Pixtral vision config (last layer's
    features, 2 x 2 patch merge, projector without biases)."""
    from transformers import Mistral3Config, PixtralVisionConfig

    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=LONGEST_EDGE, patch_size=PATCH_SIZE)
    config = Mistral3Config(
        text_config=mistral_text_config(tokenizer, len(tokenizer)), vision_config=vision,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), spatial_merge_size=MERGE_SIZE,
        vision_feature_layer=-1, projector_hidden_act="gelu", multimodal_projector_bias=False,
        tie_word_embeddings=False)
    config.architectures = ["Mistral3ForConditionalGeneration"]
    return config


def _processor(tokenizer):
    """PixtralProcessor: CLIP-normalised images of at most :data:`LONGEST_EDGE` px, one ``[IMG]`` per merged
    16 x 16 block, ``[IMG_BREAK]`` per row, ``[IMG_END]`` last."""
    from transformers import PixtralImageProcessor, PixtralProcessor

    images = PixtralImageProcessor(size={"longest_edge": LONGEST_EDGE},
                                   patch_size={"height": PATCH_SIZE, "width": PATCH_SIZE})
    return PixtralProcessor(image_processor=images, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                            spatial_merge_size=MERGE_SIZE, chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN,
                            image_break_token=IMAGE_BREAK_TOKEN, image_end_token=IMAGE_END_TOKEN)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Mistral 3 (about 0.2 M parameters, random weights from ``seed``) into ``out_dir``."""
    from transformers import Mistral3ForConditionalGeneration

    tokenizer = mistral_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, IMAGE_TOKEN)
    model = _common.init_model(Mistral3ForConditionalGeneration, _config(tokenizer), seed)
    return _common.save_checkpoint(model, _processor(tokenizer), out_dir,
                                   _common.greedy_generation_config(tokenizer))
