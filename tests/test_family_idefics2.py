"""The tiny Idefics2 checkpoint (:mod:`mllmu_tasks.mini.families.idefics2`) reloads offline and sees its image.

``tests/test_family_idefics3.py`` imports the checks the two families share (Idefics3's template is Idefics2's
behind a BOS) and runs them on its own ``tiny``; what differs is looked up by ``tiny.name``.
"""

from __future__ import annotations

from family_support import (MAX_PARAMS, assert_greedy_generation_config, assert_reloads_as,
                            assert_text_only_forward, assistant_turn, chat_prompt, continuation_logprob,
                            family_fixture, forward_logits, image_gap, n_params, probe_image, user_turn)

from mllmu_tasks.mini.families import idefics2 as family

PROMPT = [user_turn("Who is this person?")]
CONTINUATION = " The person is a painter."
FAKE, IMAGE = "<fake_token_around_image>", "<image>"
#: What the family's chat template writes before the first turn.
TEMPLATE_BOS = {"idefics2": "", "idefics3": "<|begin_of_text|>"}

tiny = family_fixture("idefics2")


def test_reload_classes_and_image_token(tiny):
    assert_reloads_as(tiny, "Idefics2ForConditionalGeneration", "Idefics2Processor", image_token=IMAGE)
    assert tiny.processor.image_seq_len == family.N_LATENTS
    assert tiny.processor.image_processor.do_image_splitting is True


def test_template_and_one_image_forward(tiny):
    model, processor = tiny.model, tiny.processor
    prompt = chat_prompt(processor, PROMPT)
    assert prompt == "User:<image>Who is this person?<end_of_utterance>\nAssistant:"  # no BOS in the template
    enc = processor(text=prompt, images=[probe_image("flat")], return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:2] == ["<s>", "U"] and tokens.count("<s>") == 1  # the tokenizer adds the only BOS
    start = tokens.index(FAKE)
    expected = ([FAKE] + [IMAGE] * family.N_LATENTS) * 5 + [FAKE]  # 4 crops + the whole image
    assert tokens[start:start + len(expected)] == expected and len(expected) == family.IMAGE_TOKENS
    assert tokens.count(IMAGE) == 5 * family.N_LATENTS <= 64
    assert tuple(enc["pixel_values"].shape[:3]) == (1, 5, 3)
    forward_logits(model, enc, vocab=model.config.text_config.vocab_size)


def test_assistant_turn_ends_with_end_of_utterance(tiny):
    turn = PROMPT + [assistant_turn("A painter.")]
    assert tiny.processor.apply_chat_template(turn).endswith("\nAssistant: A painter.<end_of_utterance>\n")


def test_image_changes_continuation_logprob(tiny):
    assert image_gap(lambda image: continuation_logprob(tiny.model, tiny.processor, PROMPT, CONTINUATION,
                                                        image)) > 1e-2


def test_text_only_forward(tiny):
    prompt = chat_prompt(tiny.processor, [user_turn("Where?", image=False)])
    assert prompt == TEMPLATE_BOS[tiny.name] + "User: Where?<end_of_utterance>\nAssistant:"
    assert_text_only_forward(tiny, prompt)


def test_generation_config_and_size(tiny):
    assert_greedy_generation_config(tiny.model, tiny.tok, eos=["</s>", "<end_of_utterance>"], pad="<unk>")
    assert n_params(tiny.model) < MAX_PARAMS
