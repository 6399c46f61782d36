"""Tests of the tiny Qwen2-VL builder (:mod:`mllmu_tasks.mini.families.qwen2_vl`).

``tests/test_family_qwen2_5_vl.py`` imports these tests and the ``tiny`` fixture and runs them on Qwen2.5-VL:
the fixture reads ``FAMILY``/``PROCESSOR_CLASS`` from the module that collects the test.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family  # noqa: E402

FAMILY = "qwen2_vl"
PROCESSOR_CLASS = "Qwen2VLProcessor"
MAX_PARAMS = 300_000
IMAGE_SPAN = "<|vision_start|><|image_pad|><|vision_end|>"
CONTINUATION = " This person is a nurse."


@pytest.fixture(scope="module")
def tiny(request, tmp_path_factory):
    """The family's checkpoint, built once and reloaded through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    family = request.module.FAMILY
    path = build_family(family, tmp_path_factory.mktemp(family))
    return SimpleNamespace(family=family, processor_class=request.module.PROCESSOR_CLASS,
                           model=AutoModelForImageTextToText.from_pretrained(path),
                           processor=AutoProcessor.from_pretrained(path))


def _image(color: tuple[int, int, int]) -> Image.Image:
    """A 64x64 plain image with a white square (resized by the processor to 56x56: 4 image tokens)."""
    img = Image.new("RGB", (64, 64), color)
    img.paste((255, 255, 255), (4, 4, 30, 30))
    return img


def _prompt(processor) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def _continuation_logprob(tiny, image: Image.Image) -> float:
    """log p(CONTINUATION | chat prompt with ``image``), summed over the continuation's tokens."""
    enc = tiny.processor(text=[_prompt(tiny.processor) + CONTINUATION], images=[image], return_tensors="pt")
    n = len(tiny.processor.tokenizer(CONTINUATION)["input_ids"])
    with torch.no_grad():
        logits = tiny.model(**enc).logits[0, -n - 1:-1]
    return torch.log_softmax(logits, -1).gather(-1, enc["input_ids"][0, -n:, None]).sum().item()


def test_reloads_as_family(tiny):
    assert tiny.model.config.model_type == tiny.family
    assert type(tiny.processor).__name__ == tiny.processor_class
    assert tiny.processor.image_token == "<|image_pad|>"
    assert tiny.processor.tokenizer.decode([tiny.model.config.image_token_id]) == "<|image_pad|>"


def test_generation_config_is_greedy_with_hub_eos(tiny):
    tok, gen = tiny.processor.tokenizer, tiny.model.generation_config
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert list(gen.eos_token_id) == tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])


def test_merger_lives_inside_the_vision_tower(tiny):
    names = [n for n, _ in tiny.model.named_parameters()]
    assert "model.visual.merger.mlp.0.weight" in names and "model.visual.merger.mlp.2.weight" in names
    assert not any("multi_modal_projector" in n for n in names)


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = _prompt(tiny.processor)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert f"{IMAGE_SPAN}Who is this?<|im_end|>\n<|im_start|>assistant\n" in text
    enc = tiny.processor(text=[text], images=[_image((200, 20, 20))], return_tensors="pt")
    tokens = tiny.processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    n_image = int(enc["image_grid_thw"].prod()) // 4
    assert 1 <= n_image <= 64
    start = tokens.index("<|vision_start|>")
    assert tokens[start + 1:start + n_image + 2] == ["<|image_pad|>"] * n_image + ["<|vision_end|>"]
    with torch.no_grad():
        logits = tiny.model(**enc).logits
    assert logits.shape == (1, len(tokens), len(tiny.processor.tokenizer)) and torch.isfinite(logits).all()


def test_image_changes_continuation_logprob(tiny):
    red, blue = (_continuation_logprob(tiny, _image(c)) for c in ((200, 20, 20), (10, 10, 240)))
    assert abs(red - blue) > 1e-3


def test_text_only_prompt_runs(tiny):
    tok = tiny.processor.tokenizer
    ids = tok("Who is Alice?")["input_ids"]
    assert ids[0] not in tok.all_special_ids  # Qwen tokenizers add no BOS
    text = tiny.processor.apply_chat_template([{"role": "user", "content": "Who is Alice?"}],
                                              add_generation_prompt=True)
    for enc in (tiny.processor(text=[text], images=None, return_tensors="pt"), tok([text], return_tensors="pt")):
        with torch.no_grad():
            logits = tiny.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        assert logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(logits).all()


def test_parameter_count_is_tiny(tiny):
    assert sum(p.numel() for p in tiny.model.parameters()) < MAX_PARAMS
