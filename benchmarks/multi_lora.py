"""Benchmark: scoring N LoRA-unlearned checkpoints of one base model, one vLLM engine vs N merged checkpoints.

    .venv-vllm/bin/python benchmarks/multi_lora.py [--counts 1,4,8] [--limit 4] [--out DIR]

Builds a tiny VLM (test size), fine-tunes it into a vanilla model, then unlearns 8 (max of ``--counts``) GA
LoRA adapters at different learning rates with ``--save_adapter``. Scores the image+text forget-set
generation and cloze tasks (``--limit`` questions each):

- **merged**: one ``vllm-vlm`` engine per merged checkpoint (what scoring N checkpoints costs without LoRA);
- **multi-LoRA**: one engine on the vanilla model, each adapter a ``LoRARequest``
  (:func:`mllmu_tasks.adapters.score_adapters`).

Prints the wall time (engine starts included, training excluded) for the first N adapters, N in ``--counts``,
both ways, and how many adapters' answers were identical both ways. Runs in the vLLM lane's environment
(``.ci/run``); asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

TASKS = ["mllmu_forget_gen_img", "mllmu_forget_cloze_img"]
MODEL_ARGS = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048, "max_images": 8}
META = {"source": "mini", "forget_ratio": 10}
START = time.perf_counter()


def progress(message: str) -> None:
    """One line with the seconds since the benchmark started, flushed at once (a stopped run shows how far it got)."""
    print(f"[multi_lora {time.perf_counter() - START:7.1f} s] {message}", flush=True)


def build(root: Path, count: int) -> tuple[Path, dict[str, Path]]:
    """The vanilla model and ``count`` GA LoRA runs from it: ``{name: run folder}`` (merged weights + adapter/)."""
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
    from unlearners.api import run
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments

    def train(start, out, method, steps, lr, lora):
        args = UnlearnTrainingArguments(output_dir=str(out), use_cpu=True, max_steps=steps, learning_rate=lr,
                                        per_device_train_batch_size=16, disable_tqdm=True, seed=0, logging_steps=50)
        return run(method, ModelArguments(model=str(start), lora=lora, save_adapter=lora, lora_dropout=0.0),
                   DataArguments(source="mini", forget_ratio=10), args)

    vanilla = train(build_tiny_vlm(root / "base", size="test"), root / "vanilla", "finetune", 240, 5e-3, False)
    progress("vanilla model trained")
    runs = {f"ga-{i}": train(vanilla, root / f"ga-{i}", "ga", 3, 2e-3 * (i + 1), True) for i in range(count)}
    progress(f"{count} GA LoRA runs trained")
    return vanilla, runs


def answers(results: dict) -> dict[str, list[str]]:
    return {task: [s["filtered_resps"][0] for s in results["samples"][task]] for task in TASKS}


def merged_times(runs: dict[str, Path], limit: int) -> tuple[list[float], dict[str, dict]]:
    """Cumulative wall time after each merged checkpoint (its own engine), and the answers."""
    from lm_eval import simple_evaluate
    from lm_eval.api.registry import get_model

    from mllmu_tasks.adapters import close_engine
    from mllmu_tasks.cli import suite_task_manager

    start, times, out = time.perf_counter(), [], {}
    for name, folder in runs.items():
        lm = get_model("vllm-vlm").create_from_arg_obj({"pretrained": str(folder), **MODEL_ARGS})
        manager = suite_task_manager(include_defaults=False)(metadata={**META, "pretrained": str(folder)})
        out[name] = answers(simple_evaluate(model=lm, tasks=TASKS, task_manager=manager, limit=limit, log_samples=True))
        close_engine(lm)
        times.append(time.perf_counter() - start)
        progress(f"merged: {name} scored on its own engine")
    return times, out


def lora_times(vanilla: Path, runs: dict[str, Path], limit: int) -> tuple[list[float], dict[str, dict]]:
    """Cumulative wall time after each adapter on one engine (its start counted in the first), and the answers."""
    from mllmu_tasks.adapters import adapter_engine, close_engine, score_adapters

    adapters = {name: folder / "adapter" for name, folder in runs.items()}
    start, times, out = time.perf_counter(), [], {}
    engine = adapter_engine(str(vanilla), adapters, "vllm-vlm", MODEL_ARGS)
    for name, path in adapters.items():
        result = score_adapters(str(vanilla), {name: path}, TASKS, metadata=META, engine=engine, limit=limit,
                                log_samples=True)
        out[name] = answers(result[name])
        times.append(time.perf_counter() - start)
        progress(f"multi-LoRA: {name} scored")
    close_engine(engine)  # stopped before the merged checkpoints' engines start (a running one hangs the exit)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,4,8", help="numbers of adapters to time (comma-separated)")
    parser.add_argument("--limit", type=int, default=4, help="questions per task")
    parser.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        vanilla, runs = build(root, counts[-1])
        lora, lora_answers = lora_times(vanilla, runs, args.limit)
        merged, merged_answers = merged_times(runs, args.limit)
    same = sum(lora_answers[n] == merged_answers[n] for n in runs)
    print(f"tasks {', '.join(TASKS)}, {args.limit} questions each; engine starts included, training excluded")
    print("| adapters | merged checkpoints, one engine each (s) | one engine, multi-LoRA (s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for n in counts:
        print(f"| {n} | {merged[n - 1]:.1f} | {lora[n - 1]:.1f} | {merged[n - 1] / lora[n - 1]:.2f}x |")
    print(f"answers identical both ways: {same} of {len(runs)} adapters")


if __name__ == "__main__":
    main()
