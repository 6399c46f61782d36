"""LLaVA-NeXT (LLaVA-1.6, Mistral variant): ``LlavaNextForConditionalGeneration`` + ``LlavaNextProcessor``.

Sizes: Mistral text model hidden 64, 2 layers, 2 query heads of 32 dims, 1 key/value
head, SwiGLU 128 (:func:`mistral_text_config`, shared with :mod:`.mistral3`); CLIP
vision tower hidden 32, 2 layers, 1 head, 32 x 32 px views in 8 px patches (16
patches + CLS; the ``"default"`` strategy drops the CLS); projector
``linear_1`` (32 -> 64), GELU, ``linear_2`` (64 -> 64); ``image_newline`` (64).

Image geometry ("anyres"): the image is resized to its best grid pinpoint among
:data:`GRID_PINPOINTS` (32 x 32, 32 x 64, 64 x 32), cut into 32 x 32 tiles, plus
one 32 x 32 base view. A square image: 1 tile of 4 x 4 features + 4 row newlines
+ 16 base features = 36 ``<image>`` tokens; at most 56 for the 1:2 shapes.

Tokenizer (as the hub's Llama/Mistral SentencePiece one behaves): specials
``<unk> <s> </s> <image> <pad>``, encoding prepends ``<s>``; ``[INST]``/``[/INST]``
are plain text. Generation stops at ``</s>`` (the hub generation config's eos).

Chat template (:data:`CHAT_TEMPLATE`): the current template of
``llava-hf/llava-v1.6-mistral-7b-hf``. Source: the "llava-next" key of
``COMPLEX_CHAT_TEMPLATES`` in huggingface/optimum-intel
``optimum/exporters/openvino/utils.py`` (keyed by the exact hub strings; added in
optimum-intel #1166, "Support updated chat template for llava-next", after the
hub repo's commit 144bfb96 of February 2025, cited by openvino.genai #1756).
That hub commit replaced the template's former literal ``'<\\s> '`` after an
assistant turn by ``'</s> '``; the older string is kept there as
"llava-next old" and differs from :data:`CHAT_TEMPLATE` in that one literal only.
It renders ``[INST] <image>\\n{text} [/INST]`` for a user turn and
``" " + answer + "</s> "`` for an assistant turn; it has no generation prompt
(``add_generation_prompt`` adds nothing), no ``{{ bos_token }}``, and needs list
content (a plain-string user content renders ``[INST]  [/INST]``).
"""

from __future__ import annotations

from pathlib import Path

from . import _common

MODEL_TYPE = "llava_next"
HUB_EXAMPLES = ("llava-hf/llava-v1.6-mistral-7b-hf", "llava-hf/llava-v1.6-vicuna-7b-hf")

#: ``llava-hf/llava-v1.6-mistral-7b-hf`` chat template, verbatim (real newline characters, as in the hub JSON).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}"
    "{% endfor %}{# Render all text next #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}"
    "{% endfor %}{{' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> '}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
IMAGE_TOKEN = "<image>"
#: Special tokens in id order (after the shared BPE's ids), as the hub tokenizer orders them.
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", IMAGE_TOKEN, "<pad>")
#: Vision view side and patch side in pixels.
IMAGE_SIZE, PATCH_SIZE = 32, 8
#: Anyres resolutions (height, width) in pixels.
GRID_PINPOINTS = [[32, 32], [32, 64], [64, 32]]


def mistral_text_config(tokenizer, vocab_size: int):
    """Mistral text config at test size: hidden 64, 2 layers, 2 x 32-dim query heads, 1 kv head, SwiGLU 128,
    untied embeddings, no sliding window, the tokenizer's bos/eos/pad ids."""
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=4096, sliding_window=None,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def _config(tokenizer):
    """LlavaNextConfig: :func:`mistral_text_config` + a tiny CLIP vision config, LLaVA-1.6 feature selection."""
    from transformers import CLIPVisionConfig, LlavaNextConfig

    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                              image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=32)
    config = LlavaNextConfig(
        text_config=mistral_text_config(tokenizer, len(tokenizer)), vision_config=vision,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_select_strategy="default", vision_feature_layer=-2, projector_hidden_act="gelu",
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2, tie_word_embeddings=False)
    config.architectures = ["LlavaNextForConditionalGeneration"]
    return config


def _processor(tokenizer):
    """LlavaNextProcessor: CLIP-normalised 32 px views on :data:`GRID_PINPOINTS`, CLS counted then dropped."""
    from transformers import LlavaNextImageProcessor, LlavaNextProcessor

    images = LlavaNextImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=GRID_PINPOINTS, do_pad=True)
    return LlavaNextProcessor(image_processor=images, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1,
                              image_token=IMAGE_TOKEN, chat_template=CHAT_TEMPLATE)


def mistral_tokenizer(special_tokens, chat_template: str, image_token: str):
    """The shared BPE as a Mistral tokenizer: ``<s>`` added, ``</s>`` ends, ``<pad>``/``<unk>``, ``image_token`` named."""
    return _common.make_tokenizer(special_tokens, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>", add_bos=True,
                                  chat_template=chat_template, extra_special_tokens={"image_token": image_token})


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny LLaVA-NeXT (about 0.2 M parameters, random weights from ``seed``) into ``out_dir``."""
    from transformers import LlavaNextForConditionalGeneration

    tokenizer = mistral_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, IMAGE_TOKEN)
    model = _common.init_model(LlavaNextForConditionalGeneration, _config(tokenizer), seed)
    out = _common.save_checkpoint(model, _processor(tokenizer), out_dir, _common.greedy_generation_config(tokenizer))
    return _common.hub_vision_layout(out)

