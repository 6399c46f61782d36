"""Many LoRA adapters, one vLLM engine (:mod:`mllmu_tasks.adapters`): each adapter scored through a
``LoRARequest`` on the vanilla model's engine answers and scores like its merged checkpoint scored on its own
engine (the lane's tolerance: answers agree, scores differ by no more than the share of answers that differ)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import META, agree, evaluate, train

pytest.importorskip("vllm")

TASKS = ["mllmu_forget_gen_img", "mllmu_forget_cloze_img", "mllmu_forget_cls_img"]
LIMIT = 8
SCRIPT = """
import json, sys
import psutil
from mllmu_tasks.adapters import adapter_engine, close_engine, score_adapters
def running_engines():
    def engine(p):
        try:
            return "VLLM" in p.name() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return [p for p in psutil.Process().children(recursive=True) if engine(p)]
if __name__ == "__main__":
    base, adapters, tasks, limit, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]), sys.argv[5]
    lm = adapter_engine(base, adapters, model_args={"dtype": "float32", "enforce_eager": True, "max_model_len": 2048,
                                                    "max_images": 8})
    results = score_adapters(base, adapters, tasks, metadata=json.loads(sys.argv[6]), engine=lm, limit=limit,
                             log_samples=True)
    running = len(running_engines())
    close_engine(lm)  # with lm still referenced: its processes end within seconds (a running engine hangs the exit)
    psutil.wait_procs(running_engines(), timeout=15)
    json.dump({"engines": [running, len(running_engines())], **{name: {"results": r["results"], "answers":
               {t: {str(s["doc_id"]): s["filtered_resps"][0] for s in r["samples"][t]} for t in tasks}}
               for name, r in results.items()}}, open(out, "w"))
"""


@pytest.fixture(scope="module")
def unlearned(checkpoints, tmp_path_factory):
    """Two GA LoRA runs from the vanilla model (merged weights, and the adapter in ``adapter/``)."""
    vanilla, _ = checkpoints
    root = tmp_path_factory.mktemp("lora")
    return {f"ga-{i}": train(vanilla, root / f"ga-{i}", "ga", 3, lr, lora=True) for i, lr in enumerate((2e-3, 2e-2))}


def test_adapters_on_one_engine_score_like_their_merged_checkpoints(checkpoints, unlearned, tmp_path):
    vanilla, _ = checkpoints
    adapters = {name: str(folder / "adapter") for name, folder in unlearned.items()}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(vanilla), json.dumps(adapters), ",".join(TASKS),
                           str(LIMIT), str(tmp_path / "lora.json"), META], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lora = json.loads((tmp_path / "lora.json").read_text())
    # the engine ran in its own processes until close_engine stopped them
    running, left = lora.pop("engines")
    assert running >= 1 and left == 0
    assert list(lora) == list(adapters)
    # the adapters are applied: the two learning rates answer differently
    assert lora["ga-0"]["answers"] != lora["ga-1"]["answers"]
    for name, folder in unlearned.items():
        merged, samples = evaluate("vllm-vlm", folder, TASKS, tmp_path / name, limit=LIMIT)
        pairs = {(task, doc): (lora[name]["answers"][task][str(doc)], row["filtered_resps"][0])
                 for (task, doc), row in samples.items()}
        assert len(pairs) == sum(len(lora[name]["answers"][t]) for t in TASKS) >= 2 * LIMIT
        same = [agree(*pair) for pair in pairs.values()]
        # a LoRA adds x A B next to x W; merged, W + A B: float32 sums in another order, so a near-tie between
        # two tokens may break differently (as between the lane's two backends)
        assert sum(same) / len(same) >= 0.9, [k for k, s in zip(pairs, same) if not s]
        for task in TASKS:
            docs = len(lora[name]["answers"][task])
            differ = sum(a.strip() != b.strip() for (t, _), (a, b) in pairs.items() if t == task) / docs
            for metric, value in merged["results"][task].items():
                if metric.split(",")[0] in ("acc", "rougeL", "cloze_acc"):
                    assert abs(lora[name]["results"][task][metric] - value) <= differ + 1e-9, (name, task, metric)
