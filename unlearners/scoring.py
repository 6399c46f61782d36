"""Scoring checkpoints with the MLLMU suite in-process (lm-eval ``simple_evaluate``), results saved as JSON."""

from __future__ import annotations

from pathlib import Path

from mllmu_tasks import TASKS_DIR
from mllmu_tasks.backend_registry import register
from mllmu_tasks.report import compact_question_scores

from .checkpoint import write_json_atomic


def question_scores_path(out_json: str | Path) -> Path:
    """Where :func:`score` keeps the per-question values of ``out_json``: ``<stem>.questions.json``."""
    out_json = Path(out_json)
    return out_json.with_name(f"{out_json.stem}.questions.json")


def score(checkpoint: str | Path, tasks: list[str], source: str, forget_ratio: int, out_json: str | Path,
          batch_size: int = 32, device: str = "cpu", limit: int | None = None) -> dict:
    """Score ``checkpoint`` with ``mllmu-vlm`` on ``tasks``; write lm-eval's results dict to ``out_json``.

    The model family of the released rules is read from the checkpoint (:mod:`mllmu_tasks.family`).

    Beside ``out_json`` it writes ``<stem>.questions.json``: each leaf task's per-question headline values
    (:func:`mllmu_tasks.report.compact_question_scores`), for paired comparisons in the report.

    Returns:
        The results dict (``results``, ``groups``, ``configs``, ...), samples left out.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    register()
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False,
                          metadata={"source": source, "forget_ratio": forget_ratio, "pretrained": str(checkpoint)})
    results = simple_evaluate(model="mllmu-vlm", model_args={"pretrained": str(checkpoint), "device": device},
                              tasks=tasks, task_manager=manager, batch_size=batch_size, limit=limit, log_samples=True)
    questions = compact_question_scores(results.pop("samples", None) or {})
    write_json_atomic(question_scores_path(out_json), questions)
    write_json_atomic(out_json, results, default=handle_non_serializable)
    return results
