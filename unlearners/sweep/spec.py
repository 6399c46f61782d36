"""A sweep's specification: a grid (and/or list) of unlearning configurations, expanded into trials.

A trial is one ``mllmu-pipeline`` configuration with one method and one
unlearning modality. Its settings split in two:

- its **own** settings (:data:`TRIAL_FIELDS`: method, modality, the
  unlearning stage's epochs, learning rate, batch size, LoRA, method
  hyper-parameters ``<method>.<field>`` and ``TrainingArguments`` flags
  ``train.<field>``, the relearning attack's steps);
- its **upstream**: every other pipeline setting (forget ratio, seed, model
  size, vanilla epochs, ...). Trials with the same upstream share one
  vanilla model, one retrained model and the vanilla model's scores and
  audit (:mod:`unlearners.sweep.runner`), so a grid over seeds or forget
  ratios trains one vanilla model per value.

The YAML file (every section optional but one of ``grid``/``trials``)::

    out_dir: runs/sweep
    pipeline: {size: demo, forget_ratio: 10}      # mllmu-pipeline flags shared by every trial
    grid:                                         # every combination of these lists
      method: [ga, npo]
      unlearn_lr: [1.0e-3, 3.0e-3]
      npo.beta: [0.1, 0.2]                        # a method's setting: that method's trials only
      train.weight_decay: [0.0, 0.01]             # a TrainingArguments flag of the unlearning stage
    trials:                                       # single configurations, added to the grid's
      - {method: grad_diff, unlearn_epochs: 2}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0, cpus_per_upstream: 2}
    select: {forget_share: 0.5}                   # the rule for each method's best configuration
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..methods import METHODS
from ..pipeline import (MODALITIES, PipelineConfig, check_config, expand_methods, field_type,
                        parse_method_args, typed)

#: Pipeline settings that belong to a trial itself (everything else is its upstream: the vanilla model's).
TRIAL_FIELDS = ("methods", "modalities", "unlearn_epochs", "unlearn_lr", "unlearn_batch_size", "lora",
                "method_args", "train_args", "relearn_steps")
ALIASES = {"method": "methods", "modality": "modalities"}
SECTIONS = ("out_dir", "pipeline", "grid", "trials", "resources", "select")
PIPELINE_FIELDS = {f.name: f for f in dataclasses.fields(PipelineConfig)}


@dataclass
class Trial:
    """One configuration of a sweep.

    ``settings``: what this trial sets beyond the shared ``pipeline`` section
    (canonical keys, e.g. ``{"methods": "npo", "npo.beta": 0.2}``);
    ``config``: its full pipeline configuration (``out_dir`` = the trial's
    folder); ``upstream``: the configuration of its shared stages (no
    methods, :data:`TRIAL_FIELDS` at their defaults).
    """

    id: str
    settings: dict
    config: PipelineConfig
    upstream: PipelineConfig
    upstream_id: str

    @property
    def method(self) -> str:
        return self.config.methods[0]

    @property
    def modality(self) -> str:
        return self.config.modalities[0]


@dataclass
class SweepSpec:
    """A sweep: shared pipeline settings, a grid, extra trials, resources per trial, the selection rule.

    ``forget_share``: a method's best configuration is its highest model
    utility among trials whose forget-set score is at most this fraction of
    the vanilla model's (:func:`unlearners.sweep.results.best_per_method`).
    """

    out_dir: str = "runs/sweep"
    pipeline: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    trials: list = field(default_factory=list)
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    cpus_per_upstream: float | None = None   # None: cpus_per_trial (the vanilla model trains with these threads)
    forget_share: float = 0.5
    origin: str = "the sweep flags"   # the YAML file, for error messages


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file (safe loader: plain data only).

    Raises:
        ValueError: the file is not valid YAML or not a mapping, or has an unknown section or resource (names the
            file).
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as err:  # one line naming the file, not PyYAML's multi-line report
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if data is None:
        raise ValueError(f"{path}: the file is empty (a sweep file has {', '.join(SECTIONS)})")
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        extra = sorted(set(data) - set(SECTIONS)) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: unknown section(s) {extra} (a sweep file has {', '.join(SECTIONS)})")
    resources, select = data.get("resources") or {}, data.get("select") or {}
    numbers = {}
    for name, section, known in (("resources", resources, {"cpus_per_trial", "gpus_per_trial", "cpus_per_upstream"}),
                                 ("select", select, {"forget_share"})):
        if not isinstance(section, dict) or set(section) - known:
            extra = sorted(set(section) - known) if isinstance(section, dict) else section
            raise ValueError(f"{path}: {name}: unknown key(s) {extra} (known: {sorted(known)})")
        for key, value in section.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{path}: {name}: {key}: {value!r} is not a number")
            numbers[key] = float(value)
    return SweepSpec(out_dir=data.get("out_dir", "runs/sweep"), pipeline=dict(data.get("pipeline") or {}),
                     grid=dict(data.get("grid") or {}), trials=list(data.get("trials") or []), origin=str(path),
                     **numbers)


def check_resources(spec: SweepSpec) -> None:
    """Refuse resources and a selection rule that cannot work.

    Raises:
        ValueError: ``cpus_per_trial`` or ``cpus_per_upstream`` <= 0, ``gpus_per_trial`` < 0, or ``forget_share``
            outside (0, 1] (names the file or the flags, and the key).
    """
    for name, value, ok, rule in (
            ("resources: cpus_per_trial", spec.cpus_per_trial, spec.cpus_per_trial > 0, "> 0"),
            ("resources: cpus_per_upstream", spec.cpus_per_upstream,
             spec.cpus_per_upstream is None or spec.cpus_per_upstream > 0, "> 0"),
            ("resources: gpus_per_trial", spec.gpus_per_trial, spec.gpus_per_trial >= 0, ">= 0"),
            ("select: forget_share", spec.forget_share, 0 < spec.forget_share <= 1,
             "in (0, 1] (a share of the vanilla model's forget score)")):
        if not ok:
            raise ValueError(f"{spec.origin}: {name} must be {rule}, got {value:g}")


def flag_text(value) -> str:
    """A setting as flag text (lists comma-joined, booleans lower-case)."""
    if isinstance(value, (list, tuple)):
        return ",".join(flag_text(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _canonical(key: str) -> str:
    return ALIASES.get(key, key)


def _combinations(spec: SweepSpec) -> list[tuple[str, dict]]:
    """``(where, settings)`` of every grid combination and every listed trial, method and modality always set
    (from the ``pipeline`` section or the pipeline's defaults when the grid does not vary them)."""
    shared = {_canonical(k): v for k, v in spec.pipeline.items()}
    grid = {_canonical(k): (v if isinstance(v, list) else [v]) for k, v in spec.grid.items()}
    for key in ("methods", "modalities"):
        default = shared.pop(key, PIPELINE_FIELDS[key].default)
        grid.setdefault(key, [default] if isinstance(default, str) else list(default))
    combos = [(f"{spec.origin}: grid", dict(zip(grid, values))) for values in itertools.product(*grid.values())] \
        if spec.grid or not spec.trials else []
    for i, trial in enumerate(spec.trials):
        if not isinstance(trial, dict):
            raise ValueError(f"{spec.origin}: trials[{i}]: expected a mapping of settings, got {trial!r}")
        listed = {_canonical(k): v for k, v in trial.items()}
        listed.setdefault("methods", grid["methods"][0] if len(grid["methods"]) == 1 else None)
        listed.setdefault("modalities", grid["modalities"][0] if len(grid["modalities"]) == 1 else None)
        combos.append((f"{spec.origin}: trials[{i}]", listed))
    return combos


def _for_method(settings: dict, method: str) -> dict:
    """``settings`` without the other methods' ``<method>.<field>`` entries."""
    return {k: v for k, v in settings.items() if not (k.partition(".")[0] in METHODS and k.partition(".")[0] != method)}


def _split(where: str, settings: dict) -> tuple[dict, list[str], list[str]]:
    """A combination's pipeline flags, ``--method_args`` entries and ``--train_args`` entries (``settings``
    already :func:`_for_method`).

    Raises:
        ValueError: an unknown key, or ``out_dir`` (names where).
    """
    flags, method_args, train_args = {}, [], []
    for key, value in settings.items():
        head, dot, tail = key.partition(".")
        if dot and head == "train":
            train_args.append(f"{tail}={flag_text(value)}")
        elif dot and head in METHODS:
            method_args.append(f"{key}={flag_text(value)}")
        elif key == "out_dir":
            raise ValueError(f"{where}: out_dir is the sweep's own folder, not a trial setting: give it as the "
                             f"file's top-level out_dir or --out_dir")
        elif key in PIPELINE_FIELDS:
            flags[key] = value
        else:
            raise ValueError(f"{where}: unknown setting {key!r} (a mllmu-pipeline flag, <method>.<setting> or "
                             f"train.<TrainingArguments field>)")
    return flags, method_args, train_args


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def expand(spec: SweepSpec) -> list[Trial]:
    """Every trial of ``spec`` (duplicates dropped; ``method: all`` is every registered method), each checked by
    the pipeline's own :func:`~unlearners.pipeline.check_config` before anything runs.

    A trial's ID is ``<method>-<modality>-<8 hex>``: a hash of its whole configuration, so
    a changed shared setting makes new trials and a rerun of the same file finds its finished ones.

    Raises:
        ValueError: an empty sweep, an unknown setting, a listed trial without one method and one modality,
            a configuration the pipeline refuses (names the file, the pipeline section, the grid or trials[i],
            and the setting), or bad resources (:func:`check_resources`).
    """
    check_resources(spec)
    shared = {_canonical(k): v for k, v in spec.pipeline.items() if _canonical(k) not in ("methods", "modalities")}
    _split(f"{spec.origin}: pipeline (shared settings, --set)", shared)
    # the upstream's trial-level fields: the shared section's (its `lora` also trains the vanilla model), never
    # a trial's own; no methods, so no method or train args
    base = _config({k: v for k, v in shared.items() if k in TRIAL_FIELDS and k not in ("method_args", "train_args")})
    trials: dict[str, Trial] = {}
    for where, combo in _combinations(spec):
        methods, modalities = combo["methods"], combo["modalities"]
        if not methods or not modalities or "," in flag_text(modalities):
            raise ValueError(f"{where}: a trial needs one method and one modality, got {methods!r} / {modalities!r}")
        try:
            names = expand_methods(tuple(flag_text(methods).split(",")))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        for method in names:
            trial = _trial(spec, where, shared, base, {**combo, "methods": method})
            trials.setdefault(trial.id, trial)
    if not trials:
        raise ValueError(f"{spec.origin}: the sweep has no trials (give a grid or a trials list)")
    return list(trials.values())


def _config(flags: dict) -> PipelineConfig:
    """A :class:`PipelineConfig` from settings typed as the pipeline's flags are (lists or comma-separated text
    for tuple fields; ``null`` for an optional one).

    Raises:
        ValueError: a value of the wrong type (names the setting).
    """
    hints = typing.get_type_hints(PipelineConfig)
    values = {}
    for key, value in flags.items():
        if isinstance(PIPELINE_FIELDS[key].default, tuple):
            values[key] = tuple(x for x in flag_text(value).split(",") if x)
        elif value is None:
            values[key] = None
        else:
            kind = field_type(hints[key])
            try:
                values[key] = typed(flag_text(value), kind)
            except ValueError:
                raise ValueError(f"{key}: {value!r} is not a {kind.__name__}") from None
    return PipelineConfig(**values)


def _trial(spec: SweepSpec, where: str, shared: dict, base: PipelineConfig, combo: dict) -> Trial:
    """One trial from a combination: ``shared`` (the ``pipeline`` section), ``base`` (its trial-level fields, for
    the upstream).

    Raises:
        ValueError: see :func:`expand`.
    """
    method = combo["methods"]
    combo = _for_method(combo, method)
    flags, method_args, train_args = _split(where, _for_method({**shared, **combo}, method))
    try:
        cfg = _config(flags)
        # a shared --method_args may name several methods: each trial keeps its own method's entries
        own = [entry for _, entry in parse_method_args(cfg.method_args).get(method, {}).values()]
        extra = dict(method_args=",".join([*own, *method_args]),
                     train_args=",".join(filter(None, [cfg.train_args, *train_args])))
        cfg = dataclasses.replace(cfg, **extra)
        if cfg.text_jsonl:  # the pipeline is text-only on JSON Lines text
            cfg = dataclasses.replace(cfg, modalities=("text-only",))
        if cfg.modalities[0] not in MODALITIES:
            raise ValueError(f"--modalities must be one of {', '.join(MODALITIES)}, got {cfg.modalities[0]!r}")
        cfg = check_config(cfg)
        # the shared fine-tuning's LoRA setting is the upstream's (the shared section's `lora` unless
        # `vanilla_lora` is given); a trial's own `lora` is its unlearning's
        cfg = dataclasses.replace(cfg, vanilla_lora=base.lora if cfg.vanilla_lora is None else cfg.vanilla_lora)
    except ValueError as err:
        raise ValueError(f"{where} ({flag_text(combo['methods'])}, {flag_text(combo['modalities'])}): {err}") from None
    upstream = dataclasses.replace(cfg, methods=(), method_args="", train_args="",
                                   **{f: getattr(base, f) for f in TRIAL_FIELDS if f not in (
                                       "methods", "method_args", "train_args")})
    upstream_id = _digest({k: v for k, v in dataclasses.asdict(upstream).items() if k != "out_dir"})[:10]
    own = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "out_dir"}
    trial_id = f"{cfg.methods[0]}-{cfg.modalities[0]}-{_digest(own)[:8]}"
    out = Path(spec.out_dir).resolve()
    return Trial(id=trial_id, settings=dict(sorted(combo.items())),
                 config=dataclasses.replace(cfg, out_dir=str(out / "trials" / trial_id)),
                 upstream=dataclasses.replace(upstream, out_dir=str(out / "upstream" / upstream_id)),
                 upstream_id=upstream_id)
