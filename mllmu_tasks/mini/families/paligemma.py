"""PaliGemma (2): a SigLIP vision tower, a linear projector and a Gemma 2 text model, at test size.

Sizes: 32x32 px images, 8 px patches, so one image is 16 vision tokens (SigLIP: hidden 32, 1 layer, 1 head);
linear projector 32 -> 64; Gemma 2 text model (hidden 64, 2 layers, 2 query heads of dim 32, 1 KV head,
MLP 128); vocabulary = 512 BPE tokens + 7 Gemma specials + the 1152 ``<locNNNN>``/``<segNNN>`` tokens that
:class:`~transformers.PaliGemmaProcessor` appends (1671 in all). About 0.2 M parameters.

Chat template: none. The google/paligemma(2) hub checkpoints ship no chat template (neither in the tokenizer
config nor as ``chat_template.json``); PaliGemma is prompted with a raw prefix, which the processor lays
out as ``<image>*16 <bos> {prefix} \\n`` (then ``{suffix}<eos>`` when a training suffix is given).

Tokenizer: Gemma's specials (``<pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>``) plus ``<image>``.
As on the hub, the saved tokenizer adds ``<bos>`` when used alone; the processor turns that off and puts
``<bos>`` after the image tokens itself. Generation config: the hub's (``eos_token_id`` = ``<eos>``), greedy.

The Gemma specials and the SigLIP vision config are shared with :mod:`.gemma3` (``_gemma_tokenizer``,
``_siglip_vision_config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ._common import greedy_generation_config, hub_vision_layout, init_model, make_tokenizer, save_checkpoint

MODEL_TYPE = "paligemma"
HUB_EXAMPLES = ("google/paligemma2-3b-pt-224", "google/paligemma-3b-pt-224")

#: Side of the (square) input image and of a SigLIP patch, in pixels: (32 / 8) ** 2 = 16 image tokens.
IMAGE_SIZE, PATCH_SIZE = 32, 8
#: Text model width; its attention heads are 32 wide (vLLM's CPU attention needs head_dim >= 32).
TEXT_HIDDEN, HEAD_DIM = 64, 32
IMAGE_TOKEN = "<image>"

#: Gemma tokenizer specials every Gemma-based family has, in the hub's relative order.
_GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>")


def _gemma_tokenizer(extra_specials: tuple[str, ...], named: Mapping[str, str], chat_template: str | None):
    """The shared BPE with Gemma's specials plus ``extra_specials`` and single-token runs of 1-4 newlines;
    encoding adds ``<bos>`` (as Gemma's does).

    ``named``: the family's named specials (``{"image_token": ...}``) as transformers 5 records them.
    """
    from tokenizers import AddedToken

    tokenizer = make_tokenizer(_GEMMA_SPECIALS + extra_specials, bos="<bos>", eos="<eos>", pad="<pad>",
                               unk="<unk>", add_bos=True, chat_template=chat_template, extra_special_tokens=named)
    # Gemma's vocabulary holds runs of 1-4 newlines as tokens of their own; vLLM's Gemma-3 and PaliGemma
    # input processing looks them up by those strings (a byte-level BPE spells them "Ċ", "ĊĊ", ...).
    tokenizer.add_tokens([AddedToken("\n" * n, normalized=False, special=False) for n in (4, 3, 2, 1)])
    return tokenizer


def _siglip_vision_config(image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE):
    """A 1-layer SigLIP vision tower: hidden 32, one 32-wide head, MLP 64, no pooling head;
    ``(image_size // patch_size) ** 2`` output tokens of width 32."""
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                              image_size=image_size, patch_size=patch_size, vision_use_head=False)


def _text_kwargs(tokenizer) -> dict:
    """Gemma-style text-model sizes shared by the Gemma families: hidden 64, 2 layers, 2x32 query heads,
    1 KV head, MLP 128, the tokenizer's full vocabulary and special ids."""
    return dict(vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=2 * TEXT_HIDDEN,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=HEAD_DIM,
                query_pre_attn_scalar=HEAD_DIM, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def _processor():
    """``PaliGemmaProcessor`` over a SigLIP image processor (32 px, mean/std 0.5 as on the hub, 16 tokens).

    The processor adds the 1152 location/segmentation tokens to the tokenizer and switches its BOS off.
    """
    from transformers import PaliGemmaProcessor, SiglipImageProcessor

    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5] * 3,
                                           image_std=[0.5] * 3, image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2)
    tokenizer = _gemma_tokenizer((IMAGE_TOKEN,), {"image_token": IMAGE_TOKEN}, chat_template=None)
    return PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _config(tokenizer):
    """``PaliGemmaConfig``: the SigLIP tower, a Gemma 2 text model, projector 32 -> 64."""
    from transformers import Gemma2Config, PaliGemmaConfig

    return PaliGemmaConfig(vision_config=_siglip_vision_config(), text_config=Gemma2Config(**_text_kwargs(tokenizer)),
                           image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), vocab_size=len(tokenizer),
                           projection_dim=TEXT_HIDDEN, hidden_size=TEXT_HIDDEN,
                           pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id)


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny PaliGemma 2 checkpoint (model, processor without chat template, greedy generation config).

    Nothing on the image path starts at zero here (the projector is a plain random ``Linear``), so nothing
    is re-drawn.
    """
    from transformers import PaliGemmaForConditionalGeneration

    processor = _processor()
    tokenizer = processor.tokenizer
    model = init_model(PaliGemmaForConditionalGeneration, _config(tokenizer), seed)
    tokenizer.add_bos_token = True  # saved like the hub tokenizer (adds <bos>); the processor re-disables it on load
    return hub_vision_layout(save_checkpoint(model, processor, out_dir, greedy_generation_config(tokenizer)))
