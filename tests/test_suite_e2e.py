"""The suite end to end through lm-eval, on the embedded mini benchmark and the tiny models."""

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from mllmu_tasks import TASKS_DIR, docs
from mllmu_tasks.mini.tiny_vlm import build_tiny_lm, build_tiny_vlm

LEAF_TASKS = [f"mllmu_{s}_{k}_{m}" for s in docs.SETS for k in docs.KINDS for m in ("img", "txt")]
GROUPS = ["mllmu", "mllmu-forget", "mllmu-test", "mllmu-retain", "mllmu-celebrity"]
CLI = [sys.executable, "-m", "mllmu_tasks.cli"]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), size="test")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), size="test")


def run_cli(args, cwd, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def load_results(out: Path):
    [path] = glob.glob(str(out / "**" / "results_*.json"), recursive=True)
    results = json.loads(Path(path).read_text())
    samples = {}
    for f in glob.glob(str(Path(path).parent / "samples_*.jsonl")):
        task = Path(f).name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in Path(f).read_text().splitlines()]
    return results, samples


def expected_scores(sample):
    """Scores recomputed from the logged answer with the released rules and rouge_score itself."""
    doc, answer = sample["doc"], sample["filtered_resps"][0]
    if doc["kind"] == "cls":
        first = answer.lstrip()[:1].upper()
        return {"acc": float(first == doc["answer"])}
    if doc["kind"] == "cloze":
        return {"cloze_acc": float(doc["answer"].lower() in answer.lower())}
    scores = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(doc["answer"], answer)
    return {"rougeL": scores["rougeL"].fmeasure}


def test_whole_suite_on_mini_benchmark(tiny_vlm, tmp_path):
    out = tmp_path / "out"
    run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tiny_vlm}", "--device", "cpu",
             "--tasks", "mllmu", "--metadata", json.dumps({"source": "mini", "forget_ratio": 10}),
             "--limit", "3", "--batch_size", "8", "--output_path", str(out), "--log_samples"], cwd=tmp_path)
    results, samples = load_results(out)
    assert sorted(results["results"]) == sorted(LEAF_TASKS + GROUPS)
    assert sorted(results["groups"]) == sorted(GROUPS)
    for task in LEAF_TASKS:
        meta = results["configs"][task]["metadata"]
        assert meta["forget_ratio"] == 10 and meta["source"].endswith(os.path.join("mini", "data"))
        logged = samples[task]
        assert len(logged) == 3
        # every per-question score is what the released rule / rouge_score gives
        for sample in logged:
            for metric, value in expected_scores(sample).items():
                assert sample[metric] == pytest.approx(value, abs=1e-9), (task, metric)
        # the task's score is the mean of its logged per-question scores
        metric = {"cls": "acc", "gen": "rougeL", "cloze": "cloze_acc"}[logged[0]["doc"]["kind"]]
        mean = sum(s[metric] for s in logged) / len(logged)
        assert results["results"][task][f"{metric},none"] == pytest.approx(mean)
        # prompts: the released layout; images only in image+text tasks, one per <image>
        args = logged[0]["arguments"]["gen_args_0"]
        prompt = args["arg_0"]
        assert prompt.startswith("USER:") and prompt.endswith("\nASSISTANT: " if "_gen_img" in task else "\nASSISTANT:")
        assert ("<image>" in prompt) == task.endswith("_img")
        if task.endswith("_img"):
            assert len(args["arg_2"]["visual"]) == prompt.count("<image>") == 1 + meta["demo_questions"]
        # classification and cloze are few-shot (the released demonstrations), generation zero-shot
        # (the mini benchmark's celebrities are not in Full_Set: no demonstration to show)
        assert (meta["demo_questions"] > 0) == ("_gen_" not in task and "celebrity" not in task)
        if "_gen_" not in task:
            assert not {s["doc"]["ID"] for s in logged} & set(meta["demo_profiles"])
    # a set group's acc is the size-weighted mean of its two classification tasks
    forget = [results["results"][f"mllmu_forget_cls_{m}"]["acc,none"] for m in ("img", "txt")]
    assert results["results"]["mllmu-forget"]["acc,none"] == pytest.approx(sum(forget) / 2)


def test_chat_template_prompts(tiny_vlm, tmp_path):
    out = tmp_path / "out"
    run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tiny_vlm}", "--device", "cpu",
             "--tasks", "mllmu-zs_forget_cls_img", "mllmu_forget_gen_txt", "mllmu_forget_cls_img",
             "--apply_chat_template", "--metadata", json.dumps({"source": "mini"}), "--limit", "1",
             "--output_path", str(out), "--log_samples"], cwd=tmp_path)
    results, samples = load_results(out)
    cls_doc = samples["mllmu-zs_forget_cls_img"][0]
    body = docs.doc_to_body(cls_doc["doc"])
    # the tiny model's LLaVA-1.5 template renders the user body as the released layout does
    assert cls_doc["arguments"]["gen_args_0"]["arg_0"] == f"USER: {body}\nASSISTANT:"
    gen_doc = samples["mllmu_forget_gen_txt"][0]
    assert gen_doc["arguments"]["gen_args_0"]["arg_0"] == f"USER: {docs.doc_to_body(gen_doc['doc'])}\nASSISTANT:"
    # few-shot through the template: each demonstration a user turn and an answered assistant turn
    fs = samples["mllmu_forget_cls_img"][0]
    n = results["configs"]["mllmu_forget_cls_img"]["metadata"]["demo_questions"]
    prompt = fs["arguments"]["gen_args_0"]["arg_0"]
    assert n == 5 and prompt.count("</s>") == n and prompt.count("<image>") == n + 1
    assert prompt.endswith(f"</s>USER: {docs.doc_to_body(fs['doc'])}\nASSISTANT:") and "Correct Answer" not in prompt
    assert len(fs["arguments"]["gen_args_0"]["arg_2"]["visual"]) == n + 1


def test_text_only_tasks_on_a_text_only_model(tiny_lm, tmp_path):
    out = tmp_path / "out"
    run_cli(["--model", "hf", "--model_args", f"pretrained={tiny_lm}", "--device", "cpu", "--tasks", "mllmu-txt",
             "--metadata", json.dumps({"source": "mini"}), "--limit", "1", "--output_path", str(out)], cwd=tmp_path)
    results, _ = load_results(out)
    assert sorted(results["results"]) == sorted(t for t in LEAF_TASKS if t.endswith("_txt"))


def test_image_tasks_on_a_model_without_images_fail_at_once(tiny_lm, tmp_path):
    # refused before any model loads (the folder holds no model at all), naming the text-only tag
    (tmp_path / "not-a-model").mkdir()
    for tasks in (["mllmu_forget_cls_img"], ["mllmu"], ["mllmu_*"]):
        proc = run_cli(["--model", "hf", "--model_args", f"pretrained={tmp_path / 'not-a-model'}", "--device", "cpu",
                        "--tasks", *tasks, "--metadata", json.dumps({"source": "mini"})], cwd=tmp_path, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("mllmu-eval: error: --model hf takes no images, and 12 selected task(s)" if tasks[0] != \
                               "mllmu_forget_cls_img" else "mllmu-eval: error: --model hf takes no images, and 1 ")
        assert "--tasks mllmu-txt" in last
    # plain lm_eval still refuses them with its own message
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "run", "--include_path", TASKS_DIR, "--model", "hf",
                           "--model_args", f"pretrained={tiny_lm}", "--device", "cpu", "--tasks", "mllmu_forget_cls_img",
                           "--metadata", json.dumps({"source": "mini"})], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and "require multimodal input" in proc.stderr
    proc = run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tiny_lm}", "--device", "cpu",
                    "--tasks", "mllmu_forget_cls_img", "--metadata", json.dumps({"source": "mini"})],
                   cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "which takes no images" in proc.stderr


def test_stock_hf_multimodal_on_image_tasks(tiny_vlm, tmp_path):
    out = tmp_path / "out"
    run_cli(["--model", "hf-multimodal", "--model_args", f"pretrained={tiny_vlm}", "--device", "cpu",
             "--tasks", "mllmu_celebrity_cls_img", "--metadata", json.dumps({"source": "mini"}), "--limit", "2",
             "--output_path", str(out)], cwd=tmp_path)
    results, _ = load_results(out)
    assert "acc,none" in results["results"]["mllmu_celebrity_cls_img"]


def test_plain_lm_eval_lists_the_suite(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "ls", "tasks", "--include_path", TASKS_DIR],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in LEAF_TASKS + GROUPS:
        assert name in proc.stdout


def test_scores_from_a_local_hub_layout_mirror(tiny_vlm, tmp_path):
    from mllmu_tasks.mini.generator import generate_benchmark, write_hub_layout

    bench = generate_benchmark(num_profiles=8, num_celebrities=2, seed=3)
    mirror = write_hub_layout(bench, tmp_path / "mirror")
    out = tmp_path / "out"
    run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tiny_vlm}", "--device", "cpu",
             "--tasks", "mllmu_forget_gen_img", "mllmu_test_cls_txt", "--log_samples",
             "--metadata", json.dumps({"source": str(mirror), "forget_ratio": 15}), "--output_path", str(out)],
            cwd=tmp_path)
    results, samples = load_results(out)
    forget_ids = set(bench["forget_15"]["ID"])
    assert len(forget_ids) == 1  # round(8 * 0.15)
    assert results["configs"]["mllmu_forget_gen_img"]["metadata"]["source"] == f"local:{mirror.resolve()}"
    assert {s["doc"]["ID"] for s in samples["mllmu_forget_gen_img"]} == forget_ids
    # the only forget profile is the test set's classification demonstration: nothing left to score
    assert results["configs"]["mllmu_test_cls_txt"]["metadata"]["demo_profiles"] == sorted(forget_ids)
    assert results["results"]["mllmu_test_cls_txt"]["sample_len"] == 0


@pytest.mark.parametrize("metadata,message", [
    ({"source": "mini", "forget_ratios": 15}, "did you mean 'forget_ratio'"),
    ({"source": "mini", "forget_ratio": 7}, "from --metadata forget_ratio"),
    ({"source": "/no/such/mirror"}, "is neither 'hub'"),
    ({"source": "mini", "model_family": "qwen2_vl"}, "model_family must be one of"),
    ({"source": "mini", "fewshot_seed": "x"}, "fewshot_seed must be an integer"),
    ({"source": "mini", "model_familly": "llava"}, "did you mean 'model_family'"),
])
def test_bad_settings_fail_before_the_model_loads(tmp_path, metadata, message):
    # the model path does not exist: the settings check must come first
    proc = run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tmp_path / 'no-model'}",
                    "--tasks", "mllmu_forget_cls_txt", "--metadata", json.dumps(metadata)], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mllmu-eval: error:") and message in proc.stderr
