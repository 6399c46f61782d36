"""``mllmu-report``: tables, intervals, a paired comparison and the plot from lm-eval results.

    mllmu-report RUN [RUN ...] [--names a,b] [--out DIR] [--compare A B] [--n_boot 1000] [--seed 0]

Each RUN is an lm-eval results JSON, an ``--output_path`` folder (the newest
``results_*.json`` in it) or an ``mllmu-pipeline`` output folder (every model it scored). With ``--log_samples`` files beside a results
JSON, every cell gets a 95 % bootstrap interval over questions and
``--compare`` a paired bootstrap with p-values. Writes ``report.md``,
``table.csv``, ``table.tex`` and ``forget_vs_retain.png`` into ``--out``
and prints the markdown. Metrics and summaries: :mod:`mllmu_tasks.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mllmu-report", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--names", default=None, help="comma-separated model names (default: file names)")
    parser.add_argument("--out", default="mllmu-report")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None)
    parser.add_argument("--n_boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        paths = [p for r in args.runs for p in report.find_runs(r)]
    except FileNotFoundError as err:
        parser.error(str(err))
    names = args.names.split(",") if args.names else [p.parent.name + "/" + p.stem for p in paths]
    if len(names) != len(paths):
        parser.error(f"--names gives {len(names)} names for {len(paths)} runs")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        parser.error(f"--names repeats {repeated}: each run needs its own name")
    try:
        runs = {n: (report.load_results(p), report.load_samples(p)) for n, p in zip(names, paths)}
    except ValueError as err:  # a results or samples file cut short: one line naming it
        parser.error(str(err))
    for name, path in zip(names, paths):
        found = runs[name][0].get("results", {})
        if not any(report.leaf_task(found, s, k, m) in found for s, k, m in report.COLUMNS):
            parser.error(f"{path}: no MLLMU task results (mllmu_* or mllmu-zs_*) in it")
    rows = report.interval_rows(runs, args.n_boot, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = ["# MLLMU-Bench report", "", report.rows_markdown(rows), "Set summaries (0-1):", "",
            report.summary_table({n: r for n, (r, _) in runs.items()})]
    if args.compare:
        a, b = args.compare
        missing = [x for x in (a, b) if x not in runs]
        if missing:
            parser.error(f"--compare names {missing} are not among {list(runs)}")
        text.append(report.comparison_markdown(a, b, runs[a][1], runs[b][1], args.n_boot, args.seed))
    report.plot_forget_vs_retain({n: r for n, (r, _) in runs.items()}, out / "forget_vs_retain.png")
    markdown = "\n".join(text)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    (out / "table.csv").write_text(report.rows_csv(rows), encoding="utf-8")
    (out / "table.tex").write_text(report.rows_latex(rows), encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
