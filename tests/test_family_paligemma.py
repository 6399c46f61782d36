"""Tests of the tiny PaliGemma builder (:mod:`mllmu_tasks.mini.families.paligemma`).

PaliGemma's hub checkpoints ship no chat template, so the "template" checks here are the processor's own
prompt layout: ``<image>*16 <bos> {prefix} \\n`` (+ ``{suffix} <eos>`` as labels).
"""

from __future__ import annotations

import pytest
import torch
from family_support import (MAX_PARAMS, adds_bos, assert_greedy_generation_config, assert_reloads_as,
                            family_fixture, forward_logits, image_gap, n_params, probe_image, tail_logprob)

N_IMAGE = 16
PREFIX, SUFFIX = "Who is this?", "This person is a nurse."
SIZE = (48, 48)  # probe images' size in pixels: resized by the processor to 32x32

tiny = family_fixture("paligemma")


def _encode(tiny, image, suffix=None):
    return tiny.processor(text=f"<image>{PREFIX}", images=image, suffix=suffix, return_tensors="pt")


def test_reloads_as_family(tiny):
    assert_reloads_as(tiny, processor_class="PaliGemmaProcessor", image_token="<image>")
    assert tiny.processor.image_seq_length == N_IMAGE
    assert tiny.model.config.text_config.model_type == "gemma2"


def test_no_chat_template_as_on_the_hub(tiny):
    assert tiny.processor.chat_template is None and tiny.tok.chat_template is None
    assert not (tiny.path / "chat_template.jinja").exists() and not (tiny.path / "chat_template.json").exists()


def test_generation_config_is_greedy_with_hub_eos(tiny):
    gen = assert_greedy_generation_config(tiny.model, tiny.tok, eos="<eos>")
    assert gen.eos_token_id == tiny.tok.eos_token_id


def test_bos_alone_vs_in_processor(tiny):
    assert adds_bos(tiny.auto_tokenizer, PREFIX)  # the saved tokenizer adds <bos>, as the hub's does
    assert tiny.tok(PREFIX)["input_ids"][0] != tiny.auto_tokenizer.bos_token_id  # the processor turns it off


def test_prefix_layout_encodes_and_runs(tiny):
    enc = _encode(tiny, probe_image("flat", SIZE))
    tokens = tiny.tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:N_IMAGE + 1] == ["<image>"] * N_IMAGE + ["<bos>"] and tokens[-1] == "\n"  # a token of its own, as in Gemma's vocabulary
    assert tiny.tok.decode(enc["input_ids"][0, N_IMAGE + 1:]) == PREFIX + "\n"
    assert enc["token_type_ids"].eq(0).all() and enc["labels"].eq(-100).all()
    assert enc["pixel_values"].shape == (1, 3, 32, 32)
    forward_logits(tiny.model, {k: v for k, v in enc.items() if k != "labels"}, vocab=len(tiny.tok))


def test_suffix_becomes_labels(tiny):
    plain, enc = _encode(tiny, probe_image("flat", SIZE)), _encode(tiny, probe_image("flat", SIZE), suffix=SUFFIX)
    n = plain["input_ids"].shape[1]
    assert torch.equal(enc["input_ids"][0, :n], plain["input_ids"][0])
    assert tiny.tok.decode(enc["input_ids"][0, n:]) == SUFFIX + "<eos>"
    assert enc["token_type_ids"][0, n:].eq(1).all() and enc["token_type_ids"][0, :n].eq(0).all()
    assert torch.equal(enc["labels"][0, n:], enc["input_ids"][0, n:]) and enc["labels"][0, :n].eq(-100).all()


def _suffix_logprob(tiny, image) -> float:
    """log p(SUFFIX <eos> | image, prefix) in nats, summed over the labelled tokens (the input's tail)."""
    enc = _encode(tiny, image, suffix=SUFFIX)
    labels = enc.pop("labels")[0]
    n = int(labels.ne(-100).sum())
    assert torch.equal(labels[-n:], enc["input_ids"][0, -n:]) and labels[:-n].eq(-100).all()
    return tail_logprob(tiny.model, enc, n)


def test_image_changes_suffix_logprob(tiny):
    assert image_gap(lambda image: _suffix_logprob(tiny, image), SIZE) > 1e-3


def test_text_only_through_the_tokenizer(tiny):
    with pytest.raises(ValueError, match="images"):
        tiny.processor(text=PREFIX, images=None)
    enc = tiny.auto_tokenizer([PREFIX + "\n"], return_tensors="pt")
    forward_logits(tiny.model, enc, text_only=True)


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
