"""Tests of the tiny Gemma 3 builder (:mod:`mllmu_tasks.mini.families.gemma3`)."""

from __future__ import annotations

from family_support import (adds_bos, assert_greedy_generation_config, assert_reloads_as, chat_prompt,
                            continuation_logprob, family_fixture, forward_logits, image_gap, n_params, probe_image,
                            text_only_encodings, user_turn)

N_IMAGE = 16
MAX_PARAMS = 200_000  # tighter than the other families' budget
PROMPT = [user_turn("Who is this?")]
CONTINUATION = "This person is a nurse."
SIZE = (80, 80)  # probe images' size in pixels: resized by the processor to 64x64

tiny = family_fixture("gemma3")


def test_reloads_as_family(tiny):
    # the processor's placeholder in text is <start_of_image>; the image's soft tokens are another token
    assert_reloads_as(tiny, processor_class="Gemma3Processor", image_token="<image_soft_token>",
                      placeholder="<start_of_image>")
    assert tiny.model.config.mm_tokens_per_image == N_IMAGE


def test_generation_config_is_greedy_with_hub_eos(tiny):
    assert_greedy_generation_config(tiny.model, tiny.tok, eos=["<eos>", "<end_of_turn>"])


def test_projector_is_redrawn(tiny):
    weight = tiny.model.model.multi_modal_projector.mm_input_projection_weight
    assert weight.shape == (32, 64) and weight.abs().sum() > 0


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = chat_prompt(tiny.processor, PROMPT)
    assert text == "<bos><start_of_turn>user\n<start_of_image>Who is this?<end_of_turn>\n<start_of_turn>model\n"
    enc = tiny.processor(text=[text], images=[probe_image("flat", SIZE)], return_tensors="pt")
    tokens = tiny.tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:2] == ["<bos>", "<bos>"]  # template's {{ bos_token }} + the tokenizer's BOS, as on the hub
    start = tokens.index("<start_of_image>")
    assert tokens[start + 1:start + N_IMAGE + 2] == ["<image_soft_token>"] * N_IMAGE + ["<end_of_image>"]
    assert enc["token_type_ids"].sum() == N_IMAGE
    forward_logits(tiny.model, enc, vocab=len(tiny.tok))


def test_assistant_turn_ends_with_end_of_turn(tiny):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert tiny.processor.apply_chat_template(messages).endswith("model\nHello<end_of_turn>\n")


def test_image_changes_continuation_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, PROMPT, CONTINUATION, image),
                     SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    assert adds_bos(tiny.tok, "Who is Alice?")
    text = chat_prompt(tiny.processor, [{"role": "user", "content": "Who is Alice?"}])
    for enc in text_only_encodings(tiny.processor, text):
        forward_logits(tiny.model, enc, text_only=True)


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
