"""Running a sweep: the shared upstream stages once per upstream, then every trial, as Ray tasks.

What runs where:

- the **driver** (``mllmu-sweep``) expands and checks the trials (no model
  loads), starts or joins Ray, submits the tasks, records what failed and
  writes the result table;
- an **upstream task** runs ``mllmu-pipeline`` with no methods into
  ``<out_dir>/upstream/<id>``: base, pretrain, vanilla and (with the audit)
  retrained models, the vanilla model's scores and audit;
- a **trial task** makes ``<out_dir>/trials/<trial id>`` a pipeline folder
  whose upstream stages are links to the shared ones (with their
  ``manifest.json`` entries, so the pipeline's own resume logic skips them),
  then runs ``mllmu-pipeline`` for its one method and modality: unlearn ->
  score -> audit -> relearning attack. It loads the vanilla model, its
  unlearned model and (audit) the retrained model's audit JSON.

Trials are idempotent: ``trial.json`` in a trial's folder records it as done or
failed (with the error); a rerun skips both (``retry_failed`` redoes the
failed ones) and redoes a trial that was interrupted (no ``trial.json``),
continuing from its last training checkpoint. A trial that raises (a
non-finite loss, CUDA out of memory) or whose worker dies (the host's
out-of-memory killer) is recorded as failed and the sweep goes on.

Ray: a local instance by default (``num_cpus`` workers' worth of CPUs); the
cluster at ``RAY_ADDRESS`` when it is set (then ``out_dir`` must be on a
filesystem every node shares, and the package installed on every node).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import traceback
from pathlib import Path

from mllmu_tasks import report

from ..checkpoint import write_json_atomic
from ..pipeline import PipelineConfig, results_json, run_pipeline, unlearn_stage
from . import results as table
from .spec import SweepSpec, Trial, expand, flag_text

#: Folders of an upstream pipeline folder that a trial writes into: linked file by file, not as a whole.
OWN_FOLDERS = ("results", "audit")
#: Of ``data/``, only the stage outputs are linked (the pipeline rewrites the rest in place on every run).
DATA_STAGES = ("holdout-mirror",)
ROOT_FILES = ("manifest.json", "pipeline_config.json", "report.md")


def _link(target: Path, link: Path) -> None:
    if not link.is_symlink() and not link.exists():
        link.symlink_to(target, target_is_directory=target.is_dir())


def link_upstream(upstream: Path, folder: Path) -> None:
    """Make ``folder`` a pipeline folder whose upstream stages are ``upstream``'s: a link per model folder, per
    results or audit file and for ``data/holdout-mirror``, and ``upstream``'s manifest entries merged into
    ``folder/manifest.json`` (the trial's own entries kept). Files the pipeline writes replace their links
    atomically, so nothing is written into ``upstream``.

    Raises:
        FileNotFoundError: ``upstream`` has no ``manifest.json`` (its stages have not run).
    """
    entries = json.loads((upstream / "manifest.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for item in upstream.iterdir():
        if item.name in ROOT_FILES or item.name.startswith(".") or not item.is_dir():
            continue
        if item.name in OWN_FOLDERS or item.name == "data":
            (folder / item.name).mkdir(exist_ok=True)
            for child in item.iterdir():
                if item.name != "data" or child.name in DATA_STAGES:
                    _link(child, folder / item.name / child.name)
        else:
            _link(item, folder / item.name)
    manifest = folder / "manifest.json"
    own = json.loads(manifest.read_text()) if manifest.exists() else {}
    write_json_atomic(manifest, {**own, **entries})


def record_path(trial_dir: str | Path) -> Path:
    """A trial's record: ``<trial folder>/trial.json`` (status ``done`` or ``failed``)."""
    return Path(trial_dir) / "trial.json"


def load_record(trial: Trial) -> dict | None:
    """The trial's ``trial.json``, or None when it has not finished (never run, or interrupted)."""
    path = record_path(trial.config.out_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def _record(trial: Trial, status: str, seconds: float, **extra) -> dict:
    return {"id": trial.id, "method": trial.method, "modality": trial.modality, "settings": trial.settings,
            "status": status, "out_dir": trial.config.out_dir, "upstream": trial.upstream.out_dir,
            "config": dataclasses.asdict(trial.config), "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}


def failed(trial: Trial, error: str, seconds: float = 0.0, trace: str = "") -> dict:
    """Record ``trial`` as failed with ``error`` (one line) and return the record."""
    rec = _record(trial, "failed", seconds, error=error, traceback=trace)
    write_json_atomic(record_path(trial.config.out_dir), rec, default=str)
    return rec


def _run_logged(config) -> None:
    """``run_pipeline(config)``, everything it prints (stage lines, the Trainer's progress bars) appended to
    ``<config.out_dir>/log.txt``."""
    with open(Path(config.out_dir) / "log.txt", "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        run_pipeline(config, log=lambda line: print(line, file=log, flush=True))


def _threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(cpus)))


def run_upstream(config, cpus: float = 1) -> dict:
    """A Ray task: the pipeline with no methods into ``config.out_dir``; returns ``{"status", "error"?}``
    (never raises: its trials record the error)."""
    _threads(cpus)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        _run_logged(config)
        return {"status": "done"}
    except Exception as err:  # noqa: BLE001 - recorded in every trial that needs this upstream
        return {"status": "failed", "error": f"upstream {out.name}: {type(err).__name__}: {err}",
                "traceback": traceback.format_exc()}


def run_trial(trial: Trial, upstream: dict, cpus: float = 1) -> dict:
    """A Ray task: one trial (see the module's docstring); writes and returns its record (never raises).

    ``upstream``: :func:`run_upstream`'s result (Ray passes it once that task has finished).
    Each start and end is appended to ``attempts.jsonl`` in the trial's folder.
    """
    start = time.time()
    folder = Path(trial.config.out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _attempt(folder, start=time.strftime("%Y-%m-%dT%H:%M:%S"), host=socket.gethostname(), pid=os.getpid())
    if upstream["status"] != "done":
        rec = failed(trial, upstream["error"], trace=upstream.get("traceback", ""))
    else:
        _threads(cpus)
        try:
            link_upstream(Path(trial.upstream.out_dir), folder)
            _run_logged(trial.config)
            rec = _record(trial, "done", time.time() - start, **_outcome(trial, folder))
            write_json_atomic(record_path(folder), rec)
        except Exception as err:  # noqa: BLE001 - a failed trial is recorded and the sweep goes on
            rec = failed(trial, f"{type(err).__name__}: {err}", time.time() - start, traceback.format_exc())
    _attempt(folder, end=rec["status"], pid=os.getpid())
    return rec


def _attempt(folder: Path, **entry) -> None:
    """Append a start or end line to the trial's ``attempts.jsonl`` (an interrupted attempt has no end line)."""
    with open(folder / "attempts.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _outcome(trial: Trial, folder: Path) -> dict:
    """What the record keeps of a finished trial: the vanilla model's forget score and utility (the rule's
    reference) and the privacy audit's comparison with the retrained model, where it ran."""
    from ..audit.run import compare

    reference = table.forget_and_utility(report.load_results(results_json(folder, "vanilla")))
    stage = unlearn_stage(trial.method, trial.modality).replace("/", "_")
    audit, retrained = folder / "audit" / f"{stage}.json", folder / "audit" / "retrained.json"
    privacy = compare(json.loads(audit.read_text()), json.loads(retrained.read_text())) \
        if audit.is_file() and retrained.is_file() else None
    return {"vanilla": reference, "privacy": privacy}


def init_ray(num_cpus: int | None = None) -> bool:
    """Join the cluster at ``RAY_ADDRESS``, or start a local Ray with ``num_cpus`` CPUs (default: all) and no
    dashboard; returns whether this call started it (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=200 * 1024 ** 2)
    return True


def run_sweep(spec: SweepSpec, retry_failed: bool = False, num_cpus: int | None = None, log=print) -> str:
    """Run (or resume) every trial of ``spec``; write ``results.csv``, ``results.md``, ``pareto.png`` and
    ``best.json`` in ``spec.out_dir``; returns the markdown table.

    Raises:
        ValueError: a bad sweep specification (:func:`~unlearners.sweep.spec.expand`), before Ray starts.
    """
    trials = expand(spec)
    out = Path(spec.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "sweep.json", {"spec": dataclasses.asdict(spec), "trials": [
        {"id": t.id, "settings": t.settings, "upstream": t.upstream_id} for t in trials]}, default=str)
    pending = []
    for trial in trials:
        rec = load_record(trial)
        if rec is None or (retry_failed and rec["status"] == "failed"):
            pending.append(trial)
    log(f"[sweep] {len(trials)} trials: {len(trials) - len(pending)} finished before, {len(pending)} to run")
    if pending:
        _run_tasks(spec, pending, num_cpus, log)
    return write_results(spec, trials)


def _run_tasks(spec: SweepSpec, pending: list[Trial], num_cpus: int | None, log) -> None:
    import ray
    from tqdm.auto import tqdm

    started = init_ray(num_cpus)
    try:
        opts = dict(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial, max_retries=0)
        upstream_cpus = spec.cpus_per_upstream or spec.cpus_per_trial
        upstream_task = ray.remote(run_upstream).options(**{**opts, "num_cpus": upstream_cpus})
        trial_task = ray.remote(run_trial).options(**opts)
        configs = {t.upstream_id: t.upstream for t in pending}  # one task per distinct upstream
        upstreams = {uid: upstream_task.remote(config, upstream_cpus) for uid, config in configs.items()}
        running = {trial_task.remote(t, upstreams[t.upstream_id], spec.cpus_per_trial): t for t in pending}
        with tqdm(total=len(running), desc="mllmu-sweep trials", unit="trial") as bar:
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                trial = running.pop(ref)
                try:
                    rec = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died: out of memory, killed
                    rec = failed(trial, f"{type(err).__name__}: {str(err).splitlines()[0]}")
                bar.update()
                log(f"[{trial.id}] {rec['status']}" + (f": {rec['error']}" if rec["status"] != "done" else
                                                        f" in {rec['seconds']:.0f} s"))
    finally:
        if started:
            ray.shutdown()


def write_results(spec: SweepSpec, trials: list[Trial]) -> str:
    """The result files from the finished trials' records (trials not finished are left out)."""
    out = Path(spec.out_dir).resolve()
    records = [rec for t in trials if (rec := load_record(t)) is not None]
    rows = [row for rec in records for row in table.trial_rows(rec)]
    (out / "results.csv").write_text(table.rows_csv(rows), encoding="utf-8")
    best = table.best_per_method(table.headline(rows), spec.forget_share)
    text = table.markdown(rows, records, spec.forget_share, best)
    (out / "results.md").write_text(text, encoding="utf-8")
    table.plot(rows, out / "pareto.png")
    by_id = {rec["id"]: rec for rec in records}
    write_json_atomic(out / "best.json", {method: None if t is None else {
        "trial": t, "settings": by_id[t]["settings"], "pipeline_config": by_id[t]["config"],
        "command": pipeline_command(by_id[t]["config"], f"runs/table2-{method}")} for method, t in best.items()})
    return text


def pipeline_command(config: dict, out_dir: str) -> str:
    """The ``mllmu-pipeline`` command line of a trial's configuration (``config``: its ``PipelineConfig`` as a
    dict): every setting that differs from the default, ``--out_dir`` replaced."""
    import shlex

    defaults = dataclasses.asdict(PipelineConfig())
    flags = [f"--out_dir {shlex.quote(out_dir)}"]
    for key, value in config.items():
        if key != "out_dir" and value != defaults[key] and not (isinstance(value, list) and
                                                                 tuple(value) == defaults[key]):
            flags.append(f"--{key} {shlex.quote(flag_text(value))}")
    return "mllmu-pipeline " + " ".join(flags)
