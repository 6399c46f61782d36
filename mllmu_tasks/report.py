"""Tables and plots from lm-eval results JSONs of the MLLMU suite.

The table follows the layout of Table 2 of Liu et al. (2025): one row per
model (vanilla, then each method x unlearning modality), columns forget /
test / retain / celebrity x classification accuracy (%), generation ROUGE-L
(0-1) and cloze accuracy (%), each for image+text (img) and text-only (txt).

Summary scores (fractions 0-1, used by the plot), per model and set: the
mean of the set's six headline metrics (``acc``, ``rougeL``, ``cloze_acc`` x
img, txt). ``forget`` (lower = more forgotten: forget efficacy), ``test``
(the same on transformed images and paraphrases: generalization of
forgetting), ``retain`` and ``celebrity`` (higher = model utility kept).
"""

from __future__ import annotations

import json
from pathlib import Path

from .docs import KINDS, SETS

HEADLINE = {"cls": "acc", "gen": "rougeL", "cloze": "cloze_acc"}
#: Leaf-task name prefixes read, preferred first: the paper protocol, then its zero-shot variant.
SUITE_PREFIXES = ("mllmu", "mllmu-zs")
MODS = ("img", "txt")
COLUMNS = [(s, k, m) for s in SETS for k in KINDS for m in MODS]


def leaf_task(tasks, set_name: str, kind: str, modality: str) -> str:
    """The name of a set/kind/modality's leaf task among ``tasks`` (``mllmu_*`` before ``mllmu-zs_*``).

    Returns the paper protocol's name when neither is present.
    """
    names = [f"{prefix}_{set_name}_{kind}_{modality}" for prefix in SUITE_PREFIXES]
    return next((name for name in names if name in tasks), names[0])


def load_results(path: str | Path) -> dict:
    """An lm-eval results JSON (``results``, ``groups``, ``configs``...).

    Raises:
        ValueError: the file is not JSON (for example cut short by a full disk); the message names it.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a complete results JSON ({err}); was it cut short (a full disk)?") from err


def headline(results: dict, set_name: str, kind: str, modality: str) -> float | None:
    """The headline metric of one leaf task (fraction 0-1), None when the task was not run."""
    found = results.get("results", {})
    return found.get(leaf_task(found, set_name, kind, modality), {}).get(f"{HEADLINE[kind]},none")


def summary(results: dict) -> dict[str, float | None]:
    """``{set: mean of its available headline metrics}`` (fractions 0-1; None if none ran)."""
    return {s: set_score(results, (s,)) for s in SETS}


#: The sets whose summary is model utility: the retain profiles and the real celebrities (Liu et al. 2025, Sec. 3).
UTILITY_SETS = ("retain", "celebrity")


def set_score(results: dict, sets=UTILITY_SETS) -> float | None:
    """Mean of the available headline metrics over ``sets`` (fraction 0-1; None if none ran).

    ``set_score(results, ("forget",))`` is the forget-set summary (forget efficacy: lower = more forgotten);
    the default is model utility, the retain and celebrity sets' 12 headline metrics weighted equally.
    """
    values = [v for s in sets for k in KINDS for m in MODS if (v := headline(results, s, k, m)) is not None]
    return sum(values) / len(values) if values else None


def set_score_interval(scores: dict[str, dict], sets=UTILITY_SETS, n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of :func:`set_score` from per-question values
    (:func:`load_question_scores`), each leaf task's questions resampled with replacement independently
    (Efron & Tibshirani 1993, Sec. 13.3); None when no task of ``sets`` has per-question values.
    Draws: ``numpy.random.default_rng(seed)``, one ``(n_boot, n)`` block per task in column order."""
    import numpy as np

    tasks = [leaf_task(scores, s, k, m) for s in sets for k in KINDS for m in MODS]
    columns = [np.fromiter(scores[t].values(), dtype=float) for t in tasks if scores.get(t)]
    if not columns:
        return None
    rng = np.random.default_rng(seed)
    means = np.stack([v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1) for v in columns], axis=1)
    scores_of_draws, tail = means.mean(axis=1), 100 * (1 - level) / 2
    return float(np.percentile(scores_of_draws, tail)), float(np.percentile(scores_of_draws, 100 - tail))


def _cell(kind: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if kind == "gen" else f"{100 * value:.1f}"


def markdown_table(results_by_model: dict[str, dict]) -> str:
    """The Table-2 layout in markdown: cls and cloze in %, generation ROUGE-L in 0-1."""
    head = "| model | " + " | ".join(f"{s} {k} {m}" for s, k, m in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = ["| " + name + " | " + " | ".join(_cell(k, headline(res, s, k, m)) for s, k, m in COLUMNS) + " |"
            for name, res in results_by_model.items()]
    legend = ("cls = classification accuracy (%), gen = generation ROUGE-L (0-1), cloze = cloze accuracy (%); "
              "img = image+text, txt = text-only.")
    return "\n".join([head, rule, *rows, "", legend]) + "\n"


def summary_table(results_by_model: dict[str, dict]) -> str:
    """One row per model: the four set summaries (fractions 0-1)."""
    lines = ["| model | " + " | ".join(SETS) + " |", "|---|" + "---:|" * len(SETS)]
    for name, res in results_by_model.items():
        values = summary(res)
        lines.append(f"| {name} | " + " | ".join("-" if values[s] is None else f"{values[s]:.3f}" for s in SETS)
                     + " |")
    return "\n".join(lines) + "\n"


def new_plot(size=(6, 5)):
    """A matplotlib ``(figure, axes)`` on the file-only Agg backend, 120 dpi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, dpi=120)


def save_plot(fig, ax, path: str | Path, xlabel: str, ylabel: str, title: str, legend: bool = False) -> Path:
    """Label ``ax`` (a light grid; the legend if asked), write ``fig`` to ``path`` (PNG) and close it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_forget_vs_retain(results_by_model: dict[str, dict], path: str | Path) -> Path:
    """Scatter of the forget summary (y) against the retain summary (x), one labelled point per model (PNG)."""
    fig, ax = new_plot()
    for name, res in results_by_model.items():
        values = summary(res)
        if values["forget"] is None or values["retain"] is None:
            continue
        marker = "*" if name == "vanilla" else ("o" if "image+text" in name else "s")
        ax.scatter(values["retain"], values["forget"], s=120 if marker == "*" else 50, marker=marker)
        ax.annotate(name, (values["retain"], values["forget"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    return save_plot(fig, ax, path, "retain set (model utility), mean of acc / ROUGE-L / cloze",
                     "forget set (lower = forgotten), same mean", "MLLMU-Bench: forget vs retain")


# ---------------------------------------------------------------- runs with per-question samples, intervals


def find_results(path: str | Path) -> Path:
    """A results JSON: the path itself, or the newest ``results_*.json`` under a directory.

    Raises:
        FileNotFoundError: no results file there.
    """
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.rglob("results_*.json"), key=lambda p: p.name) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no lm-eval results_*.json under {path}")
    return found[-1]


def find_runs(path: str | Path) -> list[Path]:
    """The results JSONs one command-line RUN names: a results JSON; an lm-eval ``--output_path`` folder (its
    newest ``results_*.json``); or an ``mllmu-pipeline`` output folder or its ``results/`` folder
    (``vanilla.json``, then each ``unlearn_*.json``; not the identity check or per-question files).

    Raises:
        FileNotFoundError: none of these; the message names the path and the layouts looked for.
    """
    path = Path(path)
    folder = path / "results" if (path / "results" / "vanilla.json").is_file() else path
    if not path.is_file() and (folder / "vanilla.json").is_file():
        unlearned = sorted(p for p in folder.glob("unlearn_*.json") if not p.name.endswith(".questions.json"))
        return [folder / "vanilla.json", *unlearned]
    try:
        return [find_results(path)]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a results JSON, an lm-eval --output_path folder (results_*.json) or an "
                                f"mllmu-pipeline output folder (results/vanilla.json)") from None


def load_samples(results_path: Path) -> dict[str, dict[int, dict]]:
    """``{task: {doc_id: sample}}`` from the ``--log_samples`` files beside a results JSON (same date id).

    Raises:
        ValueError: a samples file is not JSON Lines (cut short); the message names it.
    """
    date_id = results_path.stem[len("results_"):]
    samples = {}
    for f in results_path.parent.glob(f"samples_*_{date_id}.jsonl"):
        task = f.name[len("samples_"):-len(f"_{date_id}.jsonl")]
        try:
            rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise ValueError(f"{f}: not a complete samples file ({err}); was it cut short (a full disk)?") from err
        samples[task] = {row["doc_id"]: row for row in rows}
    return samples


def question_key(doc: dict) -> tuple[str, int, str]:
    """What makes a question the same question in two runs: profile ID, position in its list, text.

    lm-eval's ``doc_id`` is only a position in one run's document list: runs at
    other forget ratios (or with other demonstration draws) number other
    questions alike.
    """
    return (str(doc.get("ID")), int(doc.get("item_index", doc.get("question_index", -1))), str(doc.get("question")))


def row_scores(rows, kind: str) -> dict[tuple, float]:
    """``{question_key: headline value}`` of logged sample rows of one task of ``kind``."""
    return {question_key(row["doc"]): float(row[HEADLINE[kind]]) for row in rows}


def question_scores(samples: dict[str, dict[int, dict]], set_name: str, kind: str, modality: str) -> dict[tuple, float]:
    """Per-question headline metric of one leaf task: ``{question_key: value}`` (empty when not logged)."""
    return row_scores(samples.get(leaf_task(samples, set_name, kind, modality), {}).values(), kind)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean, resampling questions with replacement.

    Efron & Tibshirani (1993), "An Introduction to the Bootstrap", Sec. 13.3.
    ``values``: per-question scores (n,); returns ``(low, high)`` in the values' unit.
    Draws: ``numpy.random.default_rng(seed).integers(0, n, size=(n_boot, n))``.

    Raises:
        ValueError: no values.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap of an empty set of questions")
    idx = np.random.default_rng(seed).integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap(a: dict, b: dict, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Paired comparison of two models on the same questions (keys present in both: :func:`question_key`).

    Resamples questions with replacement (the same indices for both models)
    and returns the mean difference ``a - b``, its percentile interval, and a
    two-sided p-value of "no difference" by the shift method,
    ``p = (1 + #{|d*_b - d| >= |d|}) / (1 + n_boot)`` (Efron & Tibshirani 1993,
    Sec. 16.4; Berg-Kirkpatrick et al. 2012 for NLP).

    Raises:
        ValueError: the two runs share no question.
    """
    import numpy as np

    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two runs share no question")
    diffs = np.array([a[i] - b[i] for i in common], dtype=float)
    idx = np.random.default_rng(seed).integers(0, diffs.size, size=(n_boot, diffs.size))
    boot = diffs[idx].mean(axis=1)
    observed = float(diffs.mean())
    tail = 100 * (1 - level) / 2
    extreme = int(np.sum(np.abs(boot - observed) >= abs(observed)))
    return {"diff": observed, "low": float(np.percentile(boot, tail)), "high": float(np.percentile(boot, 100 - tail)),
            "p": (1 + extreme) / (1 + n_boot), "n": diffs.size}


def interval_rows(runs: dict[str, tuple[dict, dict]], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per model x leaf task: headline value (from the results JSON) and its bootstrap interval.

    ``runs``: ``{model name: (results dict, samples from load_samples)}``. The
    interval is None when the run has no per-question samples for the task.
    """
    rows = []
    for name, (results, samples) in runs.items():
        for s, k, m in COLUMNS:
            value = headline(results, s, k, m)
            if value is None:
                continue
            scores = question_scores(samples, s, k, m)
            low, high = bootstrap_ci(list(scores.values()), n_boot, seed) if scores else (None, None)
            rows.append({"model": name, "set": s, "kind": k, "modality": m, "metric": HEADLINE[k],
                         "value": value, "ci_low": low, "ci_high": high, "n": len(scores) or None})
    return rows


def rows_markdown(rows: list[dict]) -> str:
    """Table-2 layout with ``value [low, high]`` cells (cls and cloze in %, generation ROUGE-L 0-1)."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells = {(r["model"], r["set"], r["kind"], r["modality"]): r for r in rows}
    lines = ["| model | " + " | ".join(f"{s} {k} {m}" for s, k, m in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name in models:
        out = []
        for s, k, m in COLUMNS:
            r = cells.get((name, s, k, m))
            if r is None:
                out.append("-")
            elif r["ci_low"] is None:
                out.append(_cell(k, r["value"]))
            else:
                out.append(f"{_cell(k, r['value'])} [{_cell(k, r['ci_low'])}, {_cell(k, r['ci_high'])}]")
        lines.append(f"| {name} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n\n95 % bootstrap intervals over questions in brackets.\n"


#: The columns of :func:`rows_csv` for :func:`interval_rows`.
CSV_FIELDS = ("model", "set", "kind", "modality", "metric", "value", "ci_low", "ci_high", "n")


def rows_csv(rows: list[dict], fields=CSV_FIELDS) -> str:
    """Long-format CSV (fractions 0-1), one line per row, columns ``fields`` (default: model, set, kind, modality,
    metric, value, ci_low, ci_high, n)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def rows_latex(rows: list[dict]) -> str:
    """A booktabs LaTeX table of the headline values (cls and cloze in %, ROUGE-L 0-1)."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells = {(r["model"], r["set"], r["kind"], r["modality"]): r["value"] for r in rows}
    spec = "l" + "r" * len(COLUMNS)
    head = " & ".join(["model"] + [f"{s} {k} {m}" for s, k, m in COLUMNS]) + r" \\"
    body = [" & ".join([name.replace("_", r"\_")] + [_cell(k, cells.get((name, s, k, m))) for s, k, m in COLUMNS])
            + r" \\" for name in models]
    return "\n".join([r"\begin{tabular}{" + spec + "}", r"\toprule", head, r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}"]) + "\n"


def comparison_markdown(name_a: str, name_b: str, samples_a: dict, samples_b: dict, n_boot: int = 1000,
                        seed: int = 0) -> str:
    """Paired bootstrap of two runs, one row per leaf task both logged (difference a - b, interval, p)."""
    lines = [f"Paired comparison {name_a} - {name_b} (same questions, {n_boot} bootstrap resamples):", "",
             "| task | metric | n | difference | 95 % interval | p |", "|---|---|---:|---:|---:|---:|"]
    for s, k, m in COLUMNS:
        a, b = question_scores(samples_a, s, k, m), question_scores(samples_b, s, k, m)
        if not set(a) & set(b):
            continue
        c = paired_bootstrap(a, b, n_boot, seed)
        lines.append(f"| {leaf_task(samples_a, s, k, m)} | {HEADLINE[k]} | {c['n']} | {c['diff']:+.3f} | "
                     f"[{c['low']:+.3f}, {c['high']:+.3f}] | {c['p']:.3f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- unimodal vs multimodal unlearning

#: The paper's headline (Liu et al. 2025, MLLMU-Bench): which unlearning modality forgets more, per task kind:
#: unimodal (text-only) unlearning does better on generation and cloze, multimodal on classification.
PAPER_FINDING = {"cls": "image+text", "gen": "text-only", "cloze": "text-only"}


def compact_question_scores(samples: dict[str, list[dict]]) -> dict[str, list[list]]:
    """Per-question headline values of each MLLMU leaf task in lm-eval's ``samples`` (``{task: [rows]}``).

    Returns ``{task: [[ID, item_index, question, value], ...]}`` (JSON-ready; value a fraction 0-1), the
    question identified as in :func:`question_key`. Tasks that are not leaves of a known kind are left out.
    """
    out = {}
    for task, rows in samples.items():
        kind = task.split("_")[-2] if task.count("_") >= 3 else None
        if kind in HEADLINE:
            out[task] = [[*key, value] for key, value in row_scores(rows, kind).items()]
    return out


def load_question_scores(path: str | Path) -> dict[str, dict[tuple, float]]:
    """:func:`compact_question_scores` output read back: ``{task: {question_key: value}}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {task: {(str(i), int(j), str(q)): float(v) for i, j, q, v in rows} for task, rows in data.items()}


def _pooled(scores: dict[str, dict[tuple, float]], set_name: str, kind: str) -> dict[tuple, float]:
    """One model's per-question values on a set and kind, both eval modalities pooled: ``{(task, key): value}``."""
    out = {}
    for m in MODS:
        task = leaf_task(scores, set_name, kind, m)
        out.update({(task, key): v for key, v in scores.get(task, {}).items()})
    return out


def modality_headline(pairs: dict[str, tuple[dict, dict]], set_name: str = "forget", n_boot: int = 1000,
                      seed: int = 0) -> list[dict]:
    """Text-only vs image+text unlearning on ``set_name``, per task kind, averaged over methods.

    Args:
        pairs: ``{method: (question scores of its text-only-unlearned model, of its image+text-unlearned
            model)}``, each ``{task: {question_key: value}}`` (:func:`load_question_scores`).

    Per kind, each question's score is averaged over the methods for either unlearning modality, pooling the
    set's image+text and text-only questions (those every model answered); :func:`paired_bootstrap` then
    gives the mean difference text-only - image+text (lower = more forgotten), its 95 % interval and p.

    Returns one row per kind with a question: ``kind``, ``metric``, ``n``, ``diff``, ``low``, ``high``,
    ``p``, ``forgot_more`` (``text-only``/``image+text``, or ``neither`` when the interval holds 0),
    ``paper`` (:data:`PAPER_FINDING`) and ``agrees``.
    """
    rows = []
    for kind in KINDS:
        text = [_pooled(t, set_name, kind) for t, _ in pairs.values()]
        image = [_pooled(i, set_name, kind) for _, i in pairs.values()]
        common = set.intersection(*(set(s) for s in text + image)) if pairs else set()
        if not common:
            continue
        a = {q: sum(s[q] for s in text) / len(text) for q in common}
        b = {q: sum(s[q] for s in image) / len(image) for q in common}
        c = paired_bootstrap(a, b, n_boot, seed)
        forgot = "neither" if c["low"] <= 0 <= c["high"] else ("text-only" if c["diff"] < 0 else "image+text")
        rows.append({"kind": kind, "metric": HEADLINE[kind], **c, "forgot_more": forgot,
                     "paper": PAPER_FINDING[kind], "agrees": forgot == PAPER_FINDING[kind]})
    return rows


def headline_markdown(rows: list[dict], methods: list[str], set_name: str = "forget") -> str:
    """The report section stating, per kind, which unlearning modality forgot more and whether the paper agrees."""
    kinds = {"cls": "classification", "gen": "generation", "cloze": "cloze"}
    lines = ["### Unimodal vs multimodal unlearning (the paper's headline)", "",
             f"{set_name.capitalize()}-set score after text-only unlearning minus after image+text unlearning, "
             f"per question, averaged over {', '.join(methods)} (image+text and text-only questions pooled; "
             f"negative: text-only unlearning forgot more). 95 % paired bootstrap interval over questions, p of "
             f"no difference.", "",
             "| task kind | metric | questions | text-only - image+text | 95 % interval | p | forgot more | paper | "
             "agrees |", "|---|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {kinds[r['kind']]} | {r['metric']} | {r['n']} | {r['diff']:+.3f} | "
                     f"[{r['low']:+.3f}, {r['high']:+.3f}] | {r['p']:.3f} | {r['forgot_more']} | {r['paper']} | "
                     f"{'yes' if r['agrees'] else 'no'} |")
    agree = [kinds[r["kind"]] for r in rows if r["agrees"]]
    if not agree:
        verdict = "holds for no task kind"
    elif len(agree) == len(rows):
        verdict = "holds for " + ", ".join(agree)
    else:
        verdict = f"holds for {', '.join(agree)} and not for the rest"
    lines += ["", f"The paper found text-only unlearning forgets more on generation and cloze, image+text "
              f"unlearning on classification. Here it {verdict} ({len(agree)} of {len(rows)})."]
    return "\n".join(lines) + "\n"
