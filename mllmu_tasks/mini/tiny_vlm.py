"""A tiny, randomly initialised LLaVA-architecture VLM that is built offline.

The model is a :class:`~transformers.LlavaForConditionalGeneration` with a
tiny Llama text model and a tiny CLIP vision tower, a byte-level BPE
tokenizer trained on local text (by default the embedded mini benchmark,
:func:`benchmark_corpus`), a :class:`~transformers.LlavaProcessor` and a
greedy :class:`~transformers.GenerationConfig`. It needs no download and no
``trust_remote_code``; it reloads through ``AutoModelForImageTextToText`` /
``AutoProcessor`` and runs under lm-eval's ``hf-multimodal`` (vLLM: laid out
for it as STACK-NOTES measured, not run by this module's tests).

Weights are written in the layout of the hub ``llava-hf`` checkpoints
(:func:`to_hub_layout`): ``language_model.model.*``,
``language_model.lm_head.*``, ``multi_modal_projector.*`` and
``vision_tower.vision_model.*``. transformers 5 maps that layout onto its
in-memory module names when loading (missing/unexpected keys: none), and
vLLM 0.32 expects ``vision_tower.vision_model.*``, while transformers 5.24
itself saves a model built from a config with the vision tower under
``vision_tower.*``. (A model *loaded* from a hub-layout checkpoint is saved
back in the hub layout by ``save_pretrained``: transformers reverses the
conversion it applied when loading.)

Image geometry: a ``image_size`` x ``image_size`` RGB image (32 x 32) is cut
into ``(image_size / patch_size) ** 2`` patches (16 for 32 / 8) plus a CLS
token; the ``"default"`` feature strategy drops the CLS, so one ``<image>``
placeholder expands to 16 image tokens.

CLI: ``python -m mllmu_tasks.mini.tiny_vlm --out DIR [--size test|demo]
[--seed 0] [--text-only] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import (GenerationConfig, LlamaConfig, LlamaForCausalLM, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

IMAGE_TOKEN = "<image>"
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<s>", "</s>", "<unk>"
#: Special tokens in id order: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3, ``<image>`` = 4.
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, IMAGE_TOKEN)
#: Context length in tokens (rotary positions: no parameters depend on it).
MAX_POSITIONS = 2048
#: OpenAI CLIP normalisation, as in the llava-hf checkpoints (per RGB channel, on [0, 1] pixels).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Vision layer whose output feeds the projector (LLaVA-1.5: the second to last).
VISION_FEATURE_LAYER = -2
WEIGHTS_NAME = "model.safetensors"
#: Default generation length in new tokens (see :func:`generation_config`).
MAX_NEW_TOKENS = 50

#: LLaVA-1.5 style chat template. A user turn renders ``USER: {content}\\n``, where a
#: list content renders ``<image>\\n`` per image item and the text items verbatim (one
#: leading newline of a text item right after an image is dropped, so lm-eval's split of
#: ``"<image>\\nQ"`` into [image, "\\nQ"] renders back to ``<image>\\nQ``); an assistant
#: turn renders ``ASSISTANT: {text}</s>``; a system turn ``{text}\\n``;
#: ``add_generation_prompt`` appends ``ASSISTANT:``. Example:
#: ``USER: <image>\\nWho is this?\\nASSISTANT:``.
CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for item in content -%}"
    "{%- if item['type'] == 'image' -%}{{- '<image>' + '\\n' -}}"
    "{%- elif item['type'] == 'text' -%}"
    "{%- if not loop.first and loop.previtem['type'] == 'image' and item['text'][:1] == '\\n' -%}"
    "{{- item['text'][1:] -}}"
    "{%- else -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{- 'USER: ' + render(message['content']) + '\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- 'ASSISTANT: ' + render(message['content']) + '</s>' -}}"
    "{%- else -%}{{- render(message['content']) + '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TinySize:
    """Dimensions of a tiny VLM.

    Text model (Llama): ``text_hidden`` model width, ``text_layers`` decoder
    layers, ``text_heads`` query heads of ``text_hidden // text_heads`` dims
    (must be >= 32 for vLLM's CPU attention), ``text_kv_heads`` key/value
    heads, ``text_intermediate`` SwiGLU width. Vision tower (CLIP):
    ``vision_hidden`` width, ``vision_layers`` layers, ``vision_heads`` heads,
    ``vision_intermediate`` MLP width; square ``image_size`` pixels cut into
    ``patch_size`` pixel patches. ``vocab_size`` is the BPE target (the trained
    vocabulary can be smaller on a small corpus; the model uses the real size).
    """

    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_intermediate: int
    image_size: int
    patch_size: int
    vocab_size: int

    @property
    def head_dim(self) -> int:
        """Text attention head width in dims."""
        return self.text_hidden // self.text_heads

    @property
    def image_tokens(self) -> int:
        """Image tokens one image becomes (patches; the CLS token is dropped)."""
        return (self.image_size // self.patch_size) ** 2


SIZES: dict[str, TinySize] = {
    # ~0.2 M parameters: for tests.
    "test": TinySize(text_hidden=64, text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate=256,
                     vision_hidden=32, vision_layers=2, vision_heads=1, vision_intermediate=128,
                     image_size=32, patch_size=8, vocab_size=512),
    # ~1 M parameters: memorises ~40 profiles on 2 CPU cores in a few minutes (STACK-NOTES).
    "demo": TinySize(text_hidden=128, text_layers=2, text_heads=4, text_kv_heads=4, text_intermediate=512,
                     vision_hidden=64, vision_layers=2, vision_heads=2, vision_intermediate=256,
                     image_size=32, patch_size=8, vocab_size=1300),
}


def get_size(size: str | TinySize) -> TinySize:
    """Resolve a size name of :data:`SIZES` (or pass a :class:`TinySize` through).

    Raises:
        ValueError: unknown name, or a text head width under 32 dims.
    """
    if isinstance(size, TinySize):
        spec = size
    elif size in SIZES:
        spec = SIZES[size]
    else:
        raise ValueError(f"unknown tiny VLM size {size!r}; expected one of {', '.join(SIZES)}")
    if spec.text_hidden % spec.text_heads or spec.head_dim < 32:
        raise ValueError(f"text head width must be an integer >= 32 (vLLM CPU attention), got "
                         f"{spec.text_hidden}/{spec.text_heads}")
    return spec


# --------------------------------------------------------------------------- corpus


def benchmark_corpus(data_dir: str | Path | None = None) -> list[str]:
    """Every distinct string of the parquet files under ``data_dir``, plus the prompt templates.

    Walks each row's structs and lists; image structs (``{bytes, path}``) are
    skipped; a ``metadata`` string holding JSON (``ft_Data``: a list of
    ``{ID, Question, Answer}``) contributes the strings inside it instead of
    the raw JSON. Order: files sorted by path, rows in order, first occurrence
    kept; then :data:`mllmu_tasks.prompts.TEMPLATE_STRINGS`.

    Args:
        data_dir: folder searched recursively for ``*.parquet`` (the hub layout
            is ``<config>/train-*.parquet``); default ``mllmu_tasks.MINI_DATA_DIR``.

    Raises:
        FileNotFoundError: the folder holds no parquet file.
    """
    import pyarrow.parquet as pq

    from mllmu_tasks import MINI_DATA_DIR
    from mllmu_tasks.prompts import TEMPLATE_STRINGS

    root = Path(data_dir if data_dir is not None else MINI_DATA_DIR)
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no parquet file under {root} (expected <config>/train-*.parquet): build the mini "
                                f"benchmark first, or pass texts= / data_dir= explicitly")
    seen: dict[str, None] = {}
    for path in files:
        for row in pq.read_table(path).to_pylist():
            seen.update(dict.fromkeys(_strings(row)))
    seen.update(dict.fromkeys(TEMPLATE_STRINGS))
    return [s for s in seen if s]


def _strings(value: Any, key: str | None = None) -> Iterator[str]:
    """Yield the strings nested in a parquet row value (see :func:`benchmark_corpus`)."""
    if isinstance(value, str):
        parsed = _json_or_none(value) if key == "metadata" else None
        yield from (_strings(parsed) if parsed is not None else (value,))
    elif isinstance(value, Mapping):
        if set(value) <= {"bytes", "path"}:  # an image struct
            return
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v, key)


def _json_or_none(text: str) -> Any:
    """``json.loads(text)`` if it is a JSON list/object, else ``None``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, (list, dict)) else None


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Special tokens (ids 0-4): ``<pad> <s> </s> <unk> <image>``; ``bos``/``eos``/
    ``pad``/``unk`` are set, encoding prepends ``<s>`` (``add_special_tokens``),
    padding is on the left, ``model_max_length`` is :data:`MAX_POSITIONS`, the
    chat template is :data:`CHAT_TEMPLATE`. Any text round-trips:
    ``decode(encode(s, add_special_tokens=False)) == s`` (byte-level, no
    prefix space, no clean-up).

    Args:
        texts: training text (order matters only for tie-breaking; training is deterministic).
        vocab_size: target vocabulary including the 256 bytes and 5 specials; the
            result is smaller when the corpus has fewer merges to offer.

    Returns:
        a ``PreTrainedTokenizerFast``.

    Raises:
        ValueError: ``vocab_size`` leaves no room beyond bytes and specials.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} < {len(alphabet) + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    core.train_from_iterator(list(texts), trainer=trainer)
    bos_id = core.token_to_id(BOS_TOKEN)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B", special_tokens=[(BOS_TOKEN, bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN}, padding_side="left", model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False, chat_template=CHAT_TEMPLATE)


# --------------------------------------------------------------------------- configs


def text_config(spec: TinySize, vocab_size: int) -> LlamaConfig:
    """Llama config of the text model: ``vocab_size`` tokens, untied embeddings, ids of the specials."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=spec.text_hidden, intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_kv_heads, head_dim=spec.head_dim, max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=SPECIAL_TOKENS.index(PAD_TOKEN),
        bos_token_id=SPECIAL_TOKENS.index(BOS_TOKEN), eos_token_id=SPECIAL_TOKENS.index(EOS_TOKEN))


def vlm_config(spec: TinySize, vocab_size: int) -> LlavaConfig:
    """LLaVA config: :func:`text_config` + a CLIP vision config, LLaVA-1.5 feature selection."""
    from transformers import CLIPVisionConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden, intermediate_size=spec.vision_intermediate,
        num_hidden_layers=spec.vision_layers, num_attention_heads=spec.vision_heads, image_size=spec.image_size,
        patch_size=spec.patch_size, projection_dim=spec.vision_hidden)
    config = LlavaConfig(
        text_config=text_config(spec, vocab_size), vision_config=vision,
        image_token_index=SPECIAL_TOKENS.index(IMAGE_TOKEN), image_seq_length=spec.image_tokens,
        vision_feature_select_strategy="default", vision_feature_layer=VISION_FEATURE_LAYER,
        projector_hidden_act="gelu", tie_word_embeddings=False)
    config.architectures = ["LlavaForConditionalGeneration"]
    return config


def count_parameters(size: str | TinySize = "test", vocab_size: int | None = None, text_only: bool = False) -> int:
    """Parameter count of a size, from its config (built on the meta device: no memory, no init).

    Args:
        vocab_size: tokens; default the size's nominal ``vocab_size``.
        text_only: count the :func:`build_tiny_lm` twin instead of the VLM.
    """
    from transformers import LlamaForCausalLM, LlavaForConditionalGeneration

    spec = get_size(size)
    vocab = vocab_size or spec.vocab_size
    with torch.device("meta"):
        model = (LlamaForCausalLM(text_config(spec, vocab)) if text_only
                 else LlavaForConditionalGeneration(vlm_config(spec, vocab)))
    return sum(p.numel() for p in model.parameters())


def generation_config() -> GenerationConfig:
    """Greedy decoding: ``do_sample=False`` and the special token ids; no token limit.

    No ``max_new_tokens``: transformers lets a configured one take precedence
    over the ``max_length`` that lm-eval's ``hf``/``hf-multimodal`` backends
    pass (prompt + ``max_gen_toks``), which would silently replace every task's
    limit with the checkpoint's. Callers give the limit (:data:`MAX_NEW_TOKENS`
    is the suite's).
    """
    from transformers import GenerationConfig

    return GenerationConfig(do_sample=False, bos_token_id=SPECIAL_TOKENS.index(BOS_TOKEN),
                            eos_token_id=SPECIAL_TOKENS.index(EOS_TOKEN), pad_token_id=SPECIAL_TOKENS.index(PAD_TOKEN))


def image_processor(spec: TinySize):
    """CLIP image processor: resize shortest edge and centre-crop to ``image_size``, CLIP mean/std.

    Saved as ``CLIPImageProcessor``; without torchvision transformers uses its PIL implementation.
    """
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        from transformers import CLIPImageProcessor as cls
    else:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil as cls
    return cls(do_resize=True, size={"shortest_edge": spec.image_size}, do_center_crop=True,
               crop_size={"height": spec.image_size, "width": spec.image_size}, do_rescale=True,
               rescale_factor=1 / 255, do_normalize=True, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD),
               do_convert_rgb=True, resample=3)


def build_processor(tokenizer: PreTrainedTokenizerFast, spec: TinySize) -> LlavaProcessor:
    """``LlavaProcessor``: one ``<image>`` becomes ``spec.image_tokens`` image tokens."""
    from transformers import LlavaProcessor

    return LlavaProcessor(image_processor=image_processor(spec), tokenizer=tokenizer, patch_size=spec.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                          image_token=IMAGE_TOKEN, chat_template=CHAT_TEMPLATE)


# --------------------------------------------------------------------------- weights


#: (in-memory or transformers-5-saved prefix, hub prefix), first match wins.
_HUB_RENAMES = (
    (r"^model\.language_model\.", "language_model.model."),
    (r"^lm_head\.", "language_model.lm_head."),
    (r"^model\.vision_tower\.(?:vision_model\.)?", "vision_tower.vision_model."),
    (r"^model\.multi_modal_projector\.", "multi_modal_projector."),
    (r"^vision_tower\.(?!vision_model\.)", "vision_tower.vision_model."),
    (r"^(?=language_model\.(?:model|lm_head)\.|vision_tower\.vision_model\.|multi_modal_projector\.)", ""),
)


def to_hub_layout(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a LLaVA (CLIP vision tower) state dict to the llava-hf hub checkpoint layout.

    ======================================  =====================================
    transformers 5 in memory                hub (llava-hf, vLLM)
    ======================================  =====================================
    ``model.language_model.X``              ``language_model.model.X``
    ``lm_head.X``                           ``language_model.lm_head.X``
    ``model.vision_tower.X``                ``vision_tower.vision_model.X``
    ``model.multi_modal_projector.X``       ``multi_modal_projector.X``
    ======================================  =====================================

    Also accepted: what transformers 5.24 ``save_pretrained`` writes for a model
    built from a config (``vision_tower.X`` -> ``vision_tower.vision_model.X``)
    and keys already in the hub layout (unchanged), so the function is
    idempotent. Tensors are made contiguous (safetensors needs it) but not
    copied otherwise. Use it on ``model.state_dict()`` of a
    ``LlavaForConditionalGeneration`` (also after peft ``merge_and_unload``)
    and save with :func:`save_hub_weights`; not for text-only Llama models,
    whose in-memory layout already is the hub layout.

    Raises:
        ValueError: a key fits none of these layouts (e.g. a peft ``base_model.`` prefix).
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        for pattern, repl in _HUB_RENAMES:
            if re.match(pattern, key):
                out[re.sub(pattern, repl, key, count=1)] = tensor.contiguous()
                break
        else:
            raise ValueError(f"state dict key {key!r} is not a LLaVA key (expected model.language_model., lm_head., "
                             f"model.vision_tower., model.multi_modal_projector. or the hub layout)")
    return out


def save_hub_weights(model: torch.nn.Module, out_dir: str | Path) -> Path:
    """Write ``model``'s weights, in :func:`to_hub_layout`, to ``out_dir/model.safetensors``.

    Only the weights: save the config, generation config and processor separately.
    Returns the file path.
    """
    from safetensors.torch import save_file

    path = Path(out_dir) / WEIGHTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(to_hub_layout(model.state_dict()), str(path), metadata={"format": "pt"})
    return path


# --------------------------------------------------------------------------- builders


def _init_model(cls: type, config: Any, seed: int) -> Any:
    """``cls(config)`` in float32 with weights drawn from ``seed`` (the global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.float().eval()


def _tokenizer_for(spec: TinySize, texts: Iterable[str] | None) -> PreTrainedTokenizerFast:
    """BPE tokenizer of ``texts`` (default :func:`benchmark_corpus`) at the size's target vocabulary."""
    return build_tokenizer(benchmark_corpus() if texts is None else texts, spec.vocab_size)


def make_tiny_vlm(size: str = "test", texts: Iterable[str] | None = None,
                  seed: int = 0) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Build a tiny LLaVA VLM in memory (nothing saved): ``(model, processor)``.

    ``model`` is a float32 ``LlavaForConditionalGeneration`` in eval mode with the
    greedy :func:`generation_config`; ``processor`` a ``LlavaProcessor``
    (:func:`build_processor`). Arguments and errors as :func:`build_tiny_vlm`.
    """
    from transformers import LlavaForConditionalGeneration

    spec = get_size(size)
    tokenizer = _tokenizer_for(spec, texts)
    model = _init_model(LlavaForConditionalGeneration, vlm_config(spec, len(tokenizer)), seed)
    model.generation_config = generation_config()
    return model, build_processor(tokenizer, spec)


def build_tiny_vlm(out_dir: str | Path, size: str = "test", texts: Iterable[str] | None = None,
                   seed: int = 0) -> Path:
    """Build, initialise randomly and save a tiny LLaVA VLM into ``out_dir``.

    Writes ``config.json``, ``generation_config.json``, ``model.safetensors``
    (hub layout, :func:`to_hub_layout`; no ``.bin``), and the processor
    (``processor_config.json``, ``tokenizer.json``, ``tokenizer_config.json``,
    ``chat_template.jinja``). The same ``texts``, ``size`` and ``seed`` give
    identical weights.

    Args:
        out_dir: created if missing; existing files of the same names are replaced.
        size: a key of :data:`SIZES`.
        texts: tokenizer training text; default :func:`benchmark_corpus` (the mini data).
        seed: weight initialisation seed.

    Returns:
        ``Path(out_dir)``.

    Raises:
        ValueError: unknown size. FileNotFoundError: ``texts`` is None and no mini data exists.
    """
    model, processor = make_tiny_vlm(size, texts, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    save_hub_weights(model, out)
    processor.save_pretrained(out)
    return out


def make_tiny_lm(size: str = "test", texts: Iterable[str] | None = None,
                 seed: int = 0) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Build the text-only twin in memory: ``(LlamaForCausalLM, tokenizer)``; see :func:`build_tiny_lm`."""
    from transformers import LlamaForCausalLM

    spec = get_size(size)
    tokenizer = _tokenizer_for(spec, texts)
    config = text_config(spec, len(tokenizer))
    config.architectures = ["LlamaForCausalLM"]
    model = _init_model(LlamaForCausalLM, config, seed)
    model.generation_config = generation_config()
    return model, tokenizer


def build_tiny_lm(out_dir: str | Path, size: str = "test", texts: Iterable[str] | None = None,
                  seed: int = 0) -> Path:
    """Build and save the text-only twin: a ``LlamaForCausalLM`` with the VLM's text config and tokenizer.

    For lm-eval ``--model hf`` on text-only tasks. Weights are
    ``model.safetensors`` with the Llama hub keys ``model.*`` and ``lm_head.*``
    (transformers' own layout for Llama); the tokenizer carries the same chat
    template. Arguments, return value and errors as :func:`build_tiny_vlm`. The
    same seed does not reproduce the VLM's text weights (other init order).
    """
    model, tokenizer = make_tiny_lm(size, texts, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """CLI: build a tiny VLM (or with ``--text-only`` its Llama twin) into ``--out``."""
    parser = argparse.ArgumentParser(prog="mllmu-tiny-vlm", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", default="test", choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-only", action="store_true", help="build the LlamaForCausalLM twin")
    parser.add_argument("--data-dir", default=None, help="parquet folder for the tokenizer corpus "
                        "(default: the embedded mini benchmark)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        texts = benchmark_corpus(args.data_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    build = build_tiny_lm if args.text_only else build_tiny_vlm
    out = build(args.out, size=args.size, texts=texts, seed=args.seed)
    print(f"wrote {out} ({args.size}, seed {args.seed}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
