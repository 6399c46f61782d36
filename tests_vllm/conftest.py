"""Shared by the vLLM lane's modules: the trained tiny checkpoints and the ``mllmu-eval`` runner.

Imported as ``from conftest import evaluate, agree`` (pytest's ``prepend`` import mode puts ``tests_vllm/`` on
``sys.path``).
"""

import json
import os
import subprocess
import sys

import pytest

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from unlearners.api import run
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments

META = json.dumps({"source": "mini", "forget_ratio": 10})


def train(base, out, method, steps, lr, lora=False):
    """``mllmu-unlearn`` in-process on the mini benchmark (forget 10 %); with ``lora`` the adapter is kept too
    (``<out>/adapter``, dropout 0)."""
    args = UnlearnTrainingArguments(output_dir=str(out), use_cpu=True, max_steps=steps, learning_rate=lr,
                                    per_device_train_batch_size=16, disable_tqdm=True, seed=0, logging_steps=10)
    return run(method, ModelArguments(model=str(base), lora=lora, save_adapter=lora, lora_dropout=0.0),
               DataArguments(source="mini", forget_ratio=10), args)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """A tiny VLM fine-tuned until its greedy answers are confident, and a GA-unlearned copy of it."""
    root = tmp_path_factory.mktemp("vllm")
    base = build_tiny_vlm(root / "base", size="test")
    vanilla = train(base, root / "vanilla", "finetune", 240, 5e-3)
    unlearned = train(vanilla, root / "ga", "ga", 2, 1e-3)
    return vanilla, unlearned


def evaluate(model, pretrained, tasks, out, extra=(), limit=16, meta=META, max_images=8, max_model_len=2048):
    """Score ``tasks`` through ``mllmu-eval``; return (results JSON, {(task, doc_id): logged sample}).

    vLLM backends run float32, eager, with ``max_model_len`` tokens (and ``max_images`` per prompt for vllm-vlm).
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = f"pretrained={pretrained}"
    if model.startswith("vllm"):
        args += f",enforce_eager=True,max_model_len={max_model_len},dtype=float32"
        args += f",max_images={max_images}" if model == "vllm-vlm" else ""
    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", model, "--model_args", args,
                           "--device", "cpu", "--tasks", *tasks, "--metadata", meta, "--limit", str(limit),
                           "--log_samples", "--output_path", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    [results_path] = out.rglob("results_*.json")
    results = json.loads(results_path.read_text())
    samples = {}
    for task in results["configs"]:
        [f] = results_path.parent.glob(f"samples_{task}_*.jsonl")
        for line in f.read_text().splitlines():
            row = json.loads(line)
            samples[(task, row["doc_id"])] = row
    return results, samples


def agree(a: str, b: str) -> bool:
    """Same answer, allowing for the detokenised tail of an answer cut at the token limit.

    Answers that run to the 50-token limit can end differently: the two backends detokenise the
    cut-off tail of byte-level BPE differently, so one text is a prefix of the other.
    """
    a, b = a.strip(), b.strip()
    return a.startswith(b) or b.startswith(a)
