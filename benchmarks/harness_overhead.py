"""Benchmark: time the harness spends outside model calls (data, prompts, metrics), as % of wall time.

    python benchmarks/harness_overhead.py [--model DIR | --text_hidden 512 --text_layers 8] [--tasks mllmu]
                                          [--batch_size 64] [--log_samples]

Scores the suite in-process on the embedded mini benchmark with ``mllmu-vlm`` and splits the wall time of
``simple_evaluate`` into phases by timing the methods that do them:

- model load: ``MLLMUVisionLM.__init__`` (weights, processor);
- documents: ``MLLMUTask.download`` (read the source, check images, build the ``datasets`` tables);
- requests: lm-eval's ``Task.build_all_requests`` (prompts, images per request);
- model calls: ``generate_until`` and ``loglikelihood``;
- metrics: ``process_results`` per answer (ROUGE, accuracy...);
- other: the rest of lm-eval (filters, aggregation, groups, result tables, the environment report of the
  results JSON, and with ``--log_samples`` the hashing of every logged image).

The one-time imports (lm-eval's VLM backend, transformers models, rouge_score and nltk) are done and timed
before the run, as start-up, not counted in the phases. Default model: the demo tiny VLM (random weights,
so answers run to the 50-token limit); ``--text_hidden`` / ``--text_layers`` widen and deepen its language
model, to see the overhead next to slower model calls. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib
import tempfile
import time

SECONDS: dict[str, float] = collections.defaultdict(float)


def timed(owner, name: str, phase: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its wall time to ``SECONDS[phase]`` (outermost call only)."""
    method = getattr(owner, name)
    depth = [0]

    def wrapper(*args, **kwargs):
        depth[0] += 1
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                SECONDS[phase] += time.perf_counter() - start
    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tasks", default="mllmu")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--text_hidden", type=int, default=None, help="language-model width (demo: 128)")
    parser.add_argument("--text_layers", type=int, default=None, help="language-model layers (demo: 2)")
    parser.add_argument("--log_samples", action="store_true", help="keep per-question samples, as --log_samples")
    args = parser.parse_args()

    start = time.perf_counter()
    for module in ("lm_eval.evaluator", "lm_eval.models.hf_vlms", "rouge_score.rouge_scorer",
                   "mllmu_tasks.backend", "mllmu_tasks.task"):
        importlib.import_module(module)
    imports = time.perf_counter() - start

    from lm_eval import simple_evaluate
    from lm_eval.api.task import ConfigurableTask, Task
    from lm_eval.tasks import TaskManager

    from mllmu_tasks import TASKS_DIR
    from mllmu_tasks.backend import MLLMUVisionLM
    from mllmu_tasks.backend_registry import register
    from mllmu_tasks.mini.tiny_vlm import SIZES, build_tiny_vlm
    from mllmu_tasks.task import MLLMUTask

    size = SIZES["demo"]
    if args.text_hidden or args.text_layers:
        hidden = args.text_hidden or size.text_hidden
        size = dataclasses.replace(size, text_hidden=hidden, text_layers=args.text_layers or size.text_layers,
                                   text_heads=hidden // 32, text_kv_heads=hidden // 32, text_intermediate=4 * hidden)
    model = args.model or str(build_tiny_vlm(tempfile.mkdtemp(), size=size))
    timed(MLLMUVisionLM, "__init__", "model load")
    timed(MLLMUTask, "download", "documents")
    timed(Task, "build_all_requests", "requests")
    timed(MLLMUVisionLM, "generate_until", "model calls")
    timed(MLLMUVisionLM, "loglikelihood", "model calls")
    timed(ConfigurableTask, "process_results", "metrics")
    register()
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False,
                          metadata={"source": "mini", "forget_ratio": 10})
    start = time.perf_counter()
    results = simple_evaluate(model="mllmu-vlm", model_args={"pretrained": model, "device": "cpu"},
                              tasks=args.tasks.split(","), task_manager=manager, batch_size=args.batch_size,
                              log_samples=args.log_samples)
    wall = time.perf_counter() - start
    SECONDS["other"] = wall - sum(SECONDS.values())
    n = sum(v["effective"] for v in results["n-samples"].values())
    harness = SECONDS["documents"] + SECONDS["requests"] + SECONDS["metrics"] + SECONDS["other"]
    print(f"\n{n} questions, tasks {args.tasks}, batch {args.batch_size}; start-up imports before the run: "
          f"{imports:.1f} s\n")
    print("| phase | s | % of wall |\n|---|---:|---:|")
    for phase in ("model load", "documents", "requests", "model calls", "metrics", "other"):
        print(f"| {phase} | {SECONDS[phase]:.2f} | {100 * SECONDS[phase] / wall:.1f} |")
    print(f"| **wall (simple_evaluate)** | {wall:.2f} | 100 |")
    print(f"\nharness overhead (documents + requests + metrics + other): {harness:.2f} s = "
          f"{100 * harness / wall:.1f} % of wall, {1000 * harness / n:.2f} ms a question; "
          f"model calls {1000 * SECONDS['model calls'] / n:.2f} ms a question")


if __name__ == "__main__":
    main()
