"""Pieces every tiny family builder shares: the tokenizer, seeded initialisation, saving."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

#: BPE target vocabulary of the shared base tokenizer (bytes + merges; family specials come after).
BASE_VOCAB = 512
#: The text model every family shares: width 64, 2 layers of 2 query heads of 32 (vLLM's CPU attention needs
#: >= 32) over 1 key/value head, MLP 128, 2048 positions.
TEXT_SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, max_position_embeddings=2048)


@functools.lru_cache(maxsize=2)
def base_bpe_json(vocab_size: int = BASE_VOCAB) -> str:
    """A byte-level BPE (no special tokens) trained on the embedded mini benchmark, as tokenizer JSON.

    Trained once per process (about a second on 2 cores); every family's
    tokenizer starts from a copy of it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from ..tiny_vlm import benchmark_corpus

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(benchmark_corpus(), trainer=trainer)
    return core.to_str()


def make_tokenizer(special_tokens: Iterable[str], *, bos: str | None, eos: str, pad: str, unk: str | None = None,
                   add_bos: bool, chat_template: str | None, extra_special_tokens: Mapping[str, str] | None = None,
                   padding_side: str = "left", model_max_length: int = 2048):
    """A ``PreTrainedTokenizerFast``: the shared BPE plus the family's special tokens (ids after the BPE's).

    Args:
        special_tokens: every special token string of the family, in id order (``bos``, ``eos``, ``pad``,
            ``unk`` and the image/turn tokens must be among them).
        add_bos: whether encoding prepends ``bos`` (as the family's hub tokenizer does).
        chat_template: the family's hub chat template (Jinja), or ``None`` where its checkpoints ship none.
        extra_special_tokens: named specials (``{"image_token": "<image>"}``) as transformers 5 records them.

    Raises:
        ValueError: ``bos``/``eos``/``pad``/``unk`` is not in ``special_tokens``.
    """
    from tokenizers import AddedToken, Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(special_tokens))
    for role, token in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if token is not None and token not in specials:
            raise ValueError(f"{role} token {token!r} is not among the special tokens {specials}")
    core = Tokenizer.from_str(base_bpe_json())
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if add_bos:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        extra_special_tokens=dict(extra_special_tokens or {}), padding_side=padding_side,
        model_max_length=model_max_length, clean_up_tokenization_spaces=False, chat_template=chat_template)


def init_model(cls: type, config: Any, seed: int) -> Any:
    """``cls(config)`` in float32, eval mode, weights drawn from ``seed`` (the global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.float().eval()


def redraw_zero_parameters(model: torch.nn.Module, names: Iterable[str], seed: int, std: float = 0.5) -> None:
    """Re-draw parameters that the architecture initialises to zero (gates, projector scales), so the image
    reaches the text in a random model. ``names``: substrings of parameter names."""
    wanted = list(names)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed + 1)
        for name, param in model.named_parameters():
            if any(w in name for w in wanted):
                param.normal_(0.0, std)


def greedy_generation_config(tokenizer, eos_ids: Iterable[int] | None = None):
    """Greedy decoding with the tokenizer's special ids and no token limit (callers give the limit)."""
    from transformers import GenerationConfig

    eos = list(eos_ids) if eos_ids is not None else [tokenizer.eos_token_id]
    return GenerationConfig(do_sample=False, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=eos[0] if len(eos) == 1 else eos, pad_token_id=tokenizer.pad_token_id)


def save_checkpoint(model, processor, out_dir: Path, generation_config=None) -> Path:
    """``save_pretrained`` of model (safetensors), processor and generation config into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if generation_config is not None:
        model.generation_config = generation_config
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def hub_vision_layout(out_dir: Path) -> Path:
    """Rename a saved CLIP/SigLIP tower ``vision_tower.X`` to the hub's ``vision_tower.vision_model.X`` (what
    vLLM loads for LLaVA-NeXT and PaliGemma; transformers maps either layout, so the checkpoint reloads
    unchanged). Returns ``out_dir``."""
    import re

    from safetensors.torch import load_file, save_file

    path = Path(out_dir) / "model.safetensors"
    weights = {re.sub(r"^vision_tower\.(?!vision_model\.)", "vision_tower.vision_model.", key): tensor
               for key, tensor in load_file(str(path)).items()}
    save_file(weights, str(path), metadata={"format": "pt"})
    return Path(out_dir)
