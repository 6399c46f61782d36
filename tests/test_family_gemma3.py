"""Tests of the tiny Gemma 3 builder (:mod:`mllmu_tasks.mini.families.gemma3`)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family  # noqa: E402

N_IMAGE = 16
MAX_PARAMS = 200_000
CONTINUATION = "This person is a nurse."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The checkpoint, built once and reloaded through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_family("gemma3", tmp_path_factory.mktemp("gemma3"))
    return SimpleNamespace(model=AutoModelForImageTextToText.from_pretrained(path),
                           processor=AutoProcessor.from_pretrained(path))


def _image(color: tuple[int, int, int]) -> Image.Image:
    """An 80x80 plain image with a white square (resized by the processor to 64x64)."""
    img = Image.new("RGB", (80, 80), color)
    img.paste((255, 255, 255), (4, 4, 40, 40))
    return img


def _prompt(processor) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def test_reloads_as_family(tiny):
    assert tiny.model.config.model_type == "gemma3"
    assert type(tiny.processor).__name__ == "Gemma3Processor"
    assert tiny.processor.image_token == "<start_of_image>"  # the placeholder in text, not the soft token
    assert tiny.processor.tokenizer.decode([tiny.model.config.image_token_id]) == "<image_soft_token>"
    assert tiny.model.config.mm_tokens_per_image == N_IMAGE


def test_generation_config_is_greedy_with_hub_eos(tiny):
    gen, tok = tiny.model.generation_config, tiny.processor.tokenizer
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert list(gen.eos_token_id) == tok.convert_tokens_to_ids(["<eos>", "<end_of_turn>"])


def test_projector_is_redrawn(tiny):
    weight = tiny.model.model.multi_modal_projector.mm_input_projection_weight
    assert weight.shape == (32, 64) and weight.abs().sum() > 0


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = _prompt(tiny.processor)
    assert text == "<bos><start_of_turn>user\n<start_of_image>Who is this?<end_of_turn>\n<start_of_turn>model\n"
    enc = tiny.processor(text=[text], images=[_image((200, 20, 20))], return_tensors="pt")
    tokens = tiny.processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens[:2] == ["<bos>", "<bos>"]  # template's {{ bos_token }} + the tokenizer's BOS, as on the hub
    start = tokens.index("<start_of_image>")
    assert tokens[start + 1:start + N_IMAGE + 2] == ["<image_soft_token>"] * N_IMAGE + ["<end_of_image>"]
    assert enc["token_type_ids"].sum() == N_IMAGE
    with torch.no_grad():
        logits = tiny.model(**enc).logits
    assert logits.shape == (1, len(tokens), len(tiny.processor.tokenizer)) and torch.isfinite(logits).all()


def test_assistant_turn_ends_with_end_of_turn(tiny):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert tiny.processor.apply_chat_template(messages).endswith("model\nHello<end_of_turn>\n")


def _continuation_logprob(tiny, image: Image.Image) -> float:
    """log p(CONTINUATION | chat prompt with ``image``), summed over the continuation's tokens."""
    enc = tiny.processor(text=[_prompt(tiny.processor) + CONTINUATION], images=[image], return_tensors="pt")
    n = len(tiny.processor.tokenizer(CONTINUATION, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = tiny.model(**enc).logits[0, -n - 1:-1]
    return torch.log_softmax(logits, -1).gather(-1, enc["input_ids"][0, -n:, None]).sum().item()


def test_image_changes_continuation_logprob(tiny):
    red, blue = (_continuation_logprob(tiny, _image(c)) for c in ((200, 20, 20), (10, 10, 240)))
    assert abs(red - blue) > 1e-3


def test_text_only_prompt_runs(tiny):
    tok = tiny.processor.tokenizer
    assert tok("Who is Alice?")["input_ids"][0] == tok.bos_token_id
    text = tiny.processor.apply_chat_template([{"role": "user", "content": "Who is Alice?"}],
                                              add_generation_prompt=True)
    for enc in (tiny.processor(text=[text], images=None, return_tensors="pt"), tok([text], return_tensors="pt")):
        with torch.no_grad():
            logits = tiny.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        assert logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(logits).all()


def test_parameter_count_is_tiny(tiny):
    assert sum(p.numel() for p in tiny.model.parameters()) < MAX_PARAMS
