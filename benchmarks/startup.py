"""Benchmark: start-up of `mllmu-eval` vs plain `lm_eval --include_path`, to the first request (2 CPU cores).

    python benchmarks/startup.py [--repeats 3]

Both score one text-only question with lm-eval's `dummy` model (which answers instantly). Each command runs
in a child process whose `dummy` model notes the time of its first request; the table gives the seconds from
launching the process to that request (imports, task indexing, task building) and to the process's exit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from mllmu_tasks import TASKS_DIR

ARGS = ["--model", "dummy", "--tasks", "mllmu_celebrity_cls_txt", "--limit", "1",
        "--metadata", '{"source": "mini"}']

# Run in the child: note the wall-clock time of the dummy model's first request, then run the command.
CHILD = """
import runpy, sys, time
from lm_eval.models.dummy import DummyLM
module, stamp = sys.argv.pop(1), sys.argv.pop(1)
answer = DummyLM.generate_until
def first(self, *args, **kwargs):
    with open(stamp, "a") as f:
        f.write(repr(time.time()))
    DummyLM.generate_until = answer
    return answer(self, *args, **kwargs)
DummyLM.generate_until = first
sys.argv[0] = module
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_once(module: str, args: list[str]) -> tuple[float, float]:
    """(seconds to the first request, seconds to exit) of ``python -m module args``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("r", suffix=".t") as stamp:
        start = time.time()
        subprocess.run([sys.executable, "-c", CHILD, module, stamp.name, *args], check=True, capture_output=True,
                       env=env)
        end = time.time()
        return float(stamp.read()) - start, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    ways = {"mllmu-eval": ("mllmu_tasks.cli", ARGS),
            "lm_eval --include_path": ("lm_eval", ["--include_path", TASKS_DIR, *ARGS])}
    print("| command | to first request s | to exit s |\n|---|---:|---:|")
    for name, (module, args) in ways.items():
        runs = [run_once(module, args) for _ in range(repeats)]
        print(f"| {name} | {statistics.median(r[0] for r in runs):.2f} | {statistics.median(r[1] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
