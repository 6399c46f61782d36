"""A sweep's result: every trial's headline metrics (long-format CSV and markdown), the Pareto front of forget
efficacy against model utility per method, each method's best configuration under a stated rule, and a plot.

Per trial, read from the trial's own pipeline folder (nothing is recomputed but bootstrap intervals):

- ``forget_efficacy``: the forget set's score, the mean of its six headline metrics
  (:func:`mllmu_tasks.report.set_score`, fraction 0-1, **lower = more forgotten**);
- ``model_utility``: the retain and celebrity sets' 12 headline metrics (0-1, higher = better kept);
- ``test``: the test set's score (generalisation of forgetting); each leaf task's headline metric;
- JSON Lines mode: forget and retain ROUGE-L of the generation probe as forget efficacy and utility;
- from the privacy audit where it ran: PrivLeak (%) and forget quality (KS p-value) per question modality.

Intervals: percentile bootstrap over questions (:func:`mllmu_tasks.report.set_score_interval`,
:func:`mllmu_tasks.report.bootstrap_ci`; 1,000 draws, seed 0).
"""

from __future__ import annotations

import json
from pathlib import Path

from mllmu_tasks import report

from ..pipeline import results_json, unlearn_stage
from ..scoring import question_scores_path

FIELDS = ["trial", "method", "modality", "settings", "status", "metric", "value", "ci_low", "ci_high", "n"]
SCORES = {"forget_efficacy": ("forget",), "model_utility": report.UTILITY_SETS, "test": ("test",)}


def forget_and_utility(results: dict) -> dict[str, float | None]:
    """``{"forget", "utility"}`` of one model's results JSON: the suite's forget-set score and model utility
    (:func:`mllmu_tasks.report.set_score`), or in JSON Lines mode the generation probe's forget and retain
    ROUGE-L (:func:`unlearners.pipeline.probe_scores`)."""
    if "forget_rougeL" in results:
        return {"forget": results["forget_rougeL"], "utility": results["retain_rougeL"]}
    return {"forget": report.set_score(results, SCORES["forget_efficacy"]),
            "utility": report.set_score(results, SCORES["model_utility"])}


def _row(record: dict, metric: str, value, interval=None, n=None) -> dict:
    low, high = interval if interval else (None, None)
    return {"trial": record["id"], "method": record["method"], "modality": record["modality"],
            "settings": json.dumps(record["settings"], sort_keys=True), "status": record["status"], "metric": metric,
            "value": value, "ci_low": low, "ci_high": high, "n": n}


def trial_rows(record: dict, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """The long-format rows of one trial (``record``: its ``trial.json``); a failed trial gives one ``error``
    row whose ``value`` is the error message.

    Raises:
        FileNotFoundError: a finished trial without its results JSON.
    """
    if record["status"] != "done":
        return [_row(record, "error", record.get("error", record["status"]))]
    reference = [_row(record, f"vanilla.{name}", record["vanilla"][key])
                 for name, key in (("forget_efficacy", "forget"), ("model_utility", "utility"))]
    folder = Path(record["out_dir"])
    path = results_json(folder, unlearn_stage(record["method"], record["modality"]))
    results = report.load_results(path)
    if "forget_rougeL" in results:  # JSON Lines mode: the generation probe (pipeline.probe_scores)
        probe = forget_and_utility(results)
        return [_row(record, "forget_efficacy", probe["forget"], n=results["forget_questions"]),
                _row(record, "model_utility", probe["utility"], n=results["retain_questions"]), *reference]
    scores = report.load_question_scores(question_scores_path(path)) if question_scores_path(path).is_file() else {}
    rows = [_row(record, name, report.set_score(results, sets), report.set_score_interval(scores, sets, n_boot, seed))
            for name, sets in SCORES.items()] + reference
    for s, k, m in report.COLUMNS:
        value = report.headline(results, s, k, m)
        per_question = list(scores.get(report.leaf_task(scores, s, k, m), {}).values())
        if value is not None:
            rows.append(_row(record, f"{s}_{k}_{m}.{report.HEADLINE[k]}", value,
                             report.bootstrap_ci(per_question, n_boot, seed) if per_question else None,
                             len(per_question) or None))
    for modality, c in (record.get("privacy") or {}).items():
        rows.append(_row(record, f"privleak.{modality}", c["privleak"]))
        rows.append(_row(record, f"forget_quality.{modality}", c["forget_quality"]))
    return rows


HEADLINE = {"forget_efficacy": "forget", "model_utility": "utility", "vanilla.forget_efficacy": "vanilla_forget",
            "vanilla.model_utility": "vanilla_utility"}


def headline(rows: list[dict]) -> dict[str, dict]:
    """``{trial: {"method", "modality", "forget", "utility", "vanilla_forget", "vanilla_utility"}}`` of the
    finished trials (from :func:`trial_rows`' rows)."""
    out = {}
    for r in rows:
        if r["metric"] in HEADLINE and r["value"] is not None:
            out.setdefault(r["trial"], {"method": r["method"], "modality": r["modality"]})[HEADLINE[r["metric"]]] = \
                r["value"]
    return {t: h for t, h in out.items() if len(h) == 2 + len(HEADLINE)}


def pareto_front(points: dict[str, dict]) -> list[str]:
    """The trials no other trial dominates: none has a forget score as low and a utility as high, one of the two
    strictly. ``points``: ``{trial: {"forget", "utility"}}``; returns IDs by increasing forget score."""
    front = [t for t, p in points.items()
             if not any(q["forget"] <= p["forget"] and q["utility"] >= p["utility"]
                        and (q["forget"] < p["forget"] or q["utility"] > p["utility"]) for q in points.values())]
    return sorted(front, key=lambda t: (points[t]["forget"], -points[t]["utility"], t))


def fronts(points: dict[str, dict]) -> dict[str, list[str]]:
    """``{method: its Pareto front}`` (:func:`pareto_front` of each method's own trials)."""
    methods = sorted({p["method"] for p in points.values()})
    return {m: pareto_front({t: p for t, p in points.items() if p["method"] == m}) for m in methods}


def best_per_method(points: dict[str, dict], forget_share: float) -> dict[str, str | None]:
    """Each method's best trial: the highest model utility among its trials whose forget score is at most
    ``forget_share`` x their vanilla model's (ties: the lower forget score, then the ID); None when none
    qualifies. ``points``: :func:`headline`."""
    best: dict[str, str | None] = {}
    for trial, p in sorted(points.items()):
        best.setdefault(p["method"], None)
        if p["forget"] > forget_share * p["vanilla_forget"]:
            continue
        current = best[p["method"]]
        if current is None or (p["utility"], -p["forget"]) > (points[current]["utility"], -points[current]["forget"]):
            best[p["method"]] = trial
    return best


def rows_csv(rows: list[dict]) -> str:
    """The long-format table as CSV (:data:`FIELDS`; fractions 0-1, PrivLeak in %)."""
    return report.rows_csv(rows, FIELDS)


def _interval(rows: list[dict], trial: str, metric: str) -> str:
    r = next((r for r in rows if r["trial"] == trial and r["metric"] == metric), None)
    if r is None or r["value"] is None:
        return "-"
    return f"{r['value']:.3f}" + (f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["ci_low"] is not None else "")


def markdown(rows: list[dict], records: list[dict], forget_share: float, best: dict[str, str | None]) -> str:
    """One line per trial (forget efficacy and model utility with intervals, PrivLeak, status), the front and
    best-configuration marks (``best``: :func:`best_per_method`'s), and the rule stated under the table."""
    points = headline(rows)
    on_front = {t for front in fronts(points).values() for t in front}
    vanillas = {f"{p['vanilla_forget']:.3f}" for p in points.values()}
    lines = ["| trial | method | modality | settings | forget efficacy (lower: forgotten) | model utility | "
             "PrivLeak (%) | front | best |", "|---|---|---|---|---:|---:|---:|:-:|:-:|"]
    for rec in records:
        t = rec["id"]
        own = {k: v for k, v in rec["settings"].items() if k not in ("methods", "modalities")}
        shown = ", ".join(f"{k}={v}" for k, v in own.items()) or "-"
        if rec["status"] != "done":
            lines.append(f"| {t} | {rec['method']} | {rec['modality']} | {shown} | {rec['status']}: "
                         f"{str(rec.get('error', ''))[:80]} | | | | |")
            continue
        leaks = [f"{c['privleak']:+.1f}" for c in (rec.get("privacy") or {}).values()]
        lines.append(f"| {t} | {rec['method']} | {rec['modality']} | {shown} | {_interval(rows, t, 'forget_efficacy')} "
                     f"| {_interval(rows, t, 'model_utility')} | {' / '.join(leaks) or '-'} | "
                     f"{'x' if t in on_front else ''} | {'**best**' if t in best.values() else ''} |")
    rule = (f"Best per method: the highest model utility among its trials whose forget efficacy is at most "
            f"{forget_share:g} x its vanilla model's ({', '.join(sorted(vanillas)) or 'n/a'}). "
            "Front: not dominated by another trial of the same method (lower forget score and higher utility). "
            "95 % bootstrap intervals over questions in brackets; PrivLeak per question modality (image+text / "
            "text-only).")
    missing = [m for m, t in best.items() if t is None]
    if missing:
        rule += f" No trial of {', '.join(missing)} meets the rule."
    return "\n".join(lines) + "\n\n" + rule + "\n"


def plot(rows: list[dict], path: str | Path) -> Path:
    """Forget efficacy (x, lower = more forgotten) against model utility (y): one colour per method, each
    method's Pareto front drawn as a line, the vanilla model(s) as stars (PNG)."""
    points = headline(rows)
    fig, ax = report.new_plot((6.5, 5))
    for i, (method, front) in enumerate(fronts(points).items()):
        own = [p for p in points.values() if p["method"] == method]
        colour = f"C{i % 10}"
        ax.scatter([p["forget"] for p in own], [p["utility"] for p in own], color=colour, label=method, s=22)
        ax.plot([points[t]["forget"] for t in front], [points[t]["utility"] for t in front], color=colour, lw=1.2)
    vanillas = sorted({(p["vanilla_forget"], p["vanilla_utility"]) for p in points.values()})
    if vanillas:
        ax.scatter(*zip(*vanillas), marker="*", s=160, color="black", label="vanilla")
    return report.save_plot(fig, ax, path, "forget efficacy: forget-set score (0-1, lower = more forgotten)",
                            "model utility: retain + celebrity score (0-1)",
                            "Sweep: forget efficacy vs model utility (Pareto front per method)", legend=True)
