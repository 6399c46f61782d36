"""unlearners on the tiny VLM and the mini benchmark (CPU): data, labels, losses, methods, outputs."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoProcessor

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from unlearners import api, data
from unlearners.collator import AnswerOnlyCollator
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
from unlearners.methods import METHODS, get_method
from unlearners.methods.base import Method
from unlearners.methods.kl_min import KLMinConfig
from unlearners.methods.losses import answer_kl, answer_nll, forward_logits
from unlearners.methods.npo import NPOConfig
from unlearners.model import frozen_copy_reference
from unlearners.trainer import NonFiniteLossError

from conftest import SHARED_FT


@pytest.fixture(scope="module")
def base_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("base"), size="test")


@pytest.fixture(scope="module")
def forget_examples():
    return data.load_examples("mini", "forget", "image+text", forget_ratio=10)


@pytest.fixture(scope="module")
def retain_examples():
    return data.load_examples("mini", "retain", "image+text", forget_ratio=10)[:48]


def train_args(out, **kw):
    defaults = dict(output_dir=str(out), use_cpu=True, max_steps=3, learning_rate=1e-2, disable_tqdm=True,
                    seed=0, logging_steps=1, per_device_train_batch_size=4)
    return UnlearnTrainingArguments(**{**defaults, **kw})


def run_method(name, base, out, modality="image+text", config=None, **kw):
    return api.run(name, ModelArguments(model=str(base)), DataArguments(source="mini", forget_ratio=10,
                                                                       modality=modality),
                   train_args(out, **kw), config)


def mean_nll(path, examples) -> float:
    """Answer-token NLL (nats/token) of a saved checkpoint over examples, computed independently of training."""
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(path))
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), 16):
            batch = collate.encode(examples[i:i + 16])
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += answer_nll(forward_logits(model, batch), batch["labels"]).item() * n
            count += n
    return total / count


# ---------------------------------------------------------------- data


def test_forget_and_retain_selection_from_the_source():
    forget = data.load_examples("mini", "forget", "text-only", forget_ratio=10)
    retain = data.load_examples("mini", "retain", "text-only", forget_ratio=10)
    everyone = data.load_examples("mini", "all", "text-only")
    assert len({e.profile_id for e in forget}) == 4 and len({e.profile_id for e in retain}) == 36
    assert not {e.profile_id for e in forget} & {e.profile_id for e in retain}
    assert len(forget) + len(retain) == len(everyone) == 40 * 29
    assert all(e.image is None for e in forget)
    with_images = data.load_examples("mini", "forget", "image+text", forget_ratio=10)
    assert all(e.image.mode == "RGB" for e in with_images)


@pytest.mark.skipif(not SHARED_FT.is_dir(), reason=f"real fine-tuning text not found at {SHARED_FT}")
def test_real_jsonl_with_splits_file():
    jsonl, splits = str(SHARED_FT / "ft_qa.jsonl"), SHARED_FT / "splits.json"
    forget = data.load_examples(jsonl, "forget", "text-only", forget_ratio=5, splits=splits)
    split = json.loads(splits.read_text())
    assert {e.profile_id for e in forget} == set(split["forget_5"])
    with pytest.raises(ValueError, match="image\\+text training needs images"):
        data.load_examples(jsonl, "forget", "image+text", forget_ratio=5, splits=splits)
    with pytest.raises(ValueError, match="give a splits file"):
        data.load_examples(jsonl, "forget", "text-only", forget_ratio=5)


def test_cut_jsonl_keeps_the_forget_share_and_the_lines(tmp_path):
    def line(pid, n):
        pairs = [{"ID": pid, "Question": f"Q{k} of {pid}?", "Answer": f"A{k} of {pid}."} for k in range(n)]
        return json.dumps({"ID": pid, "metadata": pairs})

    ids = [f"{i:03d}" for i in range(1, 21)]
    source = tmp_path / "ft_qa.jsonl"
    source.write_text("\n".join(line(pid, 2 + int(pid) % 3) for pid in ids) + "\n")
    forget_ids = ["019", "004", "011"]  # the splits' order, not file order
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"forget_15": forget_ids, "retain_85": [i for i in ids if i not in forget_ids]}))
    jsonl, cut_splits = data.cut_jsonl(source, splits, 15, 10, tmp_path / "cut")
    kept = json.loads(cut_splits.read_text())
    assert kept == {"forget_15": ["019", "004"],  # round(10 * 15 / 100) = 2 (half to even), in the splits' order
                    "retain_85": ["001", "002", "003", "005", "006", "007", "008", "009"]}
    source_lines = source.read_text().splitlines()
    assert jsonl.read_text().splitlines() == [source_lines[int(pid) - 1] for pid in sorted(kept["forget_15"] +
                                                                                          kept["retain_85"])]
    forget = data.load_examples(str(jsonl), "forget", "text-only", forget_ratio=15, splits=cut_splits)
    assert [e.question for e in forget] == ["Q0 of 004?", "Q1 of 004?", "Q2 of 004?", "Q0 of 019?", "Q1 of 019?",
                                             "Q2 of 019?"]  # 2 + id % 3 pairs each
    with pytest.raises(ValueError, match="--profiles must be between 2 and 20"):
        data.cut_jsonl(source, splits, 15, 21, tmp_path / "cut")


def test_named_questions_name_the_person_and_drop_the_name_pair(tmp_path):
    metadata = [{"ID": "007", "Question": "What is the name of this person?",
                 "Answer": "The name of this person is Anaïs van Dijk."},
                {"ID": "007", "Question": "Where was this person born?", "Answer": "This person was born in Lyon."},
                {"ID": "007", "Question": "What is This Person's job?", "Answer": "A potter."},
                {"ID": "007", "Question": "Does the individual have a pet?", "Answer": "A cat."},
                {"ID": "007", "Question": "What is the father's occupation?", "Answer": "A baker."}]
    assert [p["Question"] for p in data.name_the_person(metadata, "x")] == [
        "Where was Anaïs van Dijk born?", "What is Anaïs van Dijk's job?", "Does Anaïs van Dijk have a pet?",
        "Anaïs van Dijk: What is the father's occupation?"]
    source = tmp_path / "ft.jsonl"
    source.write_text(json.dumps({"ID": "007", "metadata": metadata}) + "\n\n" + json.dumps(
        {"ID": "008", "metadata": [{"ID": "008", "Question": "Name?", "Answer": "unknown"}]}) + "\n")
    with pytest.raises(ValueError, match="ft.jsonl, line 3: the first pair's answer does not end with"):
        data.named_jsonl(source, tmp_path / "named.jsonl")
    source.write_text(json.dumps({"ID": "007", "metadata": metadata}) + "\n")
    named = data.load_examples(str(data.named_jsonl(source, tmp_path / "named.jsonl")), "all", "text-only")
    assert [(e.profile_id, e.question, e.answer) for e in named][:1] == [
        ("007", "Where was Anaïs van Dijk born?", "This person was born in Lyon.")]


def test_paired_dataset_cycles_the_second_stream(forget_examples, retain_examples):
    ds = data.PairedDataset({"forget": forget_examples, "retain": retain_examples[:5]}, seed=1)
    assert len(ds) == len(forget_examples)
    seen = [ds[i]["retain"] for i in range(10)]
    assert seen[:5] == seen[5:] and len({id(x) for x in seen[:5]}) == 5
    assert [ds[i]["forget"] for i in range(3)] == forget_examples[:3]


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("modality", ["image+text", "text-only"])
def test_labels_cover_exactly_the_answer(base_vlm, modality):
    processor = AutoProcessor.from_pretrained(base_vlm)
    examples = data.load_examples("mini", "forget", modality, forget_ratio=10)[:6]
    batch = AnswerOnlyCollator(processor).encode(examples)
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    for i, ex in enumerate(examples):
        answer_ids = batch["input_ids"][i][batch["labels"][i] != -100]
        assert processor.tokenizer.decode(answer_ids, skip_special_tokens=True).strip() == ex.answer
        assert answer_ids[-1].item() == processor.tokenizer.eos_token_id
        n_image_tokens = int((batch["input_ids"][i] == image_token).sum())
        assert n_image_tokens == (16 if modality == "image+text" else 0)
    assert ("pixel_values" in batch) == (modality == "image+text")
    # right padding: every row starts with its first token, padding only at the end
    assert (batch["attention_mask"][:, 0] == 1).all()


# ---------------------------------------------------------------- losses at step 0


def test_npo_and_kl_min_at_step_zero(base_vlm, forget_examples, retain_examples):
    model = AutoModelForImageTextToText.from_pretrained(base_vlm).eval()
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(base_vlm))
    batches = {"forget": collate.encode(forget_examples[:4]), "retain": collate.encode(retain_examples[:4])}
    reference = frozen_copy_reference(model, "cpu")
    with torch.no_grad():
        beta = 0.4
        npo_loss, _ = get_method("npo")(NPOConfig(beta=beta)).loss(model, batches, reference)
        assert npo_loss.item() == pytest.approx((2 / beta) * math.log(2), abs=1e-6)
        _, parts = get_method("kl_min")(KLMinConfig()).loss(model, batches, reference)
        assert abs(parts["retain_kl"]) < 1e-6
        # the KL helper against an independent computation on a perturbed model
        logits = forward_logits(model, batches["retain"])
        other = logits + torch.randn_like(logits)
        labels = batches["retain"]["labels"]
        mask = labels[:, 1:] != -100
        p_ref = torch.softmax(logits[:, :-1], -1)
        kl = (p_ref * (torch.log_softmax(logits[:, :-1], -1) - torch.log_softmax(other[:, :-1], -1))).sum(-1)
        assert answer_kl(logits, other, labels).item() == pytest.approx((kl[mask]).mean().item(), rel=1e-5)
        # the answer NLL equals transformers' own causal-LM loss on the same labels
        hf_loss = model(**batches["forget"]).loss
        assert answer_nll(forward_logits(model, batches["forget"]), batches["forget"]["labels"]).item() == \
            pytest.approx(hf_loss.item(), rel=1e-5)


# ---------------------------------------------------------------- methods change the model as they should


@pytest.fixture(scope="module")
def unlearned(base_vlm, tmp_path_factory):
    root = tmp_path_factory.mktemp("unlearned")
    return {name: run_method(name, base_vlm, root / name) for name in ("ga", "grad_diff", "npo")}


def test_ga_and_npo_raise_forget_nll(base_vlm, unlearned, forget_examples):
    before = mean_nll(base_vlm, forget_examples)
    assert mean_nll(unlearned["ga"], forget_examples) > before + 0.05
    assert mean_nll(unlearned["npo"], forget_examples) > before + 0.05


def test_grad_diff_keeps_retain_nll_below_ga(base_vlm, unlearned, forget_examples, retain_examples):
    assert mean_nll(unlearned["grad_diff"], forget_examples) > mean_nll(base_vlm, forget_examples)
    assert mean_nll(unlearned["grad_diff"], retain_examples) < mean_nll(unlearned["ga"], retain_examples)


@pytest.mark.parametrize("modality", ["image+text", "text-only"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_saves_a_scorable_checkpoint(base_vlm, tmp_path, name, modality):
    out = run_method(name, base_vlm, tmp_path / "ckpt", modality=modality, max_steps=2)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["README.md", "chat_template.jinja", "config.json", "generation_config.json",
                     "log_history.json", "model.safetensors", "processor_config.json", "tokenizer.json",
                     "tokenizer_config.json", "unlearn_config.json"]
    # the loss curve: one entry per step (logging_steps 1), none for a training-free method
    steps = [e for e in json.loads((out / "log_history.json").read_text()) if "loss" in e]
    assert [e["step"] for e in steps] == ([] if METHODS[name].training_free else [1, 2])
    assert all(math.isfinite(e["loss"]) for e in steps)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        prefixes = {".".join(k.split(".")[:2]) for k in f.keys()}
    assert prefixes == {"language_model.model", "language_model.lm_head", "multi_modal_projector.linear_1",
                        "multi_modal_projector.linear_2", "vision_tower.vision_model"}  # hub layout, LoRA merged
    card = (out / "README.md").read_text()
    assert f"base_model: {base_vlm}" in card and modality in card and "forget_ratio" in card
    settings = json.loads((out / "unlearn_config.json").read_text())
    assert settings["method"] == name and settings["modality"] == modality and settings["seed"] == 0
    # the suite scores it as it is
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from mllmu_tasks import TASKS_DIR
    from mllmu_tasks.backend_registry import register
    register()
    tm = TaskManager(include_path=TASKS_DIR, include_defaults=False, metadata={"source": "mini", "forget_ratio": 10})
    res = simple_evaluate(model="mllmu-vlm", model_args={"pretrained": str(out), "device": "cpu"},
                          tasks=["mllmu_forget_cls_img", "mllmu_forget_gen_txt"], task_manager=tm, limit=2)
    assert 0.0 <= res["results"]["mllmu_forget_cls_img"]["acc,none"] <= 1.0
    assert res["results"]["mllmu_forget_gen_txt"]["rougeL,none"] >= 0.0


# ---------------------------------------------------------------- LoRA, gradient checkpointing, outputs


def test_lora_with_gradient_checkpointing_trains_the_adapters(base_vlm, tmp_path):
    method = get_method("ga")()
    trainer = api.build_trainer(method, ModelArguments(model=str(base_vlm)),
                                DataArguments(source="mini", forget_ratio=10),
                                train_args(tmp_path, gradient_checkpointing=True, max_steps=2))
    model = trainer.model
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    assert adapters and all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    trainer.train()
    base = model.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    after = dict(model.named_parameters())
    changed = [n for n, p in adapters.items() if not torch.equal(p, after[n].detach())]
    assert len(changed) == len(adapters)  # every adapter (A and B) moved
    assert all(torch.equal(p, after[n].detach()) for n, p in frozen.items())  # nothing else did
    assert not any("vision" in n or "projector" in n for n in adapters)


class _NaNAtSecondStep(Method):
    name = "nan_test"
    streams = ("forget",)

    def __init__(self, config=None):
        super().__init__(config)
        self.calls = 0

    def loss(self, model, batches, reference):
        self.calls += 1
        nll = answer_nll(forward_logits(model, batches["forget"]), batches["forget"]["labels"])
        return (nll * float("nan") if self.calls == 2 else nll), {"forget_nll": nll.item()}


def test_nan_loss_stops_and_leaves_nothing(base_vlm, tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "nan_test", _NaNAtSecondStep)
    out = tmp_path / "nan-run"
    with pytest.raises(NonFiniteLossError, match=r"step 1: the nan_test loss is nan"):
        run_method("nan_test", base_vlm, out)
    assert not out.exists()
    assert os.listdir(tmp_path) == []  # no staging folder either


def test_existing_output_is_kept_unless_overwrite(base_vlm, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_method("ga", base_vlm, out, max_steps=1)
    assert (out / "keep.txt").exists()
    run_method("ga", base_vlm, out, max_steps=1, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "unlearners.cli", "--method", "ga", "--model", str(tmp_path),
                           "--source", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o"), "--use_cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("mllmu-unlearn: error:")
    assert "Traceback" not in proc.stderr


def test_sharded_launches_that_would_run_unsharded_are_refused(monkeypatch):
    """accelerate applies FSDP/DeepSpeed on GPUs only: on CPUs the launch would train as plain DDP (MULTI_CPU).
    (tests_distributed runs the FSDP launch itself and the DDP equality.)"""
    from types import SimpleNamespace

    from unlearners.api import check_sharding

    def targs(kind):
        return SimpleNamespace(distributed_state=SimpleNamespace(distributed_type=SimpleNamespace(name=kind)))

    for switch, name, kind in (("ACCELERATE_USE_FSDP", "FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed",
                                                                          "DEEPSPEED")):
        monkeypatch.setenv(switch, "true")
        with pytest.raises(ValueError, match=f"asks for {name}, but accelerate runs {name} only on GPUs: here the "
                                             "processes would train as MULTI_CPU"):
            check_sharding(targs("MULTI_CPU"))
        check_sharding(targs(kind))  # running as asked
        monkeypatch.delenv(switch)
    check_sharding(targs("MULTI_CPU"))  # plain DDP asked for


def test_the_projector_trains_even_inside_the_vision_tower():
    """Qwen2-VL/2.5-VL keep their projector (merger) inside ``visual``: freezing the tower must not freeze it."""
    from unlearners.model import is_frozen_part

    names = {"model.visual.merger.mlp.0.weight": (False, True), "model.visual.blocks.0.attn.qkv.weight": (True, True),
             "model.multi_modal_projector.linear_1.weight": (False, True),
             "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight": (True, True),
             "model.language_model.layers.0.mlp.up_proj.weight": (False, False),
             "model.connector.modality_projection.proj.weight": (False, True)}
    for name, (tower_only, both) in names.items():
        assert is_frozen_part(name, True, False) is tower_only, name
        assert is_frozen_part(name, True, True) is both, name
        assert is_frozen_part(name, False, False) is False, name


def test_chat_content_splits_as_lm_eval():
    """The collator's user content is lm-eval's own split of the body (hf-multimodal, interleave)."""

    from lm_eval.models.hf_vlms import HFMultimodalLM

    from unlearners.collator import chat_content

    class Recorder:  # stands in for the processor: records what lm-eval would render
        def apply_chat_template(self, history, **kwargs):
            return history

    for body in ("<image>\nWho is this?", "Who is this?", "<image>\nA<image>\nB", "x<image>"):
        fake = type("LM", (), {"interleave": True, "max_images": 999, "processor": Recorder()})()
        history = HFMultimodalLM.apply_chat_template(fake, [{"role": "user", "content": body}])
        assert history[0]["content"] == chat_content(body), body


def test_a_template_that_merges_prompt_and_answer_is_refused(base_vlm):
    """If the answer's first characters fuse with the prompt's last ones into other tokens, the answer-only
    mask would be shifted: the collator raises instead (the processor runs once; the tokenizer measures)."""
    processor = AutoProcessor.from_pretrained(base_vlm)
    processor.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'][-1]['text'] }}"
                               " ASSISTANT: This perso{% else %}{{ m['content'][0]['text'] }}{% endif %}{% endfor %}")
    collate = AnswerOnlyCollator(processor)
    with pytest.raises(ValueError, match="merges across the answer boundary"):
        collate.encode([data.Example("001", "Who is this?", "n is Ann Lee.", None)])  # " perso"+"n" = " person"
    processor.chat_template = processor.chat_template.replace(" ASSISTANT: This perso", " ASSISTANT:")
    batch = AnswerOnlyCollator(processor).encode([data.Example("001", "Who is this?", " Ann Lee.", None)])
    labels = batch["labels"][0]
    assert processor.tokenizer.decode(labels[labels != -100]) == " Ann Lee."


def test_save_adapter_keeps_the_unmerged_lora_beside_the_merged_weights(base_vlm, tmp_path):
    """The saved adapter on the base model gives the merged checkpoint's logits (PEFT, loaded independently)."""
    from peft import PeftModel

    out = tmp_path / "ga"
    api.run("ga", ModelArguments(model=str(base_vlm), lora=True, save_adapter=True),
            DataArguments(source="mini", forget_ratio=10), train_args(out, max_steps=2, learning_rate=5e-2))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(os.listdir(out / "adapter"))
    examples = data.load_examples("mini", "forget", "image+text", forget_ratio=10)[:4]
    batch = AnswerOnlyCollator(AutoProcessor.from_pretrained(out)).encode(examples)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        merged = AutoModelForImageTextToText.from_pretrained(out).eval()(**inputs).logits
        base = AutoModelForImageTextToText.from_pretrained(base_vlm).eval()
        base_logits = base(**inputs).logits
        adapted = PeftModel.from_pretrained(base, out / "adapter").eval()(**inputs).logits
    assert not torch.allclose(merged, base_logits, atol=1e-3)  # the adapter changed the model
    assert torch.allclose(adapted, merged, atol=1e-4)
    with pytest.raises(ValueError, match="--save_adapter needs LoRA training"):
        api.run("ga", ModelArguments(model=str(base_vlm), lora=False, save_adapter=True),
                DataArguments(source="mini", forget_ratio=10), train_args(tmp_path / "full", max_steps=1))
    assert not (tmp_path / "full").exists()
