"""Idefics2 (``Idefics2ForConditionalGeneration``): SigLIP-style vision tower, MLP modality projection and a
perceiver resampler, Mistral text model; the layout of ``HuggingFaceM4/idefics2-8b`` at test size.

Sizes: images are resized so the longest edge is at most 32 px and the shortest at least 16 px (aspect ratio kept;
the hub: 980 / 378), cut into 8x8 vision patches (at most 4x4 = 16), projected to the 64-wide text model and
resampled by the perceiver to :data:`N_LATENTS` = 8 latents per image. Image splitting is on (as in the instructed
hub checkpoint, see below): each image becomes its 4 quarter crops plus the whole image, so one ``<image>``
placeholder expands to ``(<fake_token_around_image> + <image> * 8) * 5 + <fake_token_around_image>``, 46 tokens,
40 of them ``<image>`` (transformers' processor also puts a space after the closing fake token when a word follows:
``User:<image>Who`` becomes ``User:<fake...>...<fake_token_around_image> Who``).

Tokenizer: like the hub's Mistral/Llama tokenizer: encoding prepends ``<s>`` (the chat template does not render
it, so a templated prompt starts with exactly one BOS), EOS ``</s>``, padding ``<unk>`` on the left (the hub pads
with id 0 = ``<unk>``); ``<fake_token_around_image>``, ``<image>`` and ``<end_of_utterance>`` follow as specials
(the hub: ids 32000-32002). Generation stops at ``</s>`` or ``<end_of_utterance>`` (the hub generation config's
``[2, 32002]``, quoted from memory of the hub file: not found in the stored sources).

Chat template: :data:`CHAT_TEMPLATE`, the ``chat_template`` of the hub ``processor_config.json`` of
``HuggingFaceM4/idefics2-8b`` (and ``-8b-chatty``), exact: found verbatim in stored sources quoting that file
(mistral.rs' chat-template test fixture for idefics2-8b-chatty; a GitHub project's comment citing
``idefics2-8b/blob/main/processor_config.json``); transformers' ``test_processor_idefics2.py`` (which loads the hub
processor) expects the same rendering: ``User: ...<end_of_utterance>\\nAssistant: ...<end_of_utterance>\\n``.

Image splitting: transformers' ``Idefics2ImageProcessor`` defaults to ``do_image_splitting=False``; for the hub
checkpoints the stored sources show only indirect evidence: the ``idefics2-8b`` model card says to *add*
``do_image_splitting=False`` to deactivate splitting ("only the sft model has been trained with image splitting"),
and many projects (TRL's idefics2 DPO example among them) pass ``do_image_splitting=False`` explicitly when loading
``HuggingFaceM4/idefics2-8b``. So the instructed checkpoint ships it switched on and ``idefics2-8b-base`` off; the
tiny builder follows the instructed one.
"""

from __future__ import annotations

from pathlib import Path

from ._common import (TEXT_SIZES, greedy_generation_config, init_model, make_tokenizer, redraw_zero_parameters,
                      save_checkpoint)

MODEL_TYPE = "idefics2"
HUB_EXAMPLES = ("HuggingFaceM4/idefics2-8b", "HuggingFaceM4/idefics2-8b-chatty")

#: The hub checkpoints' chat template (``processor_config.json``; source in the module docstring). A turn renders
#: ``{Role}:`` (no space when its content starts with an image) + its items (``<image>`` per image item) +
#: ``<end_of_utterance>\\n``; ``add_generation_prompt`` appends ``Assistant:``. Content must be a list of
#: ``{"type": ...}`` items: a plain string content renders as nothing.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

#: Special tokens in the hub's id order (Llama's ``<unk> <s> </s>``, then Idefics2's three).
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>", "<end_of_utterance>")

IMAGE_LONGEST_EDGE = 32  # pixels; the vision tower's nominal image size
IMAGE_SHORTEST_EDGE = 16  # pixels
PATCH_SIZE = 8  # vision patch side
N_LATENTS = 8  # perceiver latents = <image> tokens per (sub-)image
#: Weight std of the perceiver (the hub config's default: 0.02). At 0.02 the latents' residual stream swamps the
#: attention read-out of the image: two images change a continuation's log-probability by ~0.003 nats; at 0.2 ~0.15.
PERCEIVER_INIT_STD = 0.2
#: Tokens one image placeholder expands to: 5 x (fake + latents) + closing fake (image splitting on).
IMAGE_TOKENS = 5 * (N_LATENTS + 1) + 1


def build_tokenizer():
    """The tiny Mistral-style tokenizer: shared BPE + :data:`SPECIAL_TOKENS`, BOS ``<s>`` prepended,
    :data:`CHAT_TEMPLATE`."""
    return make_tokenizer(SPECIAL_TOKENS, bos="<s>", eos="</s>", pad="<unk>", unk="<unk>", add_bos=True,
                          chat_template=CHAT_TEMPLATE)


def build_config(tokenizer):
    """``Idefics2Config``: vision hidden 32 x 1 layer (1 head of 32), perceiver 1 layer of 8 latents (2 heads of 32,
    1 KV head; weights drawn with std :data:`PERCEIVER_INIT_STD`), Mistral text hidden 64 x 2 layers (2 heads of 32,
    1 KV head), untied embeddings as on the hub, ``image_token_id`` = ``<image>``."""
    from transformers import Idefics2Config, MistralConfig
    from transformers.models.idefics2.configuration_idefics2 import Idefics2PerceiverConfig, Idefics2VisionConfig

    ids = tokenizer.convert_tokens_to_ids
    vision = Idefics2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                                  image_size=IMAGE_LONGEST_EDGE, patch_size=PATCH_SIZE)
    text = MistralConfig(vocab_size=len(tokenizer), **TEXT_SIZES,
                         rms_norm_eps=1e-5, bos_token_id=ids("<s>"), eos_token_id=ids("</s>"),
                         pad_token_id=ids("<unk>"), tie_word_embeddings=False)
    perceiver = Idefics2PerceiverConfig(hidden_size=64, rms_norm_eps=1e-5, resampler_n_latents=N_LATENTS,
                                        resampler_depth=1, resampler_n_heads=2, resampler_head_dim=32,
                                        num_key_value_heads=1, initializer_range=PERCEIVER_INIT_STD)
    return Idefics2Config(vision_config=vision, perceiver_config=perceiver, text_config=text,
                          image_token_id=ids("<image>"), tie_word_embeddings=False)


def build_processor(tokenizer):
    """``Idefics2Processor``: ``Idefics2ImageProcessor`` (longest edge 32, shortest 16, splitting on, mean/std 0.5
    as on the hub), :data:`N_LATENTS` ``<image>`` tokens per (sub-)image, :data:`CHAT_TEMPLATE`."""
    from transformers import Idefics2ImageProcessor, Idefics2Processor

    image_processor = Idefics2ImageProcessor(
        do_image_splitting=True, size={"longest_edge": IMAGE_LONGEST_EDGE, "shortest_edge": IMAGE_SHORTEST_EDGE},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    return Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=N_LATENTS,
                             chat_template=CHAT_TEMPLATE)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Idefics2 checkpoint to ``out_dir``: random weights from ``seed``, the perceiver's constant
    (all-ones) latents re-drawn so the 8 image tokens differ; greedy decoding stopping at ``</s>`` or
    ``<end_of_utterance>``."""
    from transformers import Idefics2ForConditionalGeneration

    tokenizer = build_tokenizer()
    model = init_model(Idefics2ForConditionalGeneration, build_config(tokenizer), seed)
    redraw_zero_parameters(model, ("perceiver_resampler.latents",), seed)
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("</s>", "<end_of_utterance>")]
    return save_checkpoint(model, build_processor(tokenizer), out_dir, greedy_generation_config(tokenizer, eos))
