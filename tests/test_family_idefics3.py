"""The tiny Idefics3 checkpoint (:mod:`mllmu_tasks.mini.families.idefics3`) reloads offline and sees its image.

The checks it shares with Idefics2 (end of the assistant turn, the image moving the continuation's
log-probability, the text-only forward) are ``test_family_idefics2``'s, imported so that pytest collects them
here too, on this module's ``tiny``.
"""

from __future__ import annotations

from family_support import (MAX_PARAMS, assert_greedy_generation_config, assert_reloads_as, chat_prompt,
                            family_fixture, forward_logits, n_params, probe_image, user_turn)
from test_family_idefics2 import (  # noqa: F401
    test_assistant_turn_ends_with_end_of_utterance,
    test_image_changes_continuation_logprob,
    test_text_only_forward,
)

from mllmu_tasks.mini.families import idefics3 as family

PROMPT = [user_turn("Who is this person?")]
BOS, FAKE, IMAGE = "<|begin_of_text|>", "<fake_token_around_image>", "<image>"

tiny = family_fixture("idefics3")


def test_reload_classes_and_image_token(tiny):
    assert_reloads_as(tiny, "Idefics3ForConditionalGeneration", "Idefics3Processor", image_token=IMAGE)
    assert tiny.processor.image_seq_len == family.IMAGE_SEQ_LEN == 4


def test_template_and_one_image_forward(tiny):
    model, processor = tiny.model, tiny.processor
    prompt = chat_prompt(processor, PROMPT)
    assert prompt == BOS + "User:<image>Who is this person?<end_of_utterance>\nAssistant:"
    enc = processor(text=prompt, images=[probe_image("flat")], return_tensors="pt")  # landscape 64x48
    tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:3] == [BOS, BOS, "U"]  # template BOS + tokenizer BOS, as on the hub
    text = processor.tokenizer.decode(enc["input_ids"][0])
    tile = "<image>" * family.IMAGE_SEQ_LEN
    grid = (f"{FAKE}<row_1_col_1>{tile}{FAKE}<row_1_col_2>{tile}\n"
            f"{FAKE}<row_2_col_1>{tile}{FAKE}<row_2_col_2>{tile}\n"
            f"\n{FAKE}<global-img>{tile}{FAKE}")
    assert text == BOS + BOS + "User:" + grid + "Who is this person?<end_of_utterance>\nAssistant:"
    assert tokens.count(IMAGE) == 5 * family.IMAGE_SEQ_LEN <= 64
    assert tuple(enc["pixel_values"].shape) == (1, 5, 3, family.TILE_SIZE, family.TILE_SIZE)
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_portrait_image_is_a_two_by_one_grid(tiny):
    enc = tiny.processor(text="<image>", images=[probe_image("board", (24, 48))], add_special_tokens=False)
    text = tiny.tok.decode(enc["input_ids"][0])
    assert "<row_2_col_1>" in text and "col_2" not in text and text.count(IMAGE) == 3 * family.IMAGE_SEQ_LEN


def test_generation_config_and_size(tiny):
    assert_greedy_generation_config(tiny.model, tiny.tok, eos=["<|end_of_text|>", "<end_of_utterance>"],
                                    pad="<|reserved_special_token_0|>")
    assert n_params(tiny.model) < MAX_PARAMS
