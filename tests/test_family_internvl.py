"""The tiny InternVL checkpoint (:mod:`mllmu_tasks.mini.families.internvl`) reloads offline and sees its image."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from mllmu_tasks.mini.families import build_family  # noqa: E402
from mllmu_tasks.mini.families import internvl as family  # noqa: E402

PROMPT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this person?"}]}]
CONTINUATION = "The person is a painter."


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``(model, processor)`` reloaded from one build through the Auto classes."""
    path = build_family("internvl", tmp_path_factory.mktemp("internvl"))
    model = transformers.AutoModelForImageTextToText.from_pretrained(path).eval()
    return model, transformers.AutoProcessor.from_pretrained(path)


def _image(kind: str):
    """A 64x48 test image: flat red, or a blue/yellow checkerboard."""
    if kind == "red":
        return Image.new("RGB", (64, 48), (220, 20, 20))
    board = Image.new("RGB", (64, 48), (20, 20, 220))
    for x in range(0, 64, 8):
        for y in range((x // 8) % 2 * 8, 48, 16):
            board.paste((240, 230, 30), (x, y, x + 8, y + 8))
    return board


def _continuation_logprob(model, processor, image) -> float:
    """Sum of log-probabilities of :data:`CONTINUATION` after the templated prompt with ``image``."""
    prompt = processor.apply_chat_template(PROMPT, add_generation_prompt=True)
    enc = processor(text=prompt + CONTINUATION, images=[image], return_tensors="pt")
    n_cont = len(processor.tokenizer(CONTINUATION, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(**enc).logits[0]
    targets = enc["input_ids"][0, -n_cont:]
    logprobs = torch.log_softmax(logits[-n_cont - 1:-1].float(), dim=-1)
    return logprobs.gather(1, targets[:, None]).sum().item()


def test_reload_classes(loaded):
    model, processor = loaded
    assert model.config.model_type == family.MODEL_TYPE == "internvl"
    assert type(model).__name__ == "InternVLForConditionalGeneration"
    assert type(processor).__name__ == "InternVLProcessor"
    assert type(processor.video_processor).__name__ == "InternVLVideoProcessor"
    assert processor.image_token == "<IMG_CONTEXT>"
    assert processor.tokenizer.convert_ids_to_tokens(model.config.image_token_id) == "<IMG_CONTEXT>"


def test_template_and_one_image_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template(PROMPT, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n<IMG_CONTEXT>\nWho is this person?<|im_end|>\n<|im_start|>assistant\n"
    enc = processor(text=prompt, images=[_image("red")], return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    start = tokens.index("<img>")
    expected = ["<img>"] + ["<IMG_CONTEXT>"] * family.IMAGE_SEQ_LENGTH + ["</img>"]
    assert tokens[start:start + len(expected)] == expected
    assert tokens.count("<IMG_CONTEXT>") == family.IMAGE_SEQ_LENGTH <= 64
    assert tuple(enc["pixel_values"].shape) == (1, 3, family.IMAGE_SIZE, family.IMAGE_SIZE)
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_image_changes_continuation_logprob(loaded):
    model, processor = loaded
    red = _continuation_logprob(model, processor, _image("red"))
    board = _continuation_logprob(model, processor, _image("board"))
    assert abs(red - board) > 1e-2


def test_text_only_forward(loaded):
    model, processor = loaded
    prompt = processor.apply_chat_template([{"role": "user", "content": "Where was she born?"}],
                                           add_generation_prompt=True)
    assert processor.tokenizer.bos_token is None  # Qwen2-style: nothing prepended
    enc = processor(text=prompt, images=None, return_tensors="pt")
    assert "pixel_values" not in enc
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape[1] == enc["input_ids"].shape[1] and torch.isfinite(logits).all()


def test_generation_config_and_size(loaded):
    model, processor = loaded
    gen = model.generation_config
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert gen.eos_token_id in (processor.tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                [processor.tokenizer.convert_tokens_to_ids("<|im_end|>")])
    assert sum(p.numel() for p in model.parameters()) < 300_000
