"""Benchmark: time the harness spends outside model calls (data, prompts, metrics), as % of wall time.

    python benchmarks/harness_overhead.py [--model DIR] [--tasks mllmu] [--batch_size 64]

Scores the suite in-process on the embedded mini benchmark with `mllmu-vlm`, timing every backend call
(`generate_until`, `loglikelihood`); overhead = wall - model time. Default model: the demo tiny VLM
(random weights, so answers run to the 50-token limit). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from mllmu_tasks import TASKS_DIR
from mllmu_tasks.backend import MLLMUVisionLM, register
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

MODEL_SECONDS = [0.0]


def timed(method):
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            MODEL_SECONDS[0] += time.perf_counter() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tasks", default="mllmu")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    model = args.model or str(build_tiny_vlm(tempfile.mkdtemp(), size="demo"))
    MLLMUVisionLM.generate_until = timed(MLLMUVisionLM.generate_until)
    MLLMUVisionLM.loglikelihood = timed(MLLMUVisionLM.loglikelihood)
    register()
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False, metadata={"source": "mini",
                                                                                   "forget_ratio": 10})
    start = time.perf_counter()
    results = simple_evaluate(model="mllmu-vlm", model_args={"pretrained": model, "device": "cpu"},
                              tasks=args.tasks.split(","), task_manager=manager, batch_size=args.batch_size)
    total = time.perf_counter() - start
    n = sum(v["effective"] for v in results["n-samples"].values())
    print("\n| wall s | model calls s | outside model calls s | overhead % | questions |\n|---:|---:|---:|---:|---:|")
    print(f"| {total:.1f} | {MODEL_SECONDS[0]:.1f} | {total - MODEL_SECONDS[0]:.1f} | "
          f"{100 * (total - MODEL_SECONDS[0]) / total:.1f} | {n} |")


if __name__ == "__main__":
    main()
