"""Tests of the tiny Llama 3.2 Vision builder (:mod:`mllmu_tasks.mini.families.mllama`)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mllmu_tasks.mini.families import build_family  # noqa: E402
from mllmu_tasks.mini.families.mllama import ZERO_INIT  # noqa: E402

MAX_PARAMS = 300_000
CONTINUATION = " This person is a nurse."
IMAGE_PROMPT = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>Who is this?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The checkpoint, built once and reloaded through the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_family("mllama", tmp_path_factory.mktemp("mllama"))
    processor = AutoProcessor.from_pretrained(path)
    return SimpleNamespace(model=AutoModelForImageTextToText.from_pretrained(path), processor=processor,
                           tok=processor.tokenizer)


def _image(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    """A plain image with a white square; 32x32 is one 32 px tile, 64x32 two."""
    img = Image.new("RGB", size, color)
    img.paste((255, 255, 255), (4, 4, 14, 14))
    return img


def _prompt(processor) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def _encode(tiny, text: str, image: Image.Image):
    """The processor's tensors; the template already holds the BOS, so the tokenizer adds none."""
    return tiny.processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt")


def _continuation_logprob(tiny, image: Image.Image) -> float:
    """log p(CONTINUATION | chat prompt with ``image``), summed over the continuation's tokens."""
    enc = _encode(tiny, _prompt(tiny.processor) + CONTINUATION, image)
    n = len(tiny.tok(CONTINUATION, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = tiny.model(**enc).logits[0, -n - 1:-1]
    return torch.log_softmax(logits, -1).gather(-1, enc["input_ids"][0, -n:, None]).sum().item()


def test_reloads_as_family(tiny):
    config = tiny.model.config
    assert config.model_type == "mllama" and type(tiny.processor).__name__ == "MllamaProcessor"
    assert tiny.processor.image_token == "<|image|>"
    assert tiny.tok.decode([config.image_token_id]) == "<|image|>"
    # as on the hub: <|image|> is the last id, one past the text vocabulary (the LM head cannot emit it)
    assert config.image_token_id == config.text_config.vocab_size == len(tiny.tok) - 1


def test_generation_config_is_greedy_with_hub_eos(tiny):
    gen = tiny.model.generation_config
    assert gen.do_sample is False and gen.max_new_tokens is None
    assert list(gen.eos_token_id) == tiny.tok.convert_tokens_to_ids(["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"])
    assert gen.pad_token_id == tiny.tok.convert_tokens_to_ids("<|finetune_right_pad_id|>")


def test_projector_outside_vision_tower_and_gates_redrawn(tiny):
    params = dict(tiny.model.named_parameters())
    assert params["model.multi_modal_projector.weight"].shape == (64, 96)
    assert not any("projector" in n for n in params if n.startswith("model.vision_model."))
    gates = [p for n, p in params.items() if any(z in n for z in ZERO_INIT)]
    assert len(gates) == 5 and all(bool(g.abs().min() > 0) for g in gates)


def test_chat_template_image_prompt_encodes_and_runs(tiny):
    text = _prompt(tiny.processor)
    assert text == IMAGE_PROMPT  # no system turn when a message holds an image
    enc = _encode(tiny, text, _image((200, 20, 20)))
    tokens = tiny.tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens.count("<|image|>") == 1 and tokens.count("<|begin_of_text|>") == 1
    start = tokens.index("<|image|>")
    assert enc["pixel_values"].shape == (1, 1, 2, 3, 32, 32)
    assert enc["aspect_ratio_ids"].tolist() == [[1]] and enc["aspect_ratio_mask"].tolist() == [[[1, 0]]]
    mask = enc["cross_attention_mask"]
    assert mask.shape == (1, len(tokens), 1, 2)
    assert not mask[0, :start].any() and mask[0, start:, 0, 0].all() and not mask[0, :, 0, 1].any()
    with torch.no_grad():
        logits = tiny.model(**enc).logits
    assert logits.shape == (1, len(tokens), len(tiny.tok) - 1) and torch.isfinite(logits).all()


def test_default_encoding_doubles_the_bos_and_wide_images_take_two_tiles(tiny):
    enc = tiny.processor(text=[_prompt(tiny.processor)], images=[_image((0, 90, 0), (64, 32))], return_tensors="pt")
    assert tiny.tok.convert_ids_to_tokens(enc["input_ids"][0, :2].tolist()) == ["<|begin_of_text|>"] * 2
    assert enc["aspect_ratio_mask"].tolist() == [[[1, 1]]] and enc["aspect_ratio_ids"].item() in (2, 3)


def test_assistant_turn_ends_with_eot(tiny):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Alice."}]}]
    assert tiny.processor.apply_chat_template(messages).endswith("<|end_header_id|>\n\nAlice.<|eot_id|>")


def test_image_changes_continuation_logprob(tiny):
    red, blue = (_continuation_logprob(tiny, _image(c)) for c in ((200, 20, 20), (10, 10, 240)))
    assert abs(red - blue) > 1e-3


def test_text_only_prompt_runs(tiny):
    ids = tiny.tok("Who is Alice?")["input_ids"]
    assert ids[0] == tiny.tok.bos_token_id  # Llama 3 tokenizers add <|begin_of_text|>
    text = tiny.processor.apply_chat_template([{"role": "user", "content": "Who is Alice?"}],
                                              add_generation_prompt=True, date_string="26 Jul 2024")
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
                           "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>")
    for enc in (tiny.processor(text=[text], images=None, add_special_tokens=False, return_tensors="pt"),
                tiny.tok([text], add_special_tokens=False, return_tensors="pt")):
        assert "cross_attention_mask" not in enc
        with torch.no_grad():
            logits = tiny.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        assert logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(logits).all()


def test_parameter_count_is_tiny(tiny):
    assert sum(p.numel() for p in tiny.model.parameters()) < MAX_PARAMS
