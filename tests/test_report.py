"""mllmu-report on two real lm-eval runs: values from the results JSON, intervals from an independent bootstrap."""

import csv
import io
import json

import numpy as np
import pytest

from mllmu_tasks import report
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from mllmu_tasks.report_cli import main as report_main

from test_suite_e2e import run_cli

TASKS = ["mllmu_forget_cls_img", "mllmu_retain_gen_txt", "mllmu_retain_cloze_img", "mllmu_celebrity_cls_txt"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    outs = []
    for seed in (0, 1):
        model = build_tiny_vlm(root / f"model{seed}", size="test", seed=seed)
        out = root / f"out{seed}"
        run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={model}", "--device", "cpu", "--tasks", *TASKS,
                 "--limit", "12", "--log_samples", "--metadata", json.dumps({"source": "mini"}),
                 "--output_path", str(out)], cwd=root)
        outs.append(out)
    return outs


def numpy_bootstrap_mean(values, n_boot, seed):
    """The percentile bootstrap written out: resample, average each resample, take the 2.5/97.5 percentiles."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = np.array([np.mean([values[j] for j in row]) for row in draws])
    return np.percentile(means, 2.5), np.percentile(means, 97.5), means


def test_report_numbers(two_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    report_main([str(two_runs[0]), str(two_runs[1]), "--names", "m0,m1", "--out", str(out), "--compare", "m0", "m1",
                 "--n_boot", "500", "--seed", "3"])
    printed = capsys.readouterr().out
    assert printed.strip() == (out / "report.md").read_text().strip()
    path0 = report.find_results(two_runs[0])
    results0, samples0 = report.load_results(path0), report.load_samples(path0)
    results1, samples1 = (report.load_results(report.find_results(two_runs[1])),
                          report.load_samples(report.find_results(two_runs[1])))
    rows = list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))
    assert len(rows) == 2 * len(TASKS)
    for row in rows:
        results, samples = (results0, samples0) if row["model"] == "m0" else (results1, samples1)
        task = f"mllmu_{row['set']}_{row['kind']}_{row['modality']}"
        assert float(row["value"]) == pytest.approx(results["results"][task][f"{row['metric']},none"])
        values = [s[row["metric"]] for s in sorted(samples[task].values(), key=lambda s: s["doc_id"])]
        assert float(row["value"]) == pytest.approx(np.mean(values))  # the JSON value is the mean of the samples
        low, high, _ = numpy_bootstrap_mean(values, 500, 3)
        assert float(row["ci_low"]) == pytest.approx(low) and float(row["ci_high"]) == pytest.approx(high)
        assert int(row["n"]) == len(values) == min(12, len(samples[task]))
    # the paired comparison on the generation task, recomputed
    # (paired by question: profile ID, position, text; not by lm-eval's doc_id)
    a = {report.question_key(s["doc"]): s["rougeL"] for s in samples0["mllmu_retain_gen_txt"].values()}
    b = {report.question_key(s["doc"]): s["rougeL"] for s in samples1["mllmu_retain_gen_txt"].values()}
    ids = sorted(a)
    diffs = np.array([a[i] - b[i] for i in ids])
    _, _, boot = numpy_bootstrap_mean(list(diffs), 500, 3)
    p = (1 + np.sum(np.abs(boot - diffs.mean()) >= abs(diffs.mean()))) / 501
    line = next(line for line in printed.splitlines() if line.startswith("| mllmu_retain_gen_txt | rougeL"))
    assert f"{diffs.mean():+.3f}" in line and line.rstrip(" |").endswith(f"{p:.3f}")
    tex = (out / "table.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "m0 &" in tex and tex.count("\\\\") == 3
    assert (out / "forget_vs_retain.png").read_bytes()[:4] == b"\x89PNG"


def test_paired_bootstrap_detects_a_real_difference():
    a = {i: 1.0 for i in range(40)}
    b = {i: 0.0 if i < 30 else 1.0 for i in range(40)}
    result = report.paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert result["diff"] == pytest.approx(0.75) and result["p"] < 0.01 and result["low"] > 0.5
    same = report.paired_bootstrap(a, a, n_boot=200, seed=0)
    assert same["diff"] == 0 and same["p"] == 1.0
    with pytest.raises(ValueError, match="share no question"):
        report.paired_bootstrap({0: 1.0}, {1: 1.0})


def _sample(doc_id, pid, index, question, score):
    return {"doc_id": doc_id, "doc": {"ID": pid, "item_index": index, "question": question}, "rougeL": score}


def test_comparison_pairs_questions_not_doc_ids():
    """Two runs whose doc_ids number different people's questions (e.g. other forget ratios) pair by question."""
    run_a = {"mllmu_forget_gen_txt": {0: _sample(0, "001", 0, "q1", 1.0), 1: _sample(1, "002", 0, "q2", 0.0),
                                      2: _sample(2, "003", 0, "q3", 1.0)}}
    run_b = {"mllmu_forget_gen_txt": {0: _sample(0, "002", 0, "q2", 0.0), 1: _sample(1, "003", 0, "q3", 1.0),
                                      2: _sample(2, "009", 0, "q9", 0.0)}}
    a = report.question_scores(run_a, "forget", "gen", "txt")
    b = report.question_scores(run_b, "forget", "gen", "txt")
    result = report.paired_bootstrap(a, b, n_boot=200, seed=0)
    # only 002 and 003 are shared, with equal scores: no difference (by doc_id it would pair 001 with 002: +1.0)
    assert result["n"] == 2 and result["diff"] == 0.0 and result["p"] == 1.0


def test_report_refuses_repeated_names_and_foreign_results(two_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        report_main([str(two_runs[0]), str(two_runs[1]), "--names", "m,m", "--out", str(tmp_path / "a")])
    assert err.value.code == 2 and "--names repeats ['m']" in capsys.readouterr().err
    foreign = tmp_path / "results_other.json"
    foreign.write_text(json.dumps({"results": {"hellaswag": {"acc,none": 0.5}}}))
    with pytest.raises(SystemExit) as err:
        report_main([str(foreign), "--out", str(tmp_path / "b")])
    assert err.value.code == 2 and "no MLLMU task results" in capsys.readouterr().err
    assert not (tmp_path / "b" / "report.md").exists()


def _forget_scores(values: dict[str, list[float]]) -> dict[str, dict[tuple, float]]:
    """Question scores ``{task: {question_key: value}}`` of the forget leaves, values listed per task."""
    return {task: {("00" + str(i), i, f"q{i}"): v for i, v in enumerate(vals)} for task, vals in values.items()}


def test_the_headline_section_follows_the_results(tmp_path):
    """Per kind: the mean over methods of (text-only - image+text) forget scores, questions of both modalities
    pooled, equals what the results JSONs' task means give (weighted by questions); the verdict follows the
    interval's sign, and the pipeline writes the section from the files scoring keeps."""
    import json as _json

    from unlearners.pipeline import PipelineConfig, modality_headline_lines
    from unlearners.scoring import question_scores_path

    # two methods; forget classification: text-only unlearning leaves more correct (image+text forgot more)
    runs = {("ga", "text-only"): {"mllmu_forget_cls_img": [1, 1, 0, 1], "mllmu_forget_cls_txt": [1, 1]},
            ("ga", "image+text"): {"mllmu_forget_cls_img": [0, 0, 0, 1], "mllmu_forget_cls_txt": [0, 1]},
            ("npo", "text-only"): {"mllmu_forget_cls_img": [1, 0, 1, 1], "mllmu_forget_cls_txt": [1, 1]},
            ("npo", "image+text"): {"mllmu_forget_cls_img": [0, 0, 1, 0], "mllmu_forget_cls_txt": [0, 0]}}
    pairs = {m: (_forget_scores(runs[(m, "text-only")]), _forget_scores(runs[(m, "image+text")]))
             for m in ("ga", "npo")}
    [row] = report.modality_headline(pairs)
    # the same figure from task means (what results JSONs hold), weighted by each task's question count
    means = {key: {t: sum(v) / len(v) for t, v in tasks.items()} for key, tasks in runs.items()}
    counts = {"mllmu_forget_cls_img": 4, "mllmu_forget_cls_txt": 2}
    expected = sum(counts[t] * (means[(m, "text-only")][t] - means[(m, "image+text")][t])
                   for m in ("ga", "npo") for t in counts) / (2 * sum(counts.values()))
    assert row["kind"] == "cls" and row["n"] == 6 and abs(row["diff"] - expected) < 1e-12 and expected > 0
    assert row["low"] > 0 and row["forgot_more"] == "image+text" and row["paper"] == "image+text" and row["agrees"]
    text = report.headline_markdown([row], ["ga", "npo"])
    assert f"| classification | acc | 6 | {expected:+.3f} |" in text and "holds for classification (1 of 1)" in text
    other = {**row, "kind": "gen", "metric": "rougeL", "agrees": False}
    assert "holds for classification and not for the rest (1 of 2)" in report.headline_markdown([row, other], ["ga"])
    assert "holds for no task kind (0 of 1)" in report.headline_markdown([other], ["ga"])

    out = tmp_path / "run"
    for (method, modality), tasks in runs.items():
        compact = {t: [[*k, v] for k, v in qs.items()] for t, qs in _forget_scores(tasks).items()}
        path = question_scores_path(out / "results" / f"unlearn_{method}-{modality}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_json.dumps(compact))
    [section] = modality_headline_lines(PipelineConfig(out_dir=str(out), methods=("ga", "npo", "kl_min")), out)
    assert section == text  # kl_min has no scores kept: left out, named nowhere


def test_compact_question_scores_from_samples():
    rows = [{"doc": {"ID": "001", "item_index": 2, "question": "Q?"}, "rougeL": 0.5, "acc": 1.0}]
    compact = report.compact_question_scores({"mllmu_forget_gen_img": rows, "mllmu": rows})
    assert compact == {"mllmu_forget_gen_img": [["001", 2, "Q?", 0.5]]}


def test_report_reads_a_pipeline_folder_and_names_a_bad_path(tmp_path, capsys):
    """``mllmu-report runs/pipeline`` (or its results/): vanilla then each unlearned model, not the identity check
    or the per-question files; a path with no results is one line, exit 2."""
    import json as _json

    from mllmu_tasks import report_cli

    results = tmp_path / "pipe" / "results"
    results.mkdir(parents=True)
    for name, acc in (("vanilla", 0.9), ("unlearn_ga-image+text", 0.2), ("identity", 0.3)):
        (results / f"{name}.json").write_text(_json.dumps({"results": {"mllmu_forget_cls_img": {"acc,none": acc}}}))
    (results / "unlearn_ga-image+text.questions.json").write_text("{}")
    assert [p.name for p in report.find_runs(tmp_path / "pipe")] == ["vanilla.json", "unlearn_ga-image+text.json"]
    assert report.find_runs(results) == report.find_runs(tmp_path / "pipe")
    report_cli.main([str(tmp_path / "pipe"), "--out", str(tmp_path / "out")])
    table = (tmp_path / "out" / "report.md").read_text()
    assert "| results/vanilla | 90.0 |" in table and "| results/unlearn_ga-image+text | 20.0 |" in table
    assert "identity" not in table
    with pytest.raises(SystemExit) as exit_info:
        report_cli.main([str(tmp_path / "nothing-here")])
    assert exit_info.value.code == 2
    assert "nothing-here: not a results JSON, an lm-eval --output_path folder" in capsys.readouterr().err
