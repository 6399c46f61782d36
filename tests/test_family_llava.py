"""Tests of the LLaVA-1.5 family builder (mllmu_tasks.mini.families.llava): tiny_vlm + the hub chat template."""

from __future__ import annotations

from family_support import (MAX_PARAMS, adds_bos, assert_greedy_generation_config, assert_hub_chat_template,
                            assert_reloads_as, assert_text_only_forward, assistant_turn, chat_prompt,
                            continuation_logprob, family_fixture, forward_logits, image_gap, n_params, probe_image,
                            user_turn)

USER_TURN = user_turn("Who is this?")
ANSWER = " This is Alice Moreau."
SIZE = (32, 32)  # probe images' size in pixels

tiny = family_fixture("llava")


def test_reloads_as_llava(tiny):
    assert_reloads_as(tiny, "LlavaForConditionalGeneration", "LlavaProcessor")
    assert adds_bos(tiny.auto_tokenizer)  # adds <s>, as the hub's
    assert_greedy_generation_config(tiny.model, tiny.tok)


def test_chat_template_is_the_hub_one_and_encodes_an_image(tiny):
    model, processor, tokenizer = tiny.model, tiny.processor, tiny.auto_tokenizer
    assert_hub_chat_template(tiny, tokenizer)
    prompt = chat_prompt(processor, [USER_TURN])
    assert prompt == "USER: <image>\nWho is this? ASSISTANT:"
    answered = tokenizer.apply_chat_template([USER_TURN, assistant_turn("Alice.")], tokenize=False)
    assert answered == "USER: <image>\nWho is this? ASSISTANT: Alice. "  # no </s>: the hub template writes none
    enc = processor(text=prompt, images=probe_image("flat", SIZE), return_tensors="pt")
    assert (enc.input_ids == model.config.image_token_id).sum().item() == 16
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_image_changes_answer_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, [USER_TURN], ANSWER, image),
                     SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    assert_text_only_forward(tiny, "USER: What is Alice's job? ASSISTANT:")


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
