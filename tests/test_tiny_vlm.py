"""Tests of the tiny offline LLaVA VLM builder (mllmu_tasks.mini.tiny_vlm)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import io  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from mllmu_tasks.mini import tiny_vlm as tv  # noqa: E402
from mllmu_tasks.prompts import TEMPLATE_STRINGS  # noqa: E402

TEXTS = [
    "Alice Moreau was born in Lyon in 1971 and works as a marine biologist.",
    "Bram Okafor is a jazz pianist who grew up in Lagos.",
    "What is the profession of this person?",
    "Answer the following question in one sentence, accurately, in English.",
    "Where was this person born?",
    "USER: <image>\nWho is this?\nASSISTANT: This is Alice Moreau.</s>",
] + list(TEMPLATE_STRINGS)
HUB_PREFIXES = {"language_model.model.", "language_model.lm_head.", "multi_modal_projector.",
                "vision_tower.vision_model."}
PROMPTS = ["USER: <image>\nWho is this?\nASSISTANT:",
           "USER: <image>\nWhere was this person born, and what is the profession?\nASSISTANT:"]


def _image(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    """A plain RGB image with a bright square, so two images differ in more than the mean."""
    img = Image.new("RGB", size, color)
    img.paste((255, 255, 255), (4, 4, 12, 12))
    return img


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    return tv.build_tiny_vlm(tmp_path_factory.mktemp("vlm"), size="test", texts=TEXTS, seed=0)


@pytest.fixture(scope="module")
def in_memory():
    return tv.make_tiny_vlm("test", texts=TEXTS, seed=0)


@pytest.fixture(scope="module")
def reloaded(vlm_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, info = AutoModelForImageTextToText.from_pretrained(vlm_dir, output_loading_info=True)
    return model.eval(), AutoProcessor.from_pretrained(vlm_dir), info


def _prefix(key: str) -> str | None:
    return next((p for p in HUB_PREFIXES if key.startswith(p)), None)


# --------------------------------------------------------------------------- sizes


def test_parameter_counts_from_config():
    assert 0.1e6 <= tv.count_parameters("test") <= 0.4e6
    assert 0.7e6 <= tv.count_parameters("demo") <= 1.5e6
    assert tv.count_parameters("test", text_only=True) < tv.count_parameters("test")


def test_built_model_size_and_head_dim(in_memory):
    model, processor = in_memory
    n = sum(p.numel() for p in model.parameters())
    assert 0.1e6 <= n <= 0.4e6
    assert n == tv.count_parameters("test", vocab_size=len(processor.tokenizer))
    text = model.config.text_config
    assert text.head_dim == 32 and text.num_key_value_heads == 1
    assert text.vocab_size == len(processor.tokenizer)
    for size in tv.SIZES.values():
        assert size.head_dim >= 32 and size.image_tokens == 16


def test_get_size_errors():
    with pytest.raises(ValueError, match="unknown tiny VLM size"):
        tv.get_size("huge")
    bad = tv.TinySize(64, 2, 4, 1, 128, 32, 2, 1, 128, 32, 8, 512)  # head_dim 16
    with pytest.raises(ValueError, match=">= 32"):
        tv.get_size(bad)


# --------------------------------------------------------------------------- files and weights


def test_saved_files(vlm_dir):
    names = {p.name for p in vlm_dir.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "processor_config.json",
            "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    assert not [n for n in names if n.endswith(".bin")]
    config = json.loads((vlm_dir / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"]
    assert config["model_type"] == "llava"
    gen = json.loads((vlm_dir / "generation_config.json").read_text())
    assert gen["do_sample"] is False and "max_new_tokens" not in gen  # a task's limit is never overridden
    assert (gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"]) == (1, 2, 0)


def test_weights_use_hub_layout(vlm_dir):
    with safe_open(str(vlm_dir / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert f.metadata() == {"format": "pt"}
    assert all(_prefix(k) for k in keys), [k for k in keys if not _prefix(k)]
    assert {_prefix(k) for k in keys} == HUB_PREFIXES
    for key in ("vision_tower.vision_model.embeddings.patch_embedding.weight",
                "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                "vision_tower.vision_model.post_layernorm.weight",
                "multi_modal_projector.linear_1.weight",
                "language_model.model.embed_tokens.weight",
                "language_model.model.layers.1.mlp.down_proj.weight",
                "language_model.lm_head.weight"):
        assert key in keys


def test_to_hub_layout_renames_and_is_idempotent(in_memory):
    model, _ = in_memory
    memory = model.state_dict()
    hub = tv.to_hub_layout(memory)
    assert len(hub) == len(memory) and {_prefix(k) for k in hub} == HUB_PREFIXES
    assert hub["language_model.lm_head.weight"] is memory["lm_head.weight"]
    assert tv.to_hub_layout(hub).keys() == hub.keys()
    # What transformers 5.24 save_pretrained writes for a model built from a config.
    saved = {"vision_tower.encoder.layers.0.mlp.fc1.weight": torch.zeros(1),
             "language_model.model.norm.weight": torch.zeros(1)}
    assert set(tv.to_hub_layout(saved)) == {"vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
                                            "language_model.model.norm.weight"}
    with pytest.raises(ValueError, match="not a LLaVA key"):
        tv.to_hub_layout({"base_model.model.lm_head.weight": torch.zeros(1)})


def test_reload_has_no_missing_or_unexpected_keys(reloaded, in_memory):
    model, _, info = reloaded
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    memory = in_memory[0].state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == memory.keys()
    assert all(torch.equal(loaded[k], memory[k]) for k in memory)


def test_reload_gives_identical_logits(reloaded, in_memory):
    model, processor, _ = reloaded
    mem_model, mem_processor = in_memory
    img = _image((200, 30, 30))
    enc = processor(images=[img], text=[PROMPTS[0]], return_tensors="pt")
    mem_enc = mem_processor(images=[img], text=[PROMPTS[0]], return_tensors="pt")
    assert torch.equal(enc["input_ids"], mem_enc["input_ids"])
    assert torch.equal(enc["pixel_values"], mem_enc["pixel_values"])
    with torch.no_grad():
        a = model(**enc).logits
        b = mem_model(**enc).logits
        text_only = processor(text=["USER: Who is Alice Moreau?\nASSISTANT:"], return_tensors="pt")
        c, d = model(**text_only).logits, mem_model(**text_only).logits
    assert a.shape == (1, enc["input_ids"].shape[1], len(processor.tokenizer))
    assert torch.allclose(a, b, atol=1e-6, rtol=0) and torch.allclose(c, d, atol=1e-6, rtol=0)


def test_same_seed_same_weights_different_seed_different(tmp_path, vlm_dir):
    again = load_file(str(tv.build_tiny_vlm(tmp_path / "again", "test", texts=TEXTS, seed=0) / "model.safetensors"))
    other = load_file(str(tv.build_tiny_vlm(tmp_path / "other", "test", texts=TEXTS, seed=1) / "model.safetensors"))
    first = load_file(str(vlm_dir / "model.safetensors"))
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    random_keys = [k for k in first if not torch.equal(first[k], torch.ones_like(first[k]))
                   and not torch.equal(first[k], torch.zeros_like(first[k]))]
    assert random_keys and all(not torch.equal(first[k], other[k]) for k in random_keys)


# --------------------------------------------------------------------------- tokenizer and processor


def test_tokenizer_special_tokens_and_round_trip(reloaded):
    tok = reloaded[1].tokenizer
    assert [tok.convert_tokens_to_ids(t) for t in tv.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.padding_side == "left"
    for s in ["Alice Moreau was born in Lyon.", "  two  spaces\n\nand newlines\t!",
              "Ünïcödé — 東京 🙂", "USER: <image>\nWho is this?\nASSISTANT:", "zebra quixotic 12345"]:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == s
        assert tok(s)["input_ids"] == [tok.bos_token_id] + ids
    assert tok("<image>", add_special_tokens=False)["input_ids"] == [4]


def test_build_tokenizer_rejects_tiny_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        tv.build_tokenizer(TEXTS, 100)


def test_processor_expands_image_to_16_tokens(reloaded):
    model, processor, _ = reloaded
    assert model.config.image_token_index == processor.tokenizer.convert_tokens_to_ids("<image>")
    for size in [(32, 32), (48, 40)]:  # the second one is resized and centre-cropped
        enc = processor(images=[_image((10, 120, 220), size)], text=[PROMPTS[0]], return_tensors="pt")
        assert enc["pixel_values"].shape == (1, 3, 32, 32)
        assert int((enc["input_ids"] == model.config.image_token_index).sum()) == 16
    plain = processor.tokenizer(PROMPTS[0])["input_ids"]
    assert len(enc["input_ids"][0]) == len(plain) + 15


def test_chat_template(reloaded):
    processor = reloaded[1]
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}
    expected = "USER: <image>\nWho is this?\nASSISTANT:"
    assert processor.apply_chat_template([user], add_generation_prompt=True) == expected
    assert processor.tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False) == expected
    assert processor.apply_chat_template([{"role": "user", "content": "<image>\nWho is this?"}],
                                         add_generation_prompt=True) == expected
    # lm-eval (interleave=True) splits "<image>\nWho is this?" into [image, "\nWho is this?"].
    split = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\nWho is this?"}]}
    assert processor.apply_chat_template([split], add_generation_prompt=True) == expected
    turn = [user, {"role": "assistant", "content": [{"type": "text", "text": "Alice Moreau."}]}]
    assert processor.apply_chat_template(turn) == "USER: <image>\nWho is this?\nASSISTANT: Alice Moreau.</s>"
    assert processor.apply_chat_template([{"role": "user", "content": "Hi"}]) == "USER: Hi\n"


# --------------------------------------------------------------------------- generation


def test_greedy_generate_with_image_and_text_only(reloaded):
    model, processor, _ = reloaded
    enc = processor(images=[_image((200, 30, 30))], text=[PROMPTS[0]], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=6)
    assert out.shape[0] == 1 and enc["input_ids"].shape[1] < out.shape[1] <= enc["input_ids"].shape[1] + 6
    assert torch.equal(out, model.generate(**enc, max_new_tokens=6))
    # Text only: leave pixel_values out (pixel_values=None crashes in transformers 5.24).
    text = processor(text=["USER: Who is Alice Moreau?\nASSISTANT:"], return_tensors="pt")
    out_text = model.generate(**text, max_new_tokens=6)
    assert text["input_ids"].shape[1] < out_text.shape[1] <= text["input_ids"].shape[1] + 6
    assert isinstance(processor.decode(out_text[0], skip_special_tokens=True), str)


def test_build_tiny_lm_reloads(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tv.build_tiny_lm(tmp_path / "lm", "test", texts=TEXTS, seed=0)
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(model).__name__ == "LlamaForCausalLM"
    tok = AutoTokenizer.from_pretrained(out)
    mem_model, mem_tok = tv.make_tiny_lm("test", texts=TEXTS, seed=0)
    assert tok.get_vocab() == mem_tok.get_vocab()
    assert tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                   tokenize=False) == "USER: Hi\nASSISTANT:"
    enc = tok(["USER: Who is Alice Moreau?\nASSISTANT:"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**enc).logits, mem_model(**enc).logits, atol=1e-6, rtol=0)
    out_ids = model.generate(**enc, max_new_tokens=4)
    assert out_ids.shape[1] <= enc["input_ids"].shape[1] + 4
    assert tv.count_parameters("test", vocab_size=len(tok), text_only=True) == sum(
        p.numel() for p in model.parameters())


def test_lm_eval_hf_multimodal_matches_direct_generate(vlm_dir, reloaded):
    from lm_eval.api.instance import Instance
    from lm_eval.models.hf_vlms import HFMultimodalLM

    lm = HFMultimodalLM(pretrained=str(vlm_dir), device="cpu", batch_size=2)
    images = [_image((200, 30, 30)), _image((20, 200, 90), (48, 40))]
    gen_kwargs = {"until": [], "max_gen_toks": tv.MAX_NEW_TOKENS, "do_sample": False}
    requests = [Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs), {"visual": [im]}),
                         idx=i) for i, (p, im) in enumerate(zip(PROMPTS, images))]
    got = lm.generate_until(requests, disable_tqdm=True)

    model, processor, _ = reloaded
    expected = []
    for prompt, img in zip(PROMPTS, images):
        enc = processor(images=[img], text=[prompt], return_tensors="pt")
        out = model.generate(**enc, do_sample=False, max_new_tokens=tv.MAX_NEW_TOKENS)
        expected.append(processor.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    assert len(got) == 2 and all(isinstance(s, str) for s in got)
    assert got == expected


# --------------------------------------------------------------------------- corpus and CLI


def _png() -> bytes:
    buf = io.BytesIO()
    _image((1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def parquet_dir(tmp_path):
    """Two configurations in the hub layout: an evaluation config and ft_Data."""
    root = tmp_path / "data"
    (root / "Full_Set").mkdir(parents=True)
    (root / "ft_Data").mkdir()
    mc = {"Question": "What is the profession of this person?",
          "Options": {"A": "Baker", "B": "Pilot", "C": "Marine biologist", "D": "Judge"}, "Correct_Answer": "C"}
    row = {"image": {"bytes": _png(), "path": "portrait_0.png"}, "ID": "0", "biography": "Alice Moreau, Lyon, 1971.",
           "Classification_Task": {"Image_Textual_Questions": [mc], "Pure_Text_Questions": [mc]},
           "Generation_Task": [{"Question": "Where was Alice born?", "Ground_Truth": "In Lyon.", "Type": "Pure_Text"}]}
    pq.write_table(pa.Table.from_pylist([row]), root / "Full_Set" / "train-00000-of-00001.parquet")
    meta = json.dumps([{"ID": "0", "Question": "When was Alice Moreau born?", "Answer": "She was born in 1971."}])
    pq.write_table(pa.Table.from_pylist([{"image": {"bytes": _png(), "path": None}, "metadata": meta}]),
                   root / "ft_Data" / "train-00000-of-00001.parquet")
    return root


def test_benchmark_corpus_reads_parquet(parquet_dir):
    corpus = tv.benchmark_corpus(parquet_dir)
    for s in ["Alice Moreau, Lyon, 1971.", "Marine biologist", "What is the profession of this person?",
              "Where was Alice born?", "In Lyon.", "When was Alice Moreau born?", "She was born in 1971.",
              "Pure_Text", *TEMPLATE_STRINGS]:
        assert s in corpus
    assert not [s for s in corpus if s.startswith("[{")]  # the metadata JSON is parsed, not kept raw
    assert "portrait_0.png" not in corpus  # image structs are skipped
    assert len(corpus) == len(set(corpus)) and all(corpus)


def test_benchmark_corpus_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no parquet file"):
        tv.benchmark_corpus(tmp_path)
    with pytest.raises(FileNotFoundError):
        tv.benchmark_corpus(tmp_path / "absent")


def test_cli(parquet_dir, tmp_path, capsys):
    assert tv.main(["--out", str(tmp_path / "cli"), "--data-dir", str(parquet_dir), "--seed", "3"]) == 0
    assert (tmp_path / "cli" / "model.safetensors").exists()
    assert tv.main(["--out", str(tmp_path / "cli_lm"), "--data-dir", str(parquet_dir), "--text-only"]) == 0
    assert json.loads((tmp_path / "cli_lm" / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert tv.main(["--out", str(tmp_path / "none"), "--data-dir", str(tmp_path / "empty")]) == 2
    assert "no parquet file" in capsys.readouterr().err
