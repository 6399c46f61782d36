"""Benchmark: does the pipeline give the same figures on 1 and 2 threads (and on this CPU)?

    python benchmarks/reproducibility.py [--threads 1,2] [--out_dir DIR] [any mllmu-pipeline flag]

Runs ``mllmu-pipeline`` once per thread count, each in its own process with
``OMP_NUM_THREADS``/``torch.set_num_threads`` set (fresh folders unless
``--out_dir`` names a parent), then prints per stage whether the checkpoint
weights are bit-identical (SHA-256 of ``model.safetensors``), and per model the
largest difference of any headline score and of the set summaries between
the runs. Prints the CPU's model name and the torch CPU capability (the
kernels used). Asserts nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path


def cpu_line() -> str:
    import torch

    name = platform.processor() or "?"
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}; torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"


def weights_digest(folder: Path) -> str | None:
    path = folder / "model.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


def headline(results: dict) -> dict[str, float]:
    from mllmu_tasks import report

    out = {}
    for task, metrics in results["results"].items():
        kind = next((k for k in report.HEADLINE if f"_{k}_" in task), None)
        if kind and f"{report.HEADLINE[kind]},none" in metrics:
            out[task] = metrics[f"{report.HEADLINE[kind]},none"]
    return out


def main(argv: list[str]) -> None:
    threads = ["1", "2"]
    if "--threads" in argv:
        i = argv.index("--threads")
        threads, argv = argv[i + 1].split(","), argv[:i] + argv[i + 2:]
    parent = Path(tempfile.mkdtemp(prefix="mllmu-repro-"))
    if "--out_dir" in argv:
        i = argv.index("--out_dir")
        parent, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    runs = {}
    for n in threads:
        out = parent / f"threads-{n}"
        code = (f"import torch; torch.set_num_threads({n}); from unlearners.pipeline import main; "
                f"main({['--out_dir', str(out), *argv]!r})")
        env = {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
        runs[n] = out
    print(f"CPU: {cpu_line()}\n")
    first, *others = threads
    base = json.loads((runs[first] / "manifest.json").read_text())
    print("| stage | " + " | ".join(f"{n} thread(s)" for n in threads) + " |\n|---|" + "---|" * len(threads))
    for stage, entry in base.items():
        folder = Path(entry["output"])
        if folder.is_dir():
            digests = [weights_digest(runs[n] / folder.relative_to(runs[first])) for n in threads]
            print(f"| {stage} | " + " | ".join(d or "-" for d in digests) + " |")
    print(f"\n| model | largest headline difference, {first} vs {'/'.join(others)} thread(s) | tasks that differ |"
          "\n|---|---:|---:|")
    for result in sorted((runs[first] / "results").glob("*.json")):
        if result.name.endswith(".questions.json"):
            continue
        a = headline(json.loads(result.read_text()))
        diffs = []
        for n in others:
            b = headline(json.loads((runs[n] / "results" / result.name).read_text()))
            diffs += [abs(a[t] - b[t]) for t in a]
        print(f"| {result.stem} | {max(diffs, default=0):.4f} | {sum(d > 0 for d in diffs)} of {len(diffs)} |")
    print(f"\noutputs in {parent}")


if __name__ == "__main__":
    main(sys.argv[1:])
