"""The tiny InternVL checkpoint (:mod:`mllmu_tasks.mini.families.internvl`) reloads offline and sees its image."""

from __future__ import annotations

from family_support import (MAX_PARAMS, assert_greedy_generation_config, assert_reloads_as,
                            assert_text_only_forward, chat_prompt, continuation_logprob, family_fixture,
                            forward_logits, image_gap, n_params, probe_image, user_turn)

from mllmu_tasks.mini.families import internvl as family

PROMPT = [user_turn("Who is this person?")]
CONTINUATION = "The person is a painter."

tiny = family_fixture("internvl")


def test_reload_classes(tiny):
    assert_reloads_as(tiny, "InternVLForConditionalGeneration", "InternVLProcessor", image_token="<IMG_CONTEXT>")
    assert type(tiny.processor.video_processor).__name__ == "InternVLVideoProcessor"


def test_template_and_one_image_forward(tiny):
    model, processor = tiny.model, tiny.processor
    prompt = chat_prompt(processor, PROMPT)
    assert prompt == "<|im_start|>user\n<IMG_CONTEXT>\nWho is this person?<|im_end|>\n<|im_start|>assistant\n"
    enc = processor(text=prompt, images=[probe_image("flat")], return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    start = tokens.index("<img>")
    expected = ["<img>"] + ["<IMG_CONTEXT>"] * family.IMAGE_SEQ_LENGTH + ["</img>"]
    assert tokens[start:start + len(expected)] == expected
    assert tokens.count("<IMG_CONTEXT>") == family.IMAGE_SEQ_LENGTH <= 64
    assert tuple(enc["pixel_values"].shape) == (1, 3, family.IMAGE_SIZE, family.IMAGE_SIZE)
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_image_changes_continuation_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, PROMPT, CONTINUATION,
                                                        image)) > 1e-2


def test_text_only_forward(tiny):
    prompt = chat_prompt(tiny.processor, [{"role": "user", "content": "Where was she born?"}])
    assert tiny.tok.bos_token is None  # Qwen2-style: nothing prepended
    assert_text_only_forward(tiny, prompt)


def test_generation_config_and_size(tiny):
    gen = assert_greedy_generation_config(tiny.model, tiny.tok)
    assert gen.eos_token_id in (tiny.tok.convert_tokens_to_ids("<|im_end|>"),
                                [tiny.tok.convert_tokens_to_ids("<|im_end|>")])
    assert n_params(tiny.model) < MAX_PARAMS
