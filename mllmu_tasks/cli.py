"""``mllmu-eval``: lm-eval's command line with the MLLMU suite already included.

Every ``lm_eval`` flag works unchanged. The differences:

- the suite's task folder (:data:`mllmu_tasks.TASKS_DIR`) is always on the
  include path, beside any ``--include_path`` given;
- lm-eval's thousands of built-in tasks are not indexed (about 11 s saved
  at every start) unless ``--include_defaults`` is given;
- the suite's backend ``--model mllmu-vlm`` (:mod:`mllmu_tasks.backend`) is
  registered: ``hf-multimodal`` that also takes the text-only tasks;
- the suite's settings (``--metadata`` source and forget ratio, or the
  environment) are checked before any model is loaded, and bad data or
  settings are reported in one line (config, row, field) with exit code 2.

Example::

    mllmu-eval --model mllmu-vlm --model_args pretrained=llava-hf/llava-1.5-7b-hf \\
        --tasks mllmu --metadata '{"forget_ratio": 5}' --output_path results/ --log_samples
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from . import TASKS_DIR
from .schema import SchemaError
from .sources import SettingsError, resolve_settings

INCLUDE_DEFAULTS_FLAG = "--include_defaults"


def suite_task_manager(include_defaults: bool):
    """A ``TaskManager`` subclass that always includes :data:`TASKS_DIR`.

    Args:
        include_defaults: whether lm-eval's built-in tasks are indexed too.
    """
    from lm_eval.tasks.manager import TaskManager  # lm-eval's own, even after main() replaced lm_eval.tasks'

    class SuiteTaskManager(TaskManager):
        def __init__(self, verbosity=None, include_path=None, include_defaults=include_defaults, metadata=None):
            extra = [] if include_path is None else (
                list(include_path) if isinstance(include_path, (list, tuple)) else [include_path])
            super().__init__(verbosity, include_path=[TASKS_DIR, *extra], include_defaults=include_defaults,
                             metadata=metadata)

    return SuiteTaskManager


def check_settings(args: list[str]) -> None:
    """Parse the command line as lm-eval will and resolve the suite's settings, before any model loads.

    Raises:
        ValueError, FileNotFoundError: see :func:`mllmu_tasks.sources.resolve_settings`.
    """
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    argv = args if args and args[0] in cli._subparsers.choices else ["run", *args]
    if argv[0] == "run" and len(argv) > 1:
        namespace = cli._parser.parse_args(argv)
        metadata = getattr(namespace, "metadata", None) or {}
        resolve_settings(metadata)
        tasks = getattr(namespace, "tasks", None)
        patterns = [t for spec in ([tasks] if isinstance(tasks, str) else tasks or []) for t in spec.split(",") if t]
        ours = any(p.startswith("mllmu") for p in patterns)
        if getattr(namespace, "num_fewshot", None) and ours:
            raise SettingsError("--num_fewshot: the MLLMU tasks build their own demonstrations (the paper "
                                "protocol's); leave it out (or run the zero-shot variant, --tasks mllmu-zs)")
        model_args = getattr(namespace, "model_args", None)
        check_local_model_path(model_args, needs_chat_template=bool(getattr(namespace, "apply_chat_template", False)))
        if ours:
            model_kwargs = parse_model_args(model_args)
            leaves = prebuild_suite_tasks(getattr(namespace, "model", None), patterns, {**model_kwargs, **metadata})
            check_generation_limits(leaves, namespace, model_kwargs)


def check_generation_limits(leaves: dict, namespace, model_kwargs: dict) -> None:
    """Before the model loads: every prompt fits the backend's context, and the tasks' answer limit holds.

    Raises:
        SettingsError: see :func:`mllmu_tasks.context_fit.check_answer_budget` and
            :func:`~mllmu_tasks.context_fit.check_prompts_fit`.
    """
    from .context_fit import check_answer_budget, check_prompts_fit

    if not leaves:
        return
    gen_kwargs = getattr(namespace, "gen_kwargs", None)
    check_answer_budget(leaves, namespace.model, model_kwargs, gen_kwargs)
    if not getattr(namespace, "apply_chat_template", False):
        check_prompts_fit(leaves, namespace.model, model_kwargs, limit=getattr(namespace, "limit", None),
                          gen_kwargs=gen_kwargs)


def has_chat_template(folder: str) -> bool:
    """Whether a local checkpoint ships a chat template (``chat_template.jinja``/``.json`` or in a config file)."""
    path = Path(folder)
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    for name in ("tokenizer_config.json", "processor_config.json", "preprocessor_config.json"):
        try:
            if json.loads((path / name).read_text()).get("chat_template"):
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def check_local_model_path(model_args, needs_chat_template: bool = False) -> None:
    """A ``pretrained=`` that is plainly a local path (absolute, ``./``, ``../``, ``~``) must exist, and
    hold a chat template when ``--apply_chat_template`` asks for one.

    Raises:
        SettingsError: the folder does not exist, or has no chat template
            (hub IDs such as ``org/name`` are not checked here).
    """
    pretrained = parse_model_args(model_args).get("pretrained")
    if isinstance(pretrained, str) and pretrained.startswith(("/", "./", "../", "~")):
        folder = os.path.expanduser(pretrained)
        if not os.path.isdir(folder):
            raise SettingsError(f"--model_args pretrained={pretrained}: no such model folder")
        if needs_chat_template and not has_chat_template(folder):
            raise SettingsError(f"--apply_chat_template: {pretrained} has no chat template (no chat_template.jinja, "
                                f"none in its tokenizer or processor config); leave the flag out to score the "
                                f"paper protocol's plain prompts")


def parse_model_args(model_args) -> dict:
    """``--model_args`` as a dict (lm-eval merges it into the tasks' metadata: ``pretrained``, ``max_images``)."""
    if isinstance(model_args, dict):
        return dict(model_args)
    if isinstance(model_args, str) and model_args:
        from lm_eval.utils import simple_parse_args_string

        return simple_parse_args_string(model_args)
    return {}


def prebuild_suite_tasks(model: str | None, patterns: list[str], metadata: dict) -> dict:
    """Build the selected suite tasks before any model loads; refuse image+text ones for a text-only backend.

    Building them checks the data and the settings (configurations, IDs,
    images, the few-shot images against ``max_images``): a bad copy is one
    line naming the configuration, row and field before minutes of model
    loading, not after. lm-eval itself refuses image+text tasks for ``hf`` or
    ``vllm`` only after loading the model, without saying what to run
    instead. Anything else (an unknown model name, tasks outside the suite)
    is left to lm-eval.

    Returns:
        task name -> built task, the selected leaves (empty where lm-eval is left to report).

    Raises:
        SchemaError, FileNotFoundError, SettingsError: bad data or settings.
        SettingsError: image+text tasks selected for a text-only backend; the
            message names ``--tasks mllmu-txt``.
    """
    if not model or not patterns:
        return {}
    from lm_eval.api.registry import get_model

    manager = suite_task_manager(include_defaults=False)(metadata=metadata)
    try:
        names = manager.match_tasks(patterns)
    except Exception:  # noqa: BLE001 - not ours to judge: lm-eval reports it
        return {}
    leaves = manager.load(names)["tasks"] if names else {}
    try:
        if getattr(get_model(model), "MULTIMODAL", False):
            return leaves
    except Exception:  # noqa: BLE001 - an unknown backend name: lm-eval reports it
        return {}
    images = sorted(name for name, task in leaves.items() if getattr(task, "MULTIMODAL", False))
    if images:
        raise SettingsError(f"--model {model} takes no images, and {len(images)} selected task(s) are image+text "
                            f"({', '.join(images[:3])}{', ...' if len(images) > 3 else ''}): score the text-only "
                            f"tasks with `--tasks mllmu-txt`, or all of them with `--model mllmu-vlm`")
    return leaves


class SaveFailures(logging.Handler):
    """Collects lm-eval's "Could not save ..." warnings and the cause it logs next (lm-eval 0.4.13 swallows
    the ``OSError`` of a full disk or an unwritable ``--output_path`` and exits 0)."""

    WARNINGS = ("Could not save results aggregated", "Could not save sample results")

    def __init__(self):
        super().__init__(logging.INFO)
        self.failures: list[str] = []
        self._await_cause = False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(self.WARNINGS):
            self.failures.append(message)
            self._await_cause = True
        elif self._await_cause:
            self.failures[-1] += f" ({message})"
            self._await_cause = False


def main(argv: list[str] | None = None) -> None:
    """Run lm-eval's CLI (``run``, ``ls``, ``validate``) with the suite included.

    Exit codes: 2 for bad settings or data (one line naming the config, row
    and field), 1 when the results could not be written (:class:`SaveFailures`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    include_defaults = INCLUDE_DEFAULTS_FLAG in args
    args = [a for a in args if a != INCLUDE_DEFAULTS_FLAG]

    import lm_eval.tasks
    from lm_eval.__main__ import cli_evaluate

    from .backend_registry import register

    register()
    lm_eval.tasks.TaskManager = suite_task_manager(include_defaults)
    sys.argv = ["mllmu-eval", *args]
    saving = SaveFailures()
    tracker_log = logging.getLogger("lm_eval.loggers.evaluation_tracker")
    tracker_log.addHandler(saving)
    tracker_log.setLevel(min(tracker_log.getEffectiveLevel(), logging.INFO))
    try:
        check_settings(args)
        cli_evaluate()
    except (SchemaError, FileNotFoundError, SettingsError) as err:
        # bad data or source: one clear line (config, row, field) instead of lm-eval's traceback
        print(f"mllmu-eval: error: {err}", file=sys.stderr)
        sys.exit(2)
    finally:
        tracker_log.removeHandler(saving)
    if saving.failures:
        print(f"mllmu-eval: error: results not written: {'; '.join(saving.failures)}: a partial results or "
              f"samples file in --output_path is not to be trusted (full disk? unwritable folder?)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
