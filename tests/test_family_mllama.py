"""Tests of the tiny Llama 3.2 Vision builder (:mod:`mllmu_tasks.mini.families.mllama`)."""

from __future__ import annotations

from family_support import (MAX_PARAMS, adds_bos, assert_greedy_generation_config, assert_reloads_as,
                            assistant_turn, chat_prompt, continuation_logprob, family_fixture, forward_logits,
                            image_gap, n_params, probe_image, text_only_encodings, user_turn)

from mllmu_tasks.mini.families.mllama import ZERO_INIT

PROMPT = [user_turn("Who is this?")]
CONTINUATION = " This person is a nurse."
IMAGE_PROMPT = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>Who is this?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n")
SIZE = (32, 32)  # probe images' size in pixels: one 32 px tile (64x32 is two)

tiny = family_fixture("mllama")


def _encode(tiny, text: str, image):
    """The processor's tensors; the template already holds the BOS, so the tokenizer adds none."""
    return tiny.processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt")


def test_reloads_as_family(tiny):
    config = tiny.model.config
    assert_reloads_as(tiny, processor_class="MllamaProcessor", image_token="<|image|>")
    # as on the hub: <|image|> is the last id, one past the text vocabulary (the LM head cannot emit it)
    assert config.image_token_id == config.text_config.vocab_size == len(tiny.tok) - 1


def test_generation_config_is_greedy_with_hub_eos(tiny):
    assert_greedy_generation_config(tiny.model, tiny.tok, eos=["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"],
                                    pad="<|finetune_right_pad_id|>")


def test_projector_outside_vision_tower_and_gates_redrawn(tiny):
    params = dict(tiny.model.named_parameters())
    assert params["model.multi_modal_projector.weight"].shape == (64, 96)
    assert not any("projector" in n for n in params if n.startswith("model.vision_model."))
    gates = [p for n, p in params.items() if any(z in n for z in ZERO_INIT)]
    assert len(gates) == 5 and all(bool(g.abs().min() > 0) for g in gates)


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = chat_prompt(tiny.processor, PROMPT)
    assert text == IMAGE_PROMPT  # no system turn when a message holds an image
    enc = _encode(tiny, text, probe_image("flat", SIZE))
    tokens = tiny.tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens.count("<|image|>") == 1 and tokens.count("<|begin_of_text|>") == 1
    start = tokens.index("<|image|>")
    assert enc["pixel_values"].shape == (1, 1, 2, 3, 32, 32)
    assert enc["aspect_ratio_ids"].tolist() == [[1]] and enc["aspect_ratio_mask"].tolist() == [[[1, 0]]]
    mask = enc["cross_attention_mask"]
    assert mask.shape == (1, len(tokens), 1, 2)
    assert not mask[0, :start].any() and mask[0, start:, 0, 0].all() and not mask[0, :, 0, 1].any()
    forward_logits(tiny.model, enc, vocab=len(tiny.tok) - 1)


def test_default_encoding_doubles_the_bos_and_wide_images_take_two_tiles(tiny):
    enc = tiny.processor(text=[chat_prompt(tiny.processor, PROMPT)], images=[probe_image("flat", (64, 32))],
                         return_tensors="pt")
    assert tiny.tok.convert_ids_to_tokens(enc["input_ids"][0, :2].tolist()) == ["<|begin_of_text|>"] * 2
    assert enc["aspect_ratio_mask"].tolist() == [[[1, 1]]] and enc["aspect_ratio_ids"].item() in (2, 3)


def test_assistant_turn_ends_with_eot(tiny):
    messages = PROMPT + [assistant_turn("Alice.")]
    assert tiny.processor.apply_chat_template(messages).endswith("<|end_header_id|>\n\nAlice.<|eot_id|>")


def test_image_changes_continuation_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, PROMPT, CONTINUATION, image,
                                                        add_special_tokens=False), SIZE) > 1e-3


def test_text_only_prompt_runs(tiny):
    assert adds_bos(tiny.tok, "Who is Alice?")  # Llama 3 tokenizers add <|begin_of_text|>
    text = chat_prompt(tiny.processor, [{"role": "user", "content": "Who is Alice?"}], date_string="26 Jul 2024")
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
                           "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>")
    for enc in text_only_encodings(tiny.processor, text, add_special_tokens=False):
        assert "cross_attention_mask" not in enc
        forward_logits(tiny.model, enc, text_only=True)


def test_parameter_count_is_tiny(tiny):
    assert n_params(tiny.model) < MAX_PARAMS
