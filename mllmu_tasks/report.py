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
MODS = ("img", "txt")
COLUMNS = [(s, k, m) for s in SETS for k in KINDS for m in MODS]


def load_results(path: str | Path) -> dict:
    """An lm-eval results JSON (``results``, ``groups``, ``configs``...)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def headline(results: dict, set_name: str, kind: str, modality: str) -> float | None:
    """The headline metric of one leaf task (fraction 0-1), None when the task was not run."""
    task = results.get("results", {}).get(f"mllmu_{set_name}_{kind}_{modality}", {})
    return task.get(f"{HEADLINE[kind]},none")


def summary(results: dict) -> dict[str, float | None]:
    """``{set: mean of its available headline metrics}`` (fractions 0-1; None if none ran)."""
    out = {}
    for s in SETS:
        values = [v for k in KINDS for m in MODS if (v := headline(results, s, k, m)) is not None]
        out[s] = sum(values) / len(values) if values else None
    return out


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


def plot_forget_vs_retain(results_by_model: dict[str, dict], path: str | Path) -> Path:
    """Scatter of the forget summary (y) against the retain summary (x), one labelled point per model (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    for name, res in results_by_model.items():
        values = summary(res)
        if values["forget"] is None or values["retain"] is None:
            continue
        marker = "*" if name == "vanilla" else ("o" if "image+text" in name else "s")
        ax.scatter(values["retain"], values["forget"], s=120 if marker == "*" else 50, marker=marker)
        ax.annotate(name, (values["retain"], values["forget"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("retain set (model utility), mean of acc / ROUGE-L / cloze")
    ax.set_ylabel("forget set (lower = forgotten), same mean")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("MLLMU-Bench: forget vs retain")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
