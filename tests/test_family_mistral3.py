"""Tests of the tiny Mistral 3 (Pixtral vision) builder (mllmu_tasks.mini.families.mistral3)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family, mistral3  # noqa: E402

USER_TURN = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}
SYSTEM_TURN = {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]}
ANSWER = "This is Alice Moreau."


def _image(color: tuple[int, int, int], square: tuple[int, int, int]) -> Image.Image:
    """A 64 x 64 image of ``color`` with a ``square`` patch in one corner."""
    img = Image.new("RGB", (64, 64), color)
    img.paste(square, (0, 0, 24, 24))
    return img


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(model, processor) reloaded from one build through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_family("mistral3", tmp_path_factory.mktemp("mistral3"))
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _answer_logprob(model, processor, image: Image.Image) -> float:
    """Summed log-probability of :data:`ANSWER` after a system + user turn with ``image`` (the rendered
    ``<s>`` is the only BOS: encoded without the tokenizer's own)."""
    prompt = processor.apply_chat_template([SYSTEM_TURN, USER_TURN], add_generation_prompt=True)
    enc = processor(text=prompt + ANSWER, images=image, return_tensors="pt", add_special_tokens=False)
    n = len(processor.tokenizer(ANSWER, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(**enc).logits[0, -n - 1:-1]
    return logits.log_softmax(-1).gather(-1, enc.input_ids[0, -n:, None]).sum().item()


def test_reloads_as_mistral3(built):
    model, processor = built
    assert model.config.model_type == "mistral3" == mistral3.MODEL_TYPE
    assert type(model).__name__ == "Mistral3ForConditionalGeneration"
    assert type(processor).__name__ == "PixtralProcessor"
    assert processor.tokenizer("x").input_ids[0] == processor.tokenizer.bos_token_id  # adds <s>, as the hub's
    gen = model.generation_config
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert gen.eos_token_id == processor.tokenizer.convert_tokens_to_ids("</s>")


def test_chat_template_is_the_hub_one_and_encodes_an_image(built):
    model, processor = built
    assert processor.chat_template == processor.tokenizer.chat_template == mistral3.CHAT_TEMPLATE
    prompt = processor.apply_chat_template([USER_TURN], add_generation_prompt=True)
    assert prompt.startswith("<s>[SYSTEM_PROMPT]You are Mistral Small 3, ")  # hub default system message
    assert prompt.endswith("[/SYSTEM_PROMPT][INST][IMG]Who is this?[/INST]")
    answered = processor.apply_chat_template([SYSTEM_TURN, USER_TURN, {"role": "assistant", "content": ANSWER}])
    assert answered == f"<s>[SYSTEM_PROMPT]Answer briefly.[/SYSTEM_PROMPT][INST][IMG]Who is this?[/INST]{ANSWER}</s>"
    enc = processor(text=prompt, images=_image((200, 30, 30), (255, 255, 255)), return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(enc.input_ids[0].tolist())
    start = tokens.index("[IMG]")
    assert "".join(tokens[start:start + 20]) == ("[IMG]" * 4 + "[IMG_BREAK]") * 3 + "[IMG]" * 4 + "[IMG_END]"
    assert tokens[:2] == ["<s>", "<s>"]  # template BOS + tokenizer BOS (hub behaviour)
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc.input_ids.shape[1], model.config.text_config.vocab_size)


def test_string_system_content_fails_as_on_the_hub(built):
    _, processor = built
    with pytest.raises(Exception, match="text"):
        processor.apply_chat_template([{"role": "system", "content": "Answer briefly."}, USER_TURN])


def test_image_changes_answer_logprob(built):
    model, processor = built
    red = _answer_logprob(model, processor, _image((200, 30, 30), (255, 255, 255)))
    blue = _answer_logprob(model, processor, _image((20, 40, 220), (0, 0, 0)))
    assert abs(red - blue) > 1e-3


def test_text_only_prompt_runs(built):
    model, processor = built
    enc = processor(text="[INST]What is Alice's job?[/INST]", images=None, return_tensors="pt")
    assert model.config.image_token_id not in enc.input_ids[0].tolist()
    with torch.no_grad():
        assert torch.isfinite(model(**enc).logits).all()


def test_parameter_count_is_tiny(built):
    model, _ = built
    assert sum(p.numel() for p in model.parameters()) < 300_000
