"""What the per-family tests (``tests/test_family_<type>.py``) share; no tests of its own.

Each family's test module builds its tiny checkpoint once (``tiny = family_fixture("<type>")``) and keeps its
family-specific checks (template renderings, token sequences, BOS counts, ids, tensor shapes) itself. The
checks every family makes the same way live here: the reload through ``AutoModelForImageTextToText`` /
``AutoProcessor``, the two probe images, the forward pass with finite logits, the summed log-probability of
a continuation (and how much the image moves it), the greedy generation config and the parameter budget.

Imported as ``from family_support import ...``: pytest's default ``prepend`` import mode puts ``tests/`` on
``sys.path`` (the folder has no ``__init__.py``), as for ``from conftest import ...``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from collections.abc import Callable, Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cached_property  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

torch = pytest.importorskip("torch")  # a family test module that imports this one is skipped without them
pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from mllmu_tasks.mini.families import build_family, family_module  # noqa: E402

#: Parameter budget of a tiny family checkpoint (count of scalars, vision tower + projector + LM).
MAX_PARAMS = 300_000


@dataclass
class Family:
    """One tiny checkpoint of family ``name``, built under ``path`` and reloaded through the Auto classes."""

    name: str
    path: Path
    model: Any  # AutoModelForImageTextToText.from_pretrained(path), in eval mode
    processor: Any  # AutoProcessor.from_pretrained(path)

    @property
    def tok(self):
        """The processor's tokenizer (``processor.tokenizer``)."""
        return self.processor.tokenizer

    @cached_property
    def auto_tokenizer(self):
        """The tokenizer reloaded on its own (``AutoTokenizer.from_pretrained(path)``, loaded on first use):
        the saved settings, before any processor changes them."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)


def load_family(name: str, tmp_path_factory) -> Family:
    """Build family ``name`` into a fresh temporary folder and reload model and processor from it."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_family(name, tmp_path_factory.mktemp(name))
    return Family(name, path, AutoModelForImageTextToText.from_pretrained(path).eval(),
                  AutoProcessor.from_pretrained(path))


def family_fixture(name: str):
    """A module-scoped fixture ``tiny`` giving :func:`load_family` of ``name``: ``tiny = family_fixture(name)``."""

    @pytest.fixture(scope="module", name="tiny")
    def _tiny(tmp_path_factory) -> Family:
        return load_family(name, tmp_path_factory)

    return _tiny


def probe_image(kind: str, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """One of the two RGB probe images, ``size`` = (width, height) in pixels.

    ``kind="flat"``: flat red (220, 20, 20); ``kind="board"``: a checkerboard eight squares across (squares of
    ``width // 8`` px: 8 px at 64 px wide), blue (20, 20, 220) and yellow (240, 230, 30). The two differ in
    colour and in layout, so a model that sees its image scores them differently.
    """
    if kind == "flat":
        return Image.new("RGB", size, (220, 20, 20))
    if kind != "board":
        raise ValueError(f"unknown probe image {kind!r}; expected 'flat' or 'board'")
    side = max(size[0] // 8, 1)
    board = Image.new("RGB", size, (20, 20, 220))
    for x in range(0, size[0], side):
        for y in range((x // side) % 2 * side, size[1], 2 * side):
            board.paste((240, 230, 30), (x, y, x + side, y + side))
    return board


def user_turn(text: str, image: bool = True) -> dict:
    """A user message whose content is typed parts: an image placeholder (when ``image``), then ``text``."""
    return {"role": "user", "content": ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]}


def assistant_turn(text: str) -> dict:
    """An assistant message whose content is one text part."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def chat_prompt(processor, messages: list[dict], **template_kwargs) -> str:
    """``messages`` rendered by the processor's chat template, ending in the assistant's generation prompt."""
    return processor.apply_chat_template(messages, add_generation_prompt=True, **template_kwargs)


def forward_logits(model, enc: Mapping, vocab: int | None = None, text_only: bool = False) -> torch.Tensor:
    """The logits of one no-grad forward pass over ``enc``, checked to be finite and one row per input token.

    Args:
        enc: the encoder output; all of it goes to the model, or only ``input_ids`` and ``attention_mask`` with
            ``text_only``.
        vocab: when given, the width the logits must have (logits over the LM head's vocabulary).

    Returns:
        float tensor (batch, seq, vocab) where (batch, seq) is ``enc["input_ids"].shape``.
    """
    inputs = {k: enc[k] for k in ("input_ids", "attention_mask")} if text_only else dict(enc)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == enc["input_ids"].shape
    if vocab is not None:
        assert logits.shape[2] == vocab
    assert torch.isfinite(logits).all()
    return logits


def tail_logprob(model, enc: Mapping, n: int) -> float:
    """Summed log-probability, in nats, of the last ``n`` tokens of ``enc["input_ids"]`` (batch of one) given
    everything before them, from one no-grad forward pass over ``enc``."""
    with torch.no_grad():
        logits = model(**enc).logits[0, -n - 1:-1].float()  # (n, vocab): the positions predicting the tail
    targets = enc["input_ids"][0, -n:]
    return torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum().item()


def continuation_logprob(model, processor, prompt: str | list[dict], continuation: str, image: Image.Image,
                         **encode_kwargs) -> float:
    """Summed log-probability, in nats, of ``continuation`` after ``prompt`` showing ``image``.

    ``prompt`` is the text itself, or messages rendered with :func:`chat_prompt`; prompt + continuation is
    encoded in one processor call (``encode_kwargs`` go to it, e.g. ``add_special_tokens=False``), and the
    continuation is the last ``len(tokenizer(continuation, add_special_tokens=False))`` tokens.
    """
    if not isinstance(prompt, str):
        prompt = chat_prompt(processor, prompt)
    enc = processor(text=[prompt + continuation], images=[image], return_tensors="pt", **encode_kwargs)
    n = len(processor.tokenizer(continuation, add_special_tokens=False)["input_ids"])
    return tail_logprob(model, enc, n)


def image_gap(score: Callable[[Image.Image], float], size: tuple[int, int] = (64, 48)) -> float:
    """``|score(flat) - score(board)|`` over the two :func:`probe_image` of ``size``: in nats when ``score`` is
    a log-probability, and 0 when the model does not see its image."""
    return abs(score(probe_image("flat", size)) - score(probe_image("board", size)))


def assert_reloads_as(tiny: Family, model_class: str | None = None, processor_class: str | None = None,
                      image_token: str | None = None, placeholder: str | None = None) -> None:
    """``tiny`` reloaded as its family: ``config.model_type`` is the family's name and its builder's
    ``MODEL_TYPE``; model and processor are of the classes named (when given); the processor's text
    placeholder for an image is ``placeholder`` (default ``image_token``) and ``config.image_token_id`` is the
    token ``image_token`` (when given)."""
    model, processor = tiny.model, tiny.processor
    assert model.config.model_type == tiny.name == family_module(tiny.name).MODEL_TYPE
    if model_class is not None:
        assert type(model).__name__ == model_class
    if processor_class is not None:
        assert type(processor).__name__ == processor_class
    if image_token is not None:
        assert processor.image_token == (placeholder or image_token)
        assert processor.tokenizer.convert_ids_to_tokens(model.config.image_token_id) == image_token


def assert_hub_chat_template(tiny: Family, tokenizer=None) -> None:
    """The processor and ``tokenizer`` (default: the processor's) both carry the chat template of the family's
    hub checkpoints, its builder's ``CHAT_TEMPLATE``."""
    tokenizer = tiny.tok if tokenizer is None else tokenizer
    assert tiny.processor.chat_template == tokenizer.chat_template == family_module(tiny.name).CHAT_TEMPLATE


def adds_bos(tokenizer, text: str = "x") -> bool:
    """Whether ``tokenizer`` puts its BOS first when encoding ``text`` with its default settings."""
    return tokenizer(text)["input_ids"][0] == tokenizer.bos_token_id


def assert_greedy_generation_config(model, tokenizer, eos: str | list[str] | None = None,
                                    pad: str | None = None):
    """The saved generation config decodes greedily with no length of its own (``do_sample`` False,
    ``max_new_tokens`` None); its ``eos_token_id`` is the id of ``eos`` (one token: an int; several: the list
    of ids, in that order) and its ``pad_token_id`` the id of ``pad`` and the tokenizer's own pad id, when
    given. Returns the config."""
    gen = model.generation_config
    assert gen.do_sample is False and gen.max_new_tokens is None
    if eos is not None:
        assert gen.eos_token_id == tokenizer.convert_tokens_to_ids(eos)
    if pad is not None:
        assert gen.pad_token_id == tokenizer.convert_tokens_to_ids(pad) == tokenizer.pad_token_id
    return gen


def text_only_encodings(processor, text: str, **encode_kwargs) -> tuple:
    """``text`` with no image encoded twice as a batch of one, by the processor and by its tokenizer alone
    (``encode_kwargs`` go to both, e.g. ``add_special_tokens=False``)."""
    return (processor(text=[text], images=None, return_tensors="pt", **encode_kwargs),
            processor.tokenizer([text], return_tensors="pt", **encode_kwargs))


def assert_text_only_forward(tiny: Family, text: str):
    """``text`` with no image, encoded by the processor, holds no pixels and no image token, and the model runs
    on it (:func:`forward_logits`). Returns the encoding."""
    enc = tiny.processor(text=text, images=None, return_tensors="pt")
    assert "pixel_values" not in enc
    assert tiny.model.config.image_token_id not in enc["input_ids"][0].tolist()
    forward_logits(tiny.model, enc)
    return enc


def n_params(model) -> int:
    """The model's parameter count (scalars in all its parameter tensors)."""
    return sum(p.numel() for p in model.parameters())
