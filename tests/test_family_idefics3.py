"""The tiny Idefics3 checkpoint (:mod:`mllmu_tasks.mini.families.idefics3`) reloads offline and sees its image."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from mllmu_tasks.mini.families import build_family  # noqa: E402
from mllmu_tasks.mini.families import idefics3 as family  # noqa: E402

PROMPT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this person?"}]}]
CONTINUATION = " The person is a painter."
BOS, FAKE, IMAGE = "<|begin_of_text|>", "<fake_token_around_image>", "<image>"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``(model, processor)`` reloaded from one build through the Auto classes."""
    path = build_family("idefics3", tmp_path_factory.mktemp("idefics3"))
    model = transformers.AutoModelForImageTextToText.from_pretrained(path).eval()
    return model, transformers.AutoProcessor.from_pretrained(path)


def _image(kind: str, size: tuple[int, int] = (64, 48)):
    """A test image (landscape by default): flat green, or a magenta/white checkerboard of 8 px squares."""
    if kind == "green":
        return Image.new("RGB", size, (30, 200, 60))
    board = Image.new("RGB", size, (200, 30, 200))
    for x in range(0, size[0], 8):
        for y in range((x // 8) % 2 * 8, size[1], 16):
            board.paste((250, 250, 250), (x, y, x + 8, y + 8))
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
    assert model.config.model_type == family.MODEL_TYPE == "idefics3"
    assert type(model).__name__ == "Idefics3ForConditionalGeneration"
    assert type(processor).__name__ == "Idefics3Processor"
    assert processor.image_token == IMAGE and processor.image_seq_len == family.IMAGE_SEQ_LEN == 4
    assert processor.tokenizer.convert_ids_to_tokens(model.config.image_token_id) == IMAGE


def test_template_and_one_image_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template(PROMPT, add_generation_prompt=True)
    assert prompt == BOS + "User:<image>Who is this person?<end_of_utterance>\nAssistant:"
    enc = processor(text=prompt, images=[_image("green")], return_tensors="pt")
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
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_portrait_image_is_a_two_by_one_grid(loaded):
    _, processor = loaded
    enc = processor(text="<image>", images=[_image("board", (24, 48))], add_special_tokens=False)
    text = processor.tokenizer.decode(enc["input_ids"][0])
    assert "<row_2_col_1>" in text and "col_2" not in text and text.count(IMAGE) == 3 * family.IMAGE_SEQ_LEN


def test_assistant_turn_ends_with_end_of_utterance(loaded):
    _, processor = loaded
    turn = PROMPT + [{"role": "assistant", "content": [{"type": "text", "text": "A painter."}]}]
    assert processor.apply_chat_template(turn).endswith("\nAssistant: A painter.<end_of_utterance>\n")


def test_image_changes_continuation_logprob(loaded):
    model, processor = loaded
    green = _continuation_logprob(model, processor, _image("green"))
    board = _continuation_logprob(model, processor, _image("board"))
    assert abs(green - board) > 1e-2


def test_text_only_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "Where?"}]}],
                                           add_generation_prompt=True)
    assert prompt == BOS + "User: Where?<end_of_utterance>\nAssistant:"
    enc = processor(text=prompt, images=None, return_tensors="pt")
    assert "pixel_values" not in enc
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape[1] == enc["input_ids"].shape[1] and torch.isfinite(logits).all()


def test_generation_config_and_size(loaded):
    model, processor = loaded
    gen, ids = model.generation_config, processor.tokenizer.convert_tokens_to_ids
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert gen.eos_token_id == [ids("<|end_of_text|>"), ids("<end_of_utterance>")]
    assert gen.pad_token_id == ids("<|reserved_special_token_0|>") == processor.tokenizer.pad_token_id
    assert sum(p.numel() for p in model.parameters()) < 300_000
