"""Tests of the tiny PaliGemma builder (:mod:`mllmu_tasks.mini.families.paligemma`).

PaliGemma's hub checkpoints ship no chat template, so the "template" checks here are the processor's own
prompt layout: ``<image>*16 <bos> {prefix} \\n`` (+ ``{suffix} <eos>`` as labels).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family  # noqa: E402

N_IMAGE = 16
MAX_PARAMS = 300_000
PREFIX, SUFFIX = "Who is this?", "This person is a nurse."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The checkpoint, built once and reloaded through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    path = build_family("paligemma", tmp_path_factory.mktemp("paligemma"))
    return SimpleNamespace(path=path, model=AutoModelForImageTextToText.from_pretrained(path),
                           processor=AutoProcessor.from_pretrained(path), tokenizer=AutoTokenizer.from_pretrained(path))


def _image(color: tuple[int, int, int]) -> Image.Image:
    """A 48x48 plain image with a white square (resized by the processor to 32x32)."""
    img = Image.new("RGB", (48, 48), color)
    img.paste((255, 255, 255), (4, 4, 24, 24))
    return img


def _encode(tiny, image, suffix=None):
    return tiny.processor(text=f"<image>{PREFIX}", images=image, suffix=suffix, return_tensors="pt")


def test_reloads_as_family(tiny):
    assert tiny.model.config.model_type == "paligemma"
    assert type(tiny.processor).__name__ == "PaliGemmaProcessor"
    assert tiny.processor.image_token == "<image>" and tiny.processor.image_seq_length == N_IMAGE
    assert tiny.processor.tokenizer.decode([tiny.model.config.image_token_id]) == "<image>"
    assert tiny.model.config.text_config.model_type == "gemma2"


def test_no_chat_template_as_on_the_hub(tiny):
    assert tiny.processor.chat_template is None and tiny.processor.tokenizer.chat_template is None
    assert not (tiny.path / "chat_template.jinja").exists() and not (tiny.path / "chat_template.json").exists()


def test_generation_config_is_greedy_with_hub_eos(tiny):
    gen, tok = tiny.model.generation_config, tiny.processor.tokenizer
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert gen.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<eos>")


def test_bos_alone_vs_in_processor(tiny):
    bos = tiny.tokenizer.bos_token_id
    assert tiny.tokenizer(PREFIX)["input_ids"][0] == bos  # the saved tokenizer adds <bos>, as the hub's does
    assert tiny.processor.tokenizer(PREFIX)["input_ids"][0] != bos  # the processor turns it off


def test_prefix_layout_encodes_and_runs(tiny):
    enc = _encode(tiny, _image((200, 20, 20)))
    tokens = tiny.processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:N_IMAGE + 1] == ["<image>"] * N_IMAGE + ["<bos>"] and tokens[-1] == "Ċ"  # "\n"
    assert tiny.processor.tokenizer.decode(enc["input_ids"][0, N_IMAGE + 1:]) == PREFIX + "\n"
    assert enc["token_type_ids"].eq(0).all() and enc["labels"].eq(-100).all()
    assert enc["pixel_values"].shape == (1, 3, 32, 32)
    with torch.no_grad():
        logits = tiny.model(**{k: v for k, v in enc.items() if k != "labels"}).logits
    assert logits.shape == (1, len(tokens), len(tiny.processor.tokenizer)) and torch.isfinite(logits).all()


def test_suffix_becomes_labels(tiny):
    plain, enc = _encode(tiny, _image((200, 20, 20))), _encode(tiny, _image((200, 20, 20)), suffix=SUFFIX)
    n = plain["input_ids"].shape[1]
    assert torch.equal(enc["input_ids"][0, :n], plain["input_ids"][0])
    assert tiny.processor.tokenizer.decode(enc["input_ids"][0, n:]) == SUFFIX + "<eos>"
    assert enc["token_type_ids"][0, n:].eq(1).all() and enc["token_type_ids"][0, :n].eq(0).all()
    assert torch.equal(enc["labels"][0, n:], enc["input_ids"][0, n:]) and enc["labels"][0, :n].eq(-100).all()


def _suffix_logprob(tiny, image) -> float:
    """log p(SUFFIX <eos> | image, prefix), summed over the labelled tokens."""
    enc = _encode(tiny, image, suffix=SUFFIX)
    labels = enc.pop("labels")[0, 1:]
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(**enc).logits[0, :-1], -1)
    keep = labels != -100
    return logp[keep].gather(-1, labels[keep, None]).sum().item()


def test_image_changes_suffix_logprob(tiny):
    red, blue = (_suffix_logprob(tiny, _image(c)) for c in ((200, 20, 20), (10, 10, 240)))
    assert abs(red - blue) > 1e-3


def test_text_only_through_the_tokenizer(tiny):
    with pytest.raises(ValueError, match="images"):
        tiny.processor(text=PREFIX, images=None)
    enc = tiny.tokenizer([PREFIX + "\n"], return_tensors="pt")
    with torch.no_grad():
        logits = tiny.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    assert logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(logits).all()


def test_parameter_count_is_tiny(tiny):
    assert sum(p.numel() for p in tiny.model.parameters()) < MAX_PARAMS
