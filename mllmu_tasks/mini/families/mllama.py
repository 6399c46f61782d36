"""Llama 3.2 Vision: ``MllamaForConditionalGeneration`` + ``MllamaProcessor`` at test size.

Layout (as on the hub): ``model.vision_model`` is the tiled ViT (a local encoder, then gated "global"
layers; its output concatenates the last hidden state with :data:`VISION` ``intermediate_layers_indices``
states, width ``vision_output_dim`` = 32 * 3 = 96), ``model.multi_modal_projector`` one ``Linear(96, 64)``
outside the vision tower, ``model.language_model`` a Llama decoder of 3 layers whose layer 1 is a gated
cross-attention layer (the image reaches the text only there: there are no image tokens in the sequence),
``lm_head`` untied.

Images: each image is resized to fit a canvas of at most :data:`MAX_TILES` = 2 tiles of :data:`TILE` = 32 px
(aspect ratios 1x1, 1x2, 2x1) and padded; ``pixel_values`` is ``(batch, images, 2, 3, 32, 32)``. One tile gives
(32/8)^2 + 1 = 17 vision states, so one image gives 2 * 17 = 34 cross-attention key/value states (padding tiles
are masked). In the text ``<|image|>`` stays ONE token (no expansion); the processor also returns
``aspect_ratio_ids`` ``(batch, images)``, ``aspect_ratio_mask`` ``(batch, images, 2)`` and
``cross_attention_mask`` ``(batch, seq, images, 2)`` (text from the ``<|image|>`` token on attends to it).

Tokenizer: the hub's Llama 3 special tokens 128000..128010 in hub order, then ``<|image|>`` (the hub's 245
further reserved tokens are left out). As on the hub, ``<|image|>`` is the last id and equals
``text_config.vocab_size`` (= ``config.image_token_index``): it lives in the extra rows of
``embed_tokens`` (``vocab_size + 8``) and the LM head cannot emit it. Encoding prepends
``<|begin_of_text|>`` (as the hub tokenizer); eos ``<|eot_id|>``, pad ``<|finetune_right_pad_id|>``.
Generation config: greedy, eos ``[<|end_of_text|>, <|eom_id|>, <|eot_id|>]`` and pad
``<|finetune_right_pad_id|>`` as the hub ``generation_config.json`` (``[128001, 128008, 128009]``, 128004).

Chat template: the hub chat template of meta-llama/Llama-3.2-11B-Vision-Instruct, copied from the
``llama3_2visionChatTemplate`` string in johnmai-dev/Jinja ``Tests/Templates/VisionTests.swift`` (identical
text in NVIDIA NeMo's ``MLlamaTemplateConfig``). It renders ``{{- bos_token }}`` first, a default system turn
(knowledge cut-off, date) only when no message holds an image, and ends every message with ``<|eot_id|>``.

Zero-initialised parameters re-drawn: the text cross-attention gates (``cross_attn_attn_gate``,
``cross_attn_mlp_gate``) and the vision tower's tile/position embedding gates.
"""

from __future__ import annotations

from pathlib import Path

from ._common import greedy_generation_config, init_model, make_tokenizer, redraw_zero_parameters, save_checkpoint

MODEL_TYPE = "mllama"
HUB_EXAMPLES = ("meta-llama/Llama-3.2-11B-Vision-Instruct", "meta-llama/Llama-3.2-90B-Vision-Instruct")

IMAGE_TOKEN = "<|image|>"
#: Llama 3 special tokens in hub id order (128000..128010), then ``<|image|>`` (hub id 128256).
SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", IMAGE_TOKEN)
#: End-of-sequence tokens of the hub generation config.
EOS_TOKENS = ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")

# The hub template has six spaces after the ``namespace(...)`` tag; they are kept outside the raw strings.
CHAT_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- Find out if there are any images #}
{% set image_ns = namespace(has_images=false) %}""" + "      \n" + r"""{%- for message in messages %}
    {%- for content in message['content'] %}
        {%- if content['type'] == 'image' %}
            {%- set image_ns.has_images = true %}
        {%- endif %}
    {%- endfor %}
{%- endfor %}

{#- Error out if there are images and system message #}
{%- if image_ns.has_images and not system_message == "" %}
    {{- raise_exception("Prompting with images is incompatible with system messages.") }}
{%- endif %}

{#- System message if there are no images #}
{%- if not image_ns.has_images %}
    {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
    {%- if tools is not none %}
        {{- "Environment: ipython\n" }}
    {%- endif %}
    {{- "Cutting Knowledge Date: December 2023\n" }}
    {{- "Today Date: " + date_string + "\n\n" }}
    {%- if tools is not none and not tools_in_user_message %}
        {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
        {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
        {{- "Do not use variables.\n\n" }}
        {%- for t in tools %}
            {{- t | tojson(indent=4) }}
            {{- "\n\n" }}
        {%- endfor %}
    {%- endif %}
    {{- system_message }}
    {{- "<|eot_id|>" }}
{%- endif %}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}
        {%- if message['content'] is string %}
            {{- message['content'] }}
        {%- else %}
            {%- for content in message['content'] %}
                {%- if content['type'] == 'image' %}
                    {{- '<|image|>' }}
                {%- elif content['type'] == 'text' %}
                    {{- content['text'] }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

#: Tile side (px), ViT patch side (px) and tiles per image: 17 vision states per tile (not a multiple of 8,
#: which the Mllama vision mask needs), 34 per image.
TILE, PATCH, MAX_TILES = 32, 8, 2
#: OpenAI CLIP normalisation, as the hub ``preprocessor_config.json``.
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
#: Text decoder: hidden 64, 2 self-attention layers around 1 cross-attention layer, 2 heads of 32 (1 KV head),
#: Llama 3.1 RoPE scaling as on the hub (original context scaled down to 1024 < 2048 positions).
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, cross_attention_layers=[1],
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048, rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 1024})
#: Vision tower: width 32, 2 local + 1 global layer of 1 head (head_dim 32); output = last state + 2 intermediate.
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_global_layers=1, attention_heads=1,
              image_size=TILE, patch_size=PATCH, max_num_tiles=MAX_TILES, intermediate_layers_indices=[0, 1],
              vision_output_dim=32 * 3, supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]])
#: Parameters the architecture initialises to zero on the image path (text gates, vision tile/position gates).
ZERO_INIT = ("cross_attn_attn_gate", "cross_attn_mlp_gate", "gated_positional_embedding.gate",
             "pre_tile_positional_embedding.gate", "post_tile_positional_embedding.gate")


def _tokenizer():
    """Shared BPE + :data:`SPECIAL_TOKENS` (``<|image|>`` last); adds ``<|begin_of_text|>``, eos ``<|eot_id|>``."""
    return make_tokenizer(SPECIAL_TOKENS, bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                          add_bos=True, chat_template=CHAT_TEMPLATE)


def _config(tokenizer):
    """``MllamaConfig`` of :data:`TEXT` and :data:`VISION`; text ``vocab_size`` = the ``<|image|>`` id (as hub)."""
    from transformers import MllamaConfig

    ids = tokenizer.convert_tokens_to_ids
    image_id = ids(IMAGE_TOKEN)
    text = dict(TEXT, vocab_size=image_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=[ids(t) for t in EOS_TOKENS], pad_token_id=tokenizer.pad_token_id)
    config = MllamaConfig(text_config=text, vision_config=dict(VISION), image_token_index=image_id)
    config.architectures = ["MllamaForConditionalGeneration"]
    return config


def _processor(tokenizer):
    """``MllamaProcessor``: tiles of :data:`TILE` px, at most :data:`MAX_TILES` per image, CLIP mean/std."""
    from transformers import MllamaImageProcessor, MllamaProcessor

    images = MllamaImageProcessor(size={"height": TILE, "width": TILE}, max_image_tiles=MAX_TILES,
                                  image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    return MllamaProcessor(image_processor=images, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Tiny Llama 3.2 Vision (about 0.22 M parameters) into ``out_dir``; see the module docstring."""
    from transformers import MllamaForConditionalGeneration

    tokenizer = _tokenizer()
    model = init_model(MllamaForConditionalGeneration, _config(tokenizer), seed)
    redraw_zero_parameters(model, ZERO_INIT, seed)
    generation = greedy_generation_config(tokenizer, eos_ids=tokenizer.convert_tokens_to_ids(list(EOS_TOKENS)))
    return save_checkpoint(model, _processor(tokenizer), out_dir, generation)
