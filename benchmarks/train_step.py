"""Benchmark: one unlearning step of our trainer vs a bare PyTorch loop doing the same work (2 CPU cores).

    python benchmarks/train_step.py [--steps 30] [--batch_size 8] [--method grad_diff] [--size demo]

Both run the method's loss on the same mini-benchmark batches (image+text, forget ratio 10 %), full
fine-tuning, AdamW, fp32. Each way runs in its own process so that peak resident memory (ru_maxrss) is its
own. Prints mean step time (after 3 warm-up steps) and peak memory. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def bare(model_dir: str, steps: int, batch: int, method_name: str) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from unlearners.api import build_streams
    from unlearners.collator import AnswerOnlyCollator
    from unlearners.config import DataArguments
    from unlearners.data import PairedDataset
    from unlearners.methods import get_method
    from unlearners.model import frozen_copy_reference

    torch.manual_seed(0)
    method = get_method(method_name)()
    model = AutoModelForImageTextToText.from_pretrained(model_dir).train()
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(model_dir))
    data = PairedDataset(build_streams(method, DataArguments(source="mini", forget_ratio=10)), seed=0)
    reference = frozen_copy_reference(model, "cpu") if method.needs_reference else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for step in range(steps + 3):
        start = time.perf_counter()
        items = [data[(step * batch + i) % len(data)] for i in range(batch)]
        loss, _ = method.loss(model, collate(items), reference)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return {"step_s": sum(times) / len(times)}


def trainer(model_dir: str, steps: int, batch: int, method_name: str) -> dict:
    from unlearners import api
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
    from unlearners.methods import get_method

    args = UnlearnTrainingArguments(output_dir=tempfile.mkdtemp(), use_cpu=True, max_steps=steps + 3,
                                    per_device_train_batch_size=batch, learning_rate=1e-4, disable_tqdm=True,
                                    logging_steps=10 ** 6, seed=0)
    t = api.build_trainer(get_method(method_name)(), ModelArguments(model=model_dir, lora=False,
                                                                      freeze_vision_tower=False),
                          DataArguments(source="mini", forget_ratio=10), args)
    stamps = []
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    t.add_callback(Clock())
    t.train()
    gaps = [b - a for a, b in zip(stamps[3:], stamps[4:])]
    return {"step_s": sum(gaps) / len(gaps)}


def child(way: str, model_dir: str, steps: int, batch: int, method: str) -> None:
    out = (bare if way == "bare" else trainer)(model_dir, steps, batch, method)
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--method", default="grad_diff")
    parser.add_argument("--size", default="demo")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.steps, args.batch_size, args.method)
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

    model_dir = str(build_tiny_vlm(tempfile.mkdtemp(), size=args.size))
    print(f"| way ({args.method}, batch {args.batch_size}, {args.size}) | step ms | peak RSS MiB |\n|---|---:|---:|")
    for way in ("bare", "trainer"):
        proc = subprocess.run([sys.executable, __file__, "--child", way, model_dir, "--steps", str(args.steps),
                               "--batch_size", str(args.batch_size), "--method", args.method],
                              capture_output=True, text=True, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {'bare PyTorch loop' if way == 'bare' else 'UnlearnTrainer'} | {1000 * res['step_s']:.1f} | "
              f"{res['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
