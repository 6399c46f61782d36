"""The tiny Idefics2 checkpoint (:mod:`mllmu_tasks.mini.families.idefics2`) reloads offline and sees its image."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from mllmu_tasks.mini.families import build_family  # noqa: E402
from mllmu_tasks.mini.families import idefics2 as family  # noqa: E402

PROMPT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this person?"}]}]
CONTINUATION = " The person is a painter."
FAKE, IMAGE = "<fake_token_around_image>", "<image>"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``(model, processor)`` reloaded from one build through the Auto classes."""
    path = build_family("idefics2", tmp_path_factory.mktemp("idefics2"))
    model = transformers.AutoModelForImageTextToText.from_pretrained(path).eval()
    return model, transformers.AutoProcessor.from_pretrained(path)


def _image(kind: str):
    """A 64x48 test image: flat red, or a blue/yellow checkerboard of 8 px squares."""
    if kind == "red":
        return Image.new("RGB", (64, 48), (220, 20, 20))
    board = Image.new("RGB", (64, 48), (20, 20, 220))
    for x in range(0, 64, 8):
        for y in range((x // 8) % 2 * 8, 48, 16):
            board.paste((240, 230, 30), (x, y, x + 8, y + 8))
    return board


def _continuation_logprob(model, processor, image) -> float:
    """Summed log-probability of :data:`CONTINUATION` after the templated :data:`PROMPT` showing ``image``."""
    prompt = processor.apply_chat_template(PROMPT, add_generation_prompt=True)
    enc = processor(text=prompt + CONTINUATION, images=[image], return_tensors="pt")
    n_cont = len(processor.tokenizer(CONTINUATION, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(**enc).logits[0]
    targets = enc["input_ids"][0, -n_cont:]
    logprobs = torch.log_softmax(logits[-n_cont - 1:-1].float(), dim=-1)
    return logprobs.gather(1, targets[:, None]).sum().item()


def test_reload_classes_and_image_token(loaded):
    model, processor = loaded
    assert model.config.model_type == family.MODEL_TYPE == "idefics2"
    assert type(model).__name__ == "Idefics2ForConditionalGeneration"
    assert type(processor).__name__ == "Idefics2Processor"
    assert processor.image_token == IMAGE and processor.image_seq_len == family.N_LATENTS
    assert processor.tokenizer.convert_ids_to_tokens(model.config.image_token_id) == IMAGE
    assert processor.image_processor.do_image_splitting is True


def test_template_and_one_image_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template(PROMPT, add_generation_prompt=True)
    assert prompt == "User:<image>Who is this person?<end_of_utterance>\nAssistant:"  # no BOS in the template
    enc = processor(text=prompt, images=[_image("red")], return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:2] == ["<s>", "U"] and tokens.count("<s>") == 1  # the tokenizer adds the only BOS
    start = tokens.index(FAKE)
    expected = ([FAKE] + [IMAGE] * family.N_LATENTS) * 5 + [FAKE]  # 4 crops + the whole image
    assert tokens[start:start + len(expected)] == expected and len(expected) == family.IMAGE_TOKENS
    assert tokens.count(IMAGE) == 5 * family.N_LATENTS <= 64
    assert tuple(enc["pixel_values"].shape[:3]) == (1, 5, 3)
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_assistant_turn_ends_with_end_of_utterance(loaded):
    _, processor = loaded
    turn = PROMPT + [{"role": "assistant", "content": [{"type": "text", "text": "A painter."}]}]
    assert processor.apply_chat_template(turn).endswith("\nAssistant: A painter.<end_of_utterance>\n")


def test_image_changes_continuation_logprob(loaded):
    model, processor = loaded
    red = _continuation_logprob(model, processor, _image("red"))
    board = _continuation_logprob(model, processor, _image("board"))
    assert abs(red - board) > 1e-2


def test_text_only_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "Where?"}]}],
                                           add_generation_prompt=True)
    assert prompt == "User: Where?<end_of_utterance>\nAssistant:"
    enc = processor(text=prompt, images=None, return_tensors="pt")
    assert "pixel_values" not in enc
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape[1] == enc["input_ids"].shape[1] and torch.isfinite(logits).all()


def test_generation_config_and_size(loaded):
    model, processor = loaded
    gen, ids = model.generation_config, processor.tokenizer.convert_tokens_to_ids
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert gen.eos_token_id == [ids("</s>"), ids("<end_of_utterance>")]
    assert gen.pad_token_id == ids("<unk>") == processor.tokenizer.pad_token_id
    assert sum(p.numel() for p in model.parameters()) < 300_000
