"""Tests of the LLaVA-1.5 family builder (mllmu_tasks.mini.families.llava): tiny_vlm + the hub chat template."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family, llava  # noqa: E402

USER_TURN = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}
ANSWER = " This is Alice Moreau."


def _image(color: tuple[int, int, int], square: tuple[int, int, int]) -> Image.Image:
    """A 32 x 32 image of ``color`` with a ``square`` patch in one corner."""
    img = Image.new("RGB", (32, 32), color)
    img.paste(square, (0, 0, 12, 12))
    return img


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(model, processor, tokenizer) reloaded from one build through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    path = build_family("llava", tmp_path_factory.mktemp("llava"))
    return (AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path),
            AutoTokenizer.from_pretrained(path))


def _answer_logprob(model, processor, image: Image.Image) -> float:
    """Summed log-probability of :data:`ANSWER` after the user turn with ``image``."""
    prompt = processor.apply_chat_template([USER_TURN], add_generation_prompt=True)
    enc = processor(text=prompt + ANSWER, images=image, return_tensors="pt")
    n = len(processor.tokenizer(ANSWER, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(**enc).logits[0, -n - 1:-1]
    return logits.log_softmax(-1).gather(-1, enc.input_ids[0, -n:, None]).sum().item()


def test_reloads_as_llava(built):
    model, processor, tokenizer = built
    assert model.config.model_type == "llava" == llava.MODEL_TYPE
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert type(processor).__name__ == "LlavaProcessor"
    assert tokenizer("x").input_ids[0] == tokenizer.bos_token_id  # adds <s>, as the hub's
    assert model.generation_config.do_sample is False and model.generation_config.max_new_tokens is None


def test_chat_template_is_the_hub_one_and_encodes_an_image(built):
    model, processor, tokenizer = built
    assert processor.chat_template == tokenizer.chat_template == llava.CHAT_TEMPLATE
    prompt = processor.apply_chat_template([USER_TURN], add_generation_prompt=True)
    assert prompt == "USER: <image>\nWho is this? ASSISTANT:"
    answered = tokenizer.apply_chat_template(
        [USER_TURN, {"role": "assistant", "content": [{"type": "text", "text": "Alice."}]}], tokenize=False)
    assert answered == "USER: <image>\nWho is this? ASSISTANT: Alice. "  # no </s>: the hub template writes none
    enc = processor(text=prompt, images=_image((200, 30, 30), (255, 255, 255)), return_tensors="pt")
    assert (enc.input_ids == model.config.image_token_id).sum().item() == 16
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc.input_ids.shape[1], model.config.text_config.vocab_size)


def test_image_changes_answer_logprob(built):
    model, processor, _ = built
    red = _answer_logprob(model, processor, _image((200, 30, 30), (255, 255, 255)))
    blue = _answer_logprob(model, processor, _image((20, 40, 220), (0, 0, 0)))
    assert abs(red - blue) > 1e-3


def test_text_only_prompt_runs(built):
    model, processor, _ = built
    enc = processor(text="USER: What is Alice's job? ASSISTANT:", images=None, return_tensors="pt")
    assert model.config.image_token_id not in enc.input_ids[0].tolist()
    with torch.no_grad():
        assert torch.isfinite(model(**enc).logits).all()


def test_parameter_count_is_tiny(built):
    model, _, _ = built
    assert sum(p.numel() for p in model.parameters()) < 300_000
