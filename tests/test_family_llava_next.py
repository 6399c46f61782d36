"""Tests of the tiny LLaVA-NeXT builder (mllmu_tasks.mini.families.llava_next)."""

from __future__ import annotations

from family_support import (MAX_PARAMS, adds_bos, assert_greedy_generation_config, assert_hub_chat_template,
                            assert_reloads_as, assert_text_only_forward, assistant_turn, chat_prompt,
                            continuation_logprob, family_fixture, forward_logits, image_gap, n_params, probe_image,
                            user_turn)

USER_TURN = user_turn("Who is this?")
ANSWER = " This is Alice Moreau."
SIZE = (64, 64)  # probe images' size in pixels

tiny = family_fixture("llava_next")


def test_reloads_as_llava_next(tiny):
    assert_reloads_as(tiny, "LlavaNextForConditionalGeneration", "LlavaNextProcessor")
    assert adds_bos(tiny.tok)  # adds <s>, as the hub's
    assert_greedy_generation_config(tiny.model, tiny.tok, eos="</s>")


def test_chat_template_is_the_hub_one_and_encodes_an_image(tiny):
    model, processor = tiny.model, tiny.processor
    assert_hub_chat_template(tiny)
    prompt = chat_prompt(processor, [USER_TURN])
    assert prompt == "[INST] <image>\nWho is this? [/INST]"
    answered = processor.apply_chat_template([USER_TURN, assistant_turn("Alice.")])
    assert answered.endswith(" [/INST] Alice.</s> ")
    enc = processor(text=prompt, images=probe_image("flat", SIZE), return_tensors="pt")
    assert (enc.input_ids == model.config.image_token_id).sum().item() == 36  # 16 base + 4x4 tile + 4 newlines
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_image_changes_answer_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, [USER_TURN], ANSWER, image),
                     SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    assert_text_only_forward(tiny, "[INST] What is Alice's job? [/INST]")


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
