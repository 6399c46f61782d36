"""Idefics3 (``Idefics3ForConditionalGeneration``): SigLIP-style vision tower, pixel-shuffle connector, Llama 3
text model; the layout of ``HuggingFaceM4/Idefics3-8B-Llama3`` at test size (SmolVLM-Instruct shares the
architecture with another tokenizer and template, see below).

Sizes: an image is resized so its longest edge is 64 px (the hub: 4 x 364), then to multiples of the 32 px tile
size (the hub: 364) and split into a grid of at most 2x2 tiles of 32x32 plus the whole image resized to 32x32
(image splitting on, as on the hub). Each tile is 4x4 vision patches of 8 px, pixel-shuffled by ``scale_factor``
2 to :data:`IMAGE_SEQ_LEN` = 4 ``<image>`` tokens. One ``<image>`` placeholder of a landscape or square image
therefore becomes (each grid row ends with ``\\n``)::

    <fake_token_around_image><row_1_col_1><image>*4<fake_token_around_image><row_1_col_2><image>*4\\n
    <fake_token_around_image><row_2_col_1><image>*4<fake_token_around_image><row_2_col_2><image>*4\\n
    \\n<fake_token_around_image><global-img><image>*4<fake_token_around_image>

20 ``<image>`` tokens (a portrait image: a 2x1 grid, 12). As in Idefics3-8B-Llama3 (vocabulary 128256 + 3),
``<row_i_col_j>`` and ``<global-img>`` are not vocabulary entries but plain text that the BPE splits into several
tokens (SmolVLM adds them as tokens), so the whole span of a 2x2 image is about 95 tokens.

Tokenizer: like the hub's Llama 3 tokenizer: encoding prepends ``<|begin_of_text|>``, EOS ``<|end_of_text|>``,
padding ``<|reserved_special_token_0|>`` (``Idefics3Config``'s default pad id 128002) on the left; then
``<fake_token_around_image>``, ``<image>``, ``<end_of_utterance>`` (the hub: ids 128256-128258). The chat template
renders ``<|begin_of_text|>`` itself too, so a templated prompt encoded with special tokens starts with *two* BOS
tokens (the hub behaves the same way). Generation stops at ``<|end_of_text|>`` or ``<end_of_utterance>``
(reconstructed: the hub generation config was not found in the stored sources; the turns end with
``<end_of_utterance>``).

Chat template: :data:`CHAT_TEMPLATE`, Idefics3-8B-Llama3's: ``<|begin_of_text|>`` followed by exactly the Idefics2
hub template (:data:`.idefics2.CHAT_TEMPLATE`). Source: quoted verbatim in stored sources (an Idefics3 fine-tuning
project's ``idefics3_chat_template``; ModernVBert's ``DEFAULT_CHAT_TEMPLATE`` with ``| capitalize`` for
``.capitalize()``), and transformers' ``test_processing_idefics3.py``, which loads the hub processor, expects
``<|begin_of_text|>User: ...<end_of_utterance>\\nAssistant:``. SmolVLM-Instruct's template differs only in its
prefix (``<|im_start|>`` instead of ``<|begin_of_text|>``).
"""

from __future__ import annotations

from pathlib import Path

from ._common import TEXT_SIZES, greedy_generation_config, init_model, make_tokenizer, save_checkpoint
from .idefics2 import CHAT_TEMPLATE as _IDEFICS2_TEMPLATE

MODEL_TYPE = "idefics3"
HUB_EXAMPLES = ("HuggingFaceM4/Idefics3-8B-Llama3", "HuggingFaceTB/SmolVLM-Instruct")

#: Idefics3-8B-Llama3's chat template: a BOS, then Idefics2's turns (``User: ...<end_of_utterance>\\n``,
#: ``Assistant:`` as the generation prompt).
CHAT_TEMPLATE = "<|begin_of_text|>" + _IDEFICS2_TEMPLATE

#: Special tokens: Llama 3's BOS/EOS/first reserved token, then Idefics3's three, in the hub's id order.
SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<fake_token_around_image>", "<image>", "<end_of_utterance>")

TILE_SIZE = 32  # pixels per tile side = the vision tower's image size (``max_image_size``)
RESIZE_LONGEST_EDGE = 2 * TILE_SIZE  # images are resized to this longest edge first (``size``)
PATCH_SIZE = 8  # vision patch side: 4x4 patches per tile
SCALE_FACTOR = 2  # pixel shuffle: 4x4 patches -> 2x2 tokens
IMAGE_SEQ_LEN = (TILE_SIZE // PATCH_SIZE // SCALE_FACTOR) ** 2  # 4 <image> tokens per tile


def build_tokenizer():
    """The tiny Llama-3-style tokenizer: shared BPE + :data:`SPECIAL_TOKENS`, BOS prepended, :data:`CHAT_TEMPLATE`."""
    return make_tokenizer(SPECIAL_TOKENS, bos="<|begin_of_text|>", eos="<|end_of_text|>",
                          pad="<|reserved_special_token_0|>", add_bos=True, chat_template=CHAT_TEMPLATE)


def build_config(tokenizer):
    """``Idefics3Config``: vision hidden 32 x 1 layer (1 head of 32) on 32 px tiles of 8 px patches, pixel shuffle
    by 2 (connector: 4 * 32 -> 64), Llama text hidden 64 x 2 layers (2 heads of 32, 1 KV head), untied embeddings,
    ``image_token_id`` = ``<image>``."""
    from transformers import Idefics3Config, Idefics3VisionConfig, LlamaConfig

    ids = tokenizer.convert_tokens_to_ids
    vision = Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                                  image_size=TILE_SIZE, patch_size=PATCH_SIZE)
    text = LlamaConfig(vocab_size=len(tokenizer), **TEXT_SIZES,
                       rms_norm_eps=1e-5, bos_token_id=ids("<|begin_of_text|>"), eos_token_id=ids("<|end_of_text|>"),
                       pad_token_id=ids("<|reserved_special_token_0|>"), tie_word_embeddings=False)
    return Idefics3Config(vision_config=vision, text_config=text, image_token_id=ids("<image>"),
                          scale_factor=SCALE_FACTOR, tie_word_embeddings=False,
                          pad_token_id=ids("<|reserved_special_token_0|>"))


def build_processor(tokenizer):
    """``Idefics3Processor``: ``Idefics3ImageProcessor`` (resize to a 64 px longest edge, split into 32 px tiles
    + the global image, mean/std 0.5 as on the hub), :data:`IMAGE_SEQ_LEN` ``<image>`` tokens per tile."""
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    image_processor = Idefics3ImageProcessor(
        do_image_splitting=True, size={"longest_edge": RESIZE_LONGEST_EDGE},
        max_image_size={"longest_edge": TILE_SIZE}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    return Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=IMAGE_SEQ_LEN,
                             chat_template=CHAT_TEMPLATE)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Idefics3 checkpoint to ``out_dir``: random weights from ``seed`` (no zero-initialised
    parameter sits on the image path: the connector is one bias-free linear layer); greedy decoding stopping at
    ``<|end_of_text|>`` or ``<end_of_utterance>``."""
    from transformers import Idefics3ForConditionalGeneration

    tokenizer = build_tokenizer()
    model = init_model(Idefics3ForConditionalGeneration, build_config(tokenizer), seed)
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<end_of_utterance>")]
    return save_checkpoint(model, build_processor(tokenizer), out_dir, greedy_generation_config(tokenizer, eos))
