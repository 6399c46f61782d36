"""Tests of the tiny Mistral 3 (Pixtral vision) builder (mllmu_tasks.mini.families.mistral3)."""

from __future__ import annotations

import pytest
from family_support import (MAX_PARAMS, adds_bos, assert_greedy_generation_config, assert_hub_chat_template,
                            assert_reloads_as, assert_text_only_forward, chat_prompt, continuation_logprob,
                            family_fixture, forward_logits, image_gap, n_params, probe_image, user_turn)

USER_TURN = user_turn("Who is this?")
SYSTEM_TURN = {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]}
ANSWER = "This is Alice Moreau."
SIZE = (64, 64)  # probe images' size in pixels: a 4x4 grid of [IMG] tokens

tiny = family_fixture("mistral3")


def test_reloads_as_mistral3(tiny):
    assert_reloads_as(tiny, "Mistral3ForConditionalGeneration", "PixtralProcessor")
    assert adds_bos(tiny.tok)  # adds <s>, as the hub's
    assert_greedy_generation_config(tiny.model, tiny.tok, eos="</s>")


def test_chat_template_is_the_hub_one_and_encodes_an_image(tiny):
    model, processor = tiny.model, tiny.processor
    assert_hub_chat_template(tiny)
    prompt = chat_prompt(processor, [USER_TURN])
    assert prompt.startswith("<s>[SYSTEM_PROMPT]You are Mistral Small 3, ")  # hub default system message
    assert prompt.endswith("[/SYSTEM_PROMPT][INST][IMG]Who is this?[/INST]")
    answered = processor.apply_chat_template([SYSTEM_TURN, USER_TURN, {"role": "assistant", "content": ANSWER}])
    assert answered == f"<s>[SYSTEM_PROMPT]Answer briefly.[/SYSTEM_PROMPT][INST][IMG]Who is this?[/INST]{ANSWER}</s>"
    enc = processor(text=prompt, images=probe_image("flat", SIZE), return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc.input_ids[0].tolist())
    start = tokens.index("[IMG]")
    assert "".join(tokens[start:start + 20]) == ("[IMG]" * 4 + "[IMG_BREAK]") * 3 + "[IMG]" * 4 + "[IMG_END]"
    assert tokens[:2] == ["<s>", "<s>"]  # template BOS + tokenizer BOS (hub behaviour)
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_string_system_content_fails_as_on_the_hub(tiny):
    with pytest.raises(Exception, match="text"):
        tiny.processor.apply_chat_template([{"role": "system", "content": "Answer briefly."}, USER_TURN])


def test_image_changes_answer_logprob(tiny):
    """The answer after a system + user turn with the image (the rendered ``<s>`` is the only BOS: encoded
    without the tokenizer's own)."""
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, [SYSTEM_TURN, USER_TURN],
                                                        ANSWER, image, add_special_tokens=False), SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    assert_text_only_forward(tiny, "[INST]What is Alice's job?[/INST]")


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
