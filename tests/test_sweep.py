"""mllmu-sweep without Ray: the grid's expansion and checks, the shared upstream's links, the result rules.

The Ray run itself (2 x 2 grid, killed midway and resumed) is in tests_distributed/test_sweep_ray.py.
"""

import json

import numpy as np
import pytest

from mllmu_tasks import report
from unlearners.pipeline import PipelineConfig, _train_args, train_overrides
from unlearners.sweep import results as table
from unlearners.sweep.cli import build_spec, main
from unlearners.sweep.runner import link_upstream
from unlearners.sweep.spec import SweepSpec, expand, load_spec


def spec(pipeline=None, **kw):
    return SweepSpec(out_dir="/tmp/unused-sweep", pipeline={"size": "test", "forget_ratio": 15, **(pipeline or {})},
                     **kw)


def test_the_grid_is_every_combination_and_a_methods_setting_reaches_only_its_trials():
    trials = expand(spec(grid={"method": ["ga", "npo"], "modality": "text-only", "unlearn_lr": [1e-3, "2e-3"],
                               "npo.beta": [0.1, 0.2], "train.weight_decay": [0.01]}))
    # ga: 2 learning rates (the npo.beta axis does not multiply it); npo: 2 x 2
    assert sorted((t.method, t.config.unlearn_lr, t.config.method_args) for t in trials) == [
        ("ga", 0.001, ""), ("ga", 0.002, ""),
        ("npo", 0.001, "npo.beta=0.1"), ("npo", 0.001, "npo.beta=0.2"),
        ("npo", 0.002, "npo.beta=0.1"), ("npo", 0.002, "npo.beta=0.2")]
    assert {t.config.train_args for t in trials} == {"weight_decay=0.01"}
    assert {t.modality for t in trials} == {"text-only"}
    assert len({t.id for t in trials}) == 6 and all(t.id.startswith(f"{t.method}-text-only-") for t in trials)
    # the trials' own settings do not touch their upstream: one vanilla model for all six
    assert len({t.upstream_id for t in trials}) == 1
    up = trials[0].upstream
    assert up.methods == () and up.unlearn_lr == PipelineConfig().unlearn_lr and up.forget_ratio == 15
    assert up.method_args == up.train_args == "" and up.lora is False
    # a shared `lora: true` trains the vanilla model with LoRA too (as the pipeline does); a lora axis does not
    shared = expand(SweepSpec(out_dir="/tmp/unused-sweep", pipeline={"size": "test", "lora": True},
                              grid={"method": "ga", "modality": "text-only", "unlearn_lr": [1e-3, 2e-3]}))
    assert {t.upstream.lora for t in shared} == {True} and len({t.upstream_id for t in shared}) == 1
    axis = expand(spec(grid={"method": "ga", "modality": "text-only", "lora": [False, True]}))
    assert {t.config.lora for t in axis} == {False, True} and {t.upstream.lora for t in axis} == {False}
    # ... and the trial's own pipeline fine-tunes (so keys) its vanilla model as the upstream did
    assert {t.config.finetune_lora for t in axis} == {t.upstream.finetune_lora for t in axis} == {False}
    assert {t.config.finetune_lora for t in shared} == {True}
    assert trials[0].config.out_dir.endswith(f"trials/{trials[0].id}")


def test_a_shared_method_args_entry_reaches_only_its_methods_trials():
    trials = expand(SweepSpec(pipeline={"size": "test", "method_args": "npo.beta=0.3,grad_diff.retain_weight=2"},
                              grid={"method": ["ga", "npo", "grad_diff"], "modality": "text-only",
                                    "npo.retain_weight": 2}))
    assert {t.method: t.config.method_args for t in trials} == {
        "ga": "", "npo": "npo.beta=0.3,npo.retain_weight=2", "grad_diff": "grad_diff.retain_weight=2"}


def test_upstream_settings_make_their_own_vanilla_models_and_ids_are_stable():
    grid = {"method": "ga", "modality": ["image+text", "text-only"], "seed": [0, 1]}
    trials = expand(spec(grid=grid, trials=[{"method": "ga", "modality": "text-only", "seed": 0}]))
    assert len(trials) == 4  # the listed trial repeats a grid point
    assert len({t.upstream_id for t in trials}) == 2
    assert {t.upstream_id for t in trials if t.config.seed == 0} != {t.upstream_id for t in trials if t.config.seed == 1}
    assert [t.id for t in expand(spec(grid=grid))] == [t.id for t in trials]
    changed = expand(SweepSpec(out_dir="/tmp/unused-sweep", pipeline={"size": "test", "forget_ratio": 10}, grid=grid))
    assert not {t.id for t in changed} & {t.id for t in trials}


def test_method_all_and_the_pipelines_default_methods():
    from unlearners.methods import METHODS

    assert sorted({t.method for t in expand(spec(grid={"method": "all", "modality": "text-only"}))}) == \
        sorted(m for m in METHODS if m != "finetune")
    defaults = expand(spec())
    assert sorted((t.method, t.modality) for t in defaults) == sorted(
        (m, mod) for m in PipelineConfig().methods for mod in PipelineConfig().modalities)


@pytest.mark.parametrize("kw, message", [
    (dict(grid={"foo": [1]}), "grid: unknown setting 'foo'"),
    (dict(grid={"unlearn_lr": ["x"]}), "unlearn_lr: 'x' is not a float"),
    (dict(grid={"method": ["nope"]}), "grid: unknown method 'nope'"),
    (dict(grid={"method": "npo", "npo.gamma": [1]}), "npo has no setting 'gamma'"),
    (dict(grid={"method": "ga", "train.output_dir": ["x"]}), "--train_args entry 'output_dir=x': the pipeline sets it"),
    (dict(grid={"method": "ga", "modality": "both"}), "--modalities must be one of"),
    (dict(trials=[{"unlearn_lr": 1}]), "trials[0]: a trial needs one method and one modality"),
    (dict(trials=["ga"]), "trials[0]: expected a mapping"),
    # numbers the pipeline cannot train with, resources Ray cannot give, a rule that selects nothing sensible
    (dict(grid={"method": "ga", "unlearn_lr": [1e-3, -1]}), "grid (ga, image+text): --unlearn_lr must be > 0, got -1"),
    (dict(trials=[{"method": "npo", "modality": "text-only", "unlearn_epochs": 0}]),
     "trials[0] (npo, text-only): --unlearn_epochs must be > 0, got 0"),
    (dict(pipeline={"relearn_steps": -2}), "--relearn_steps must be >= 0, got -2"),
    (dict(pipeline={"out_dir": "x"}), "the sweep flags: pipeline (shared settings, --set): out_dir is the sweep's "
                                      "own folder, not a trial setting: give it as the file's top-level out_dir or "
                                      "--out_dir"),
    (dict(grid={"out_dir": ["x"]}), "the sweep flags: grid: out_dir is the sweep's own folder"),
    (dict(grid={"method": "ga", "lora": ["maybe"]}), "grid (ga, image+text): lora: 'maybe' is not a bool"),
    (dict(cpus_per_trial=0), "the sweep flags: resources: cpus_per_trial must be > 0, got 0"),
    (dict(cpus_per_upstream=-1), "resources: cpus_per_upstream must be > 0, got -1"),
    (dict(gpus_per_trial=-0.5), "resources: gpus_per_trial must be >= 0, got -0.5"),
    (dict(forget_share=2), "select: forget_share must be in (0, 1] (a share of the vanilla model's forget score), "
                           "got 2"),
    (dict(forget_share=0), "select: forget_share must be in (0, 1]"),
])
def test_bad_settings_are_one_line_naming_where(kw, message):
    with pytest.raises(ValueError) as err:
        expand(spec(**kw))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_yaml_file_and_flags(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text("out_dir: here\npipeline: {size: test}\ngrid:\n  method: [ga]\n  unlearn_lr: [1.0e-3]\n"
                    "resources: {cpus_per_trial: 2, cpus_per_upstream: 4}\nselect: {forget_share: 0.3}\n")
    loaded = load_spec(path)
    assert (loaded.out_dir, loaded.cpus_per_trial, loaded.cpus_per_upstream, loaded.forget_share,
            loaded.grid["unlearn_lr"]) == ("here", 2.0, 4.0, 0.3, [1e-3])
    import argparse

    args = argparse.Namespace(config=str(path), set=["forget_ratio=5"], axis=["seed=0,1"], out_dir=None,
                              cpus_per_trial=None, gpus_per_trial=1.0, cpus_per_upstream=None, forget_share=None)
    built = build_spec(args)
    assert built.pipeline == {"size": "test", "forget_ratio": "5"} and built.grid["seed"] == ["0", "1"]
    assert built.gpus_per_trial == 1.0 and {t.config.forget_ratio for t in expand(built)} == {5}
    broken = tmp_path / "broken.yaml"
    broken.write_text("grid:\n  method: [ga\n")
    with pytest.raises(ValueError) as err:
        load_spec(broken)
    assert str(err.value).startswith(f"{broken}: not valid YAML (line 3, column 1): ") and "\n" not in str(err.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("grids: {}\n")
    with pytest.raises(SystemExit) as err:
        main(["--config", str(bad)])
    assert str(err.value) == f"mllmu-sweep: error: {bad}: unknown section(s) ['grids'] (a sweep file has out_dir, " \
                             "pipeline, grid, trials, resources, select)"
    for text, message in (("", "the file is empty (a sweep file has out_dir, pipeline"),
                          ("# nothing but a comment\n", "the file is empty"),
                          ("resources: {cpus_per_trial: two}\n", "resources: cpus_per_trial: 'two' is not a number"),
                          ("select: 0.5\n", "select: unknown key(s) 0.5 (known: ['forget_share'])")):
        bad.write_text(text)
        with pytest.raises(ValueError) as err:
            load_spec(bad)
        assert str(err.value).startswith(f"{bad}: {message}"), str(err.value)
    bad.write_text("grid: {method: [ga]}\nresources: {cpus_per_trial: 0}\n")
    with pytest.raises(SystemExit) as err:  # before Ray: the check runs in expand
        main(["--config", str(bad)])
    assert str(err.value) == f"mllmu-sweep: error: {bad}: resources: cpus_per_trial must be > 0, got 0"


def test_train_args_reach_the_unlearning_stages_training_arguments(tmp_path):
    cfg = PipelineConfig(train_args="weight_decay=0.01, seed=3,gradient_accumulation_steps=2,lr_scheduler_type=linear")
    assert train_overrides(cfg) == {"weight_decay": 0.01, "seed": 3, "gradient_accumulation_steps": 2,
                                    "lr_scheduler_type": "linear"}
    args = _train_args(cfg, tmp_path / "x", 1, 1e-3, 8, extra=train_overrides(cfg))
    assert (args.weight_decay, args.seed, args.gradient_accumulation_steps, args.lr_scheduler_type.value) == \
        (0.01, 3, 2, "linear")
    for bad, message in (("foo=1", "expected <TrainingArguments field>=<value>"), ("weight_decay=x", "not a float"),
                         ("use_cpu=false", "the pipeline sets it")):
        with pytest.raises(ValueError, match=message):
            train_overrides(PipelineConfig(train_args=bad))


def test_a_trial_folder_links_its_upstream_and_writes_nothing_into_it(tmp_path):
    up, trial = tmp_path / "upstream", tmp_path / "trial"
    for folder in ("vanilla", "results", "audit", "data/holdout-mirror"):
        (up / folder).mkdir(parents=True)
    (up / "vanilla" / "config.json").write_text("{}")
    (up / "results" / "vanilla.json").write_text('{"v": 1}')
    (up / "data" / "named.jsonl").write_text("rewritten by every run\n")
    (up / "report.md").write_text("upstream report")
    (up / "manifest.json").write_text(json.dumps({"vanilla": {"key": "k1"}}))
    trial.mkdir()
    (trial / "manifest.json").write_text(json.dumps({"vanilla": {"key": "old"}, "unlearn/ga-text-only": {"key": "k2"}}))
    link_upstream(up, trial)
    assert (trial / "vanilla").is_symlink() and (trial / "results" / "vanilla.json").is_symlink()
    assert not (trial / "results").is_symlink() and (trial / "data" / "holdout-mirror").is_symlink()
    assert not (trial / "data" / "named.jsonl").exists() and not (trial / "report.md").exists()
    assert json.loads((trial / "manifest.json").read_text()) == {"vanilla": {"key": "k1"},
                                                                 "unlearn/ga-text-only": {"key": "k2"}}
    from unlearners.checkpoint import write_json_atomic

    write_json_atomic(trial / "results" / "vanilla.json", {"v": 2})  # the pipeline's writes replace the link
    assert json.loads((up / "results" / "vanilla.json").read_text()) == {"v": 1}
    link_upstream(up, trial)  # a resumed trial: idempotent
    assert json.loads((trial / "results" / "vanilla.json").read_text()) == {"v": 2}


def point(method, forget, utility, vanilla_forget=0.8):
    return {"method": method, "modality": "image+text", "forget": forget, "utility": utility,
            "vanilla_forget": vanilla_forget, "vanilla_utility": 0.9}


def test_pareto_front_and_the_best_configuration_rule_by_hand():
    points = {"a": point("ga", 0.1, 0.2), "b": point("ga", 0.3, 0.6), "c": point("ga", 0.35, 0.5),  # c: dominated by b
              "d": point("ga", 0.5, 0.8), "e": point("ga", 0.3, 0.6),  # e ties b: neither dominates
              "f": point("npo", 0.7, 0.9), "g": point("npo", 0.45, 0.4)}
    assert table.pareto_front({k: v for k, v in points.items() if v["method"] == "ga"}) == ["a", "b", "e", "d"]
    # forget <= 0.5 x 0.8 = 0.4: ga's candidates a, b, c, e; the highest utility is b/e (0.6): b (by ID)
    assert table.best_per_method(points, 0.5) == {"ga": "b", "npo": None}
    assert table.best_per_method(points, 0.6) == {"ga": "b", "npo": "g"}  # 0.48: d (0.5) and f (0.7) out
    assert table.best_per_method(points, 0.9) == {"ga": "d", "npo": "f"}  # 0.72: every trial qualifies


def test_set_score_and_its_interval_by_hand():
    results = {"results": {"mllmu_retain_cls_img": {"acc,none": 0.5}, "mllmu_retain_gen_txt": {"rougeL,none": 0.2},
                           "mllmu_celebrity_cloze_img": {"cloze_acc,none": 0.8},
                           "mllmu_forget_cls_img": {"acc,none": 0.1}}}
    assert report.set_score(results) == pytest.approx((0.5 + 0.2 + 0.8) / 3)
    assert report.set_score(results, ("forget",)) == 0.1 and report.set_score(results, ("test",)) is None
    values = [1.0, 0.0, 1.0, 1.0, 0.0]
    one = {"mllmu_retain_cls_img": {("1", i, "q"): v for i, v in enumerate(values)}}
    assert report.set_score_interval(one, n_boot=500, seed=3) == report.bootstrap_ci(values, 500, 3)
    constant = {**one, "mllmu_celebrity_gen_txt": {("2", 0, "q"): 0.4, ("2", 1, "q"): 0.4}}
    low, high = report.set_score_interval(constant, n_boot=500, seed=3)
    single = report.bootstrap_ci(values, 500, 3)  # the first task draws the same indices; the second is constant
    assert (low, high) == pytest.approx(((single[0] + 0.4) / 2, (single[1] + 0.4) / 2))
    assert report.set_score_interval({}, n_boot=10) is None
    assert np.isclose(report.set_score_interval({"mllmu_forget_cls_img": {("1", 0, "q"): 1.0}}, ("forget",))[0], 1.0)


def test_a_best_configuration_is_a_pipeline_command_that_parses_back():
    import dataclasses
    import shlex

    from unlearners.pipeline import parse
    from unlearners.sweep.runner import pipeline_command

    [trial] = expand(spec(grid={"method": "npo", "modality": "text-only", "unlearn_lr": [3e-4], "npo.beta": [0.2],
                                "lora": [True]}))
    command = pipeline_command(dataclasses.asdict(trial.config), "runs/table2-npo")
    assert command.startswith("mllmu-pipeline --out_dir runs/table2-npo ")
    assert "--unlearn_lr 0.0003" in command and "--lora true" in command and "--method_args npo.beta=0.2" in command
    parsed = parse(shlex.split(command)[1:])
    assert dataclasses.replace(parsed, out_dir=trial.config.out_dir) == trial.config


def test_json_lines_trials_report_the_generation_probe(tmp_path):
    """JSON Lines mode (real text): forget efficacy and utility are the probe's forget and retain ROUGE-L."""
    from unlearners.pipeline import results_json, unlearn_stage

    path = results_json(tmp_path, unlearn_stage("npo", "text-only"))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"forget_rougeL": 0.25, "retain_rougeL": 0.7, "forget_questions": 40,
                                "retain_questions": 200}))
    record = {"id": "npo-text-only-x", "method": "npo", "modality": "text-only", "settings": {"unlearn_lr": 1e-3},
              "status": "done", "out_dir": str(tmp_path), "vanilla": {"forget": 0.9, "utility": 0.8}, "privacy": None}
    rows = {r["metric"]: (r["value"], r["n"]) for r in table.trial_rows(record)}
    assert rows == {"forget_efficacy": (0.25, 40), "model_utility": (0.7, 200), "vanilla.forget_efficacy": (0.9, None),
                    "vanilla.model_utility": (0.8, None)}
    points = table.headline(table.trial_rows(record))
    assert points["npo-text-only-x"]["forget"] == 0.25 and table.best_per_method(points, 0.5) == {"npo": "npo-text-only-x"}
