"""Tests of the tiny Qwen2-VL builder (:mod:`mllmu_tasks.mini.families.qwen2_vl`).

``tests/test_family_qwen2_5_vl.py`` imports these tests (not the ``tiny`` fixture: it has its own) and runs
them on Qwen2.5-VL; what differs between the two families is looked up by ``tiny.name``.
"""

from __future__ import annotations

from family_support import (MAX_PARAMS, assert_greedy_generation_config, assert_reloads_as, chat_prompt,
                            continuation_logprob, family_fixture, forward_logits, image_gap, n_params, probe_image,
                            text_only_encodings, user_turn)

PROCESSOR_CLASS = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}
IMAGE_SPAN = "<|vision_start|><|image_pad|><|vision_end|>"
PROMPT = [user_turn("Who is this?")]
CONTINUATION = " This person is a nurse."
SIZE = (64, 64)  # probe images' size in pixels: resized by the processor to 56x56, 4 image tokens

tiny = family_fixture("qwen2_vl")


def test_reloads_as_family(tiny):
    assert_reloads_as(tiny, processor_class=PROCESSOR_CLASS[tiny.name], image_token="<|image_pad|>")


def test_generation_config_is_greedy_with_hub_eos(tiny):
    assert_greedy_generation_config(tiny.model, tiny.tok, eos=["<|im_end|>", "<|endoftext|>"])


def test_merger_lives_inside_the_vision_tower(tiny):
    names = [n for n, _ in tiny.model.named_parameters()]
    assert "model.visual.merger.mlp.0.weight" in names and "model.visual.merger.mlp.2.weight" in names
    assert not any("multi_modal_projector" in n for n in names)


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = chat_prompt(tiny.processor, PROMPT)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert f"{IMAGE_SPAN}Who is this?<|im_end|>\n<|im_start|>assistant\n" in text
    enc = tiny.processor(text=[text], images=[probe_image("flat", SIZE)], return_tensors="pt")
    tokens = tiny.tok.convert_ids_to_tokens(enc["input_ids"][0])
    n_image = int(enc["image_grid_thw"].prod()) // 4
    assert 1 <= n_image <= 64
    start = tokens.index("<|vision_start|>")
    assert tokens[start + 1:start + n_image + 2] == ["<|image_pad|>"] * n_image + ["<|vision_end|>"]
    forward_logits(tiny.model, enc, vocab=len(tiny.tok))


def test_image_changes_continuation_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, PROMPT, CONTINUATION, image),
                     SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    ids = tiny.tok("Who is Alice?")["input_ids"]
    assert ids[0] not in tiny.tok.all_special_ids  # Qwen tokenizers add no BOS
    text = chat_prompt(tiny.processor, [{"role": "user", "content": "Who is Alice?"}])
    for enc in text_only_encodings(tiny.processor, text):
        forward_logits(tiny.model, enc, text_only=True)


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
