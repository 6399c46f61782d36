"""Benchmark: start-up cost of `mllmu-eval` vs plain `lm_eval --include_path` (2 CPU cores).

    python benchmarks/startup.py [--repeats 3]

Both score one text-only question with lm-eval's `dummy` model (which answers instantly), so the wall
time is start-up (imports, task indexing, task building) plus a negligible request. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from mllmu_tasks import TASKS_DIR

ARGS = ["--model", "dummy", "--tasks", "mllmu_celebrity_cls_txt", "--limit", "1",
        "--metadata", '{"source": "mini"}']


def wall(cmd: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    ways = {"mllmu-eval": [sys.executable, "-m", "mllmu_tasks.cli", *ARGS],
            "lm_eval --include_path": [sys.executable, "-m", "lm_eval", "--include_path", TASKS_DIR, *ARGS]}
    print("| command | median wall s (one question, dummy model) |\n|---|---:|")
    for name, cmd in ways.items():
        times = [wall(cmd) for _ in range(repeats)]
        print(f"| {name} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
