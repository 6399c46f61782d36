"""Benchmark: the whole pipeline on the embedded default, with per-stage wall times.

    python benchmarks/pipeline_stages.py [--out_dir DIR] [any mllmu-pipeline flag]

Runs ``mllmu-pipeline`` from scratch (a fresh output folder unless one is
given) and prints a table of stage times from its manifest, the total, and
the budget (10 min on 2 CPU cores at the default size). Prints; asserts nothing.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from unlearners.pipeline import parse, run_pipeline

BUDGET_S = 600


def main(argv: list[str]) -> None:
    if "--out_dir" not in argv:
        argv = ["--out_dir", tempfile.mkdtemp(prefix="mllmu-bench-")] + argv
    cfg = parse(argv)
    start = time.time()
    run_pipeline(cfg, log=lambda line: print(line, flush=True))
    total = time.time() - start
    manifest = json.loads((Path(cfg.out_dir) / "manifest.json").read_text())
    print("\n| stage | seconds |\n|---|---:|")
    for stage, entry in manifest.items():
        print(f"| {stage} | {entry['seconds']:.1f} |")
    print(f"| **total (wall)** | **{total:.1f}** |")
    print(f"\nbudget {BUDGET_S} s: {'met' if total <= BUDGET_S else f'missed by {total - BUDGET_S:.0f} s'}; "
          f"outputs in {cfg.out_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
