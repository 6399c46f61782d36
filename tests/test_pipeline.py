"""The one-command pipeline at a very small size: outputs agree, and an interrupted run resumes."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mllmu_tasks import report
from mllmu_tasks.mini.generator import generate_benchmark, write_hub_layout

SMALL = ["--size", "test", "--pretrain_epochs", "1", "--vanilla_epochs", "1", "--unlearn_epochs", "1",
         "--methods", "ga", "--modalities", "text-only", "--forget_ratio", "15", "--score_limit", "2",
         "--score_batch_size", "16", "--checkpoint_steps", "5"]


@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    # 12 profiles: forget_15 has 2 (the identity check swaps their portraits)
    return str(write_hub_layout(generate_benchmark(num_profiles=12, num_celebrities=2, seed=5),
                                tmp_path_factory.mktemp("bench")))


#: Resume tests compare training and scoring stages only: no audit (the holdout profiles are still left out).
NO_AUDIT = ("--audit", "false")


def pipeline(out, source, wait=True, extra=()):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "unlearners.pipeline", "--out_dir", str(out), "--source", source, *SMALL, *extra]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def finished(small_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, pipeline(out, small_source)


def parse_markdown_table(text, first_header):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return rows


def test_report_agrees_with_results_json(finished):
    out, stdout = finished
    text = (out / "report.md").read_text()
    assert text in stdout  # the command prints the report
    results = {"vanilla": json.loads((out / "results" / "vanilla.json").read_text()),
               "ga (text-only)": json.loads((out / "results" / "unlearn_ga-text-only.json").read_text())}
    table = parse_markdown_table(text, "model")
    assert set(table) == set(results)
    # the embedded tiny model is scored with the paper's prompts zero-shot (it learned zero-shot formats only)
    assert "Scored with `mllmu-zs`" in text and not any(t.startswith("mllmu_") for t in results["vanilla"]["results"])
    for name, res in results.items():
        for s, k, m in report.COLUMNS:
            value = res["results"][f"mllmu-zs_{s}_{k}_{m}"][report.HEADLINE[k] + ",none"]
            shown = float(table[name][f"{s} {k} {m}"])
            assert shown == pytest.approx(value if k == "gen" else 100 * value, abs=0.051 if k != "gen" else 5e-4)
    summaries = parse_markdown_table(text[text.index("Set summaries"):], "model")
    for name, res in results.items():
        for s in ("forget", "test", "retain", "celebrity"):
            values = [res["results"][f"mllmu-zs_{s}_{k}_{m}"][f"{metric},none"]
                      for k, metric in (("cls", "acc"), ("gen", "rougeL"), ("cloze", "cloze_acc")) for m in ("img", "txt")]
            assert float(summaries[name][s]) == pytest.approx(sum(values) / 6, abs=5e-4)
    identity = json.loads((out / "results" / "identity.json").read_text())
    swapped = identity["results"]["mllmu-zs_forget_cls_img"]["acc,none"]
    own = results["vanilla"]["results"]["mllmu-zs_forget_cls_img"]["acc,none"]
    assert f"| mllmu-zs_forget_cls_img (acc) | {100 * own:.1f} % | {100 * swapped:.1f} % |" in text
    png = (out / "forget_vs_retain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) == {"base", "pretrain", "holdout", "vanilla", "retrained", "unlearn/ga-text-only",
                             "score/vanilla", "score/unlearn_ga-text-only", "identity", "audit/retrained",
                             "audit/vanilla", "audit/unlearn_ga-text-only", "relearn/ga-text-only",
                             "score/relearn_ga-text-only"}
    for line in ("[base] done in", "[vanilla] done in", "[unlearn/ga-text-only] done in"):
        assert line in stdout


def test_the_privacy_section_is_the_audit_jsons_compared_with_the_retrained_model(finished):
    from unlearners.audit.relearn import recovery_markdown
    from unlearners.audit.run import compare, privacy_markdown

    out, _ = finished
    text = (out / "report.md").read_text()
    audits = {name: json.loads((out / "audit" / f"{stem}.json").read_text()) for name, stem in
              (("retrained", "retrained"), ("vanilla", "vanilla"), ("ga (text-only)", "unlearn_ga-text-only"))}
    assert privacy_markdown({n: compare(a, audits["retrained"]) for n, a in audits.items()}) in text
    retrained = parse_markdown_table(text[text.index("### Privacy audit"):], "model")
    assert retrained["retrained"]["forget quality"] == "1"  # against itself
    relearning = json.loads((out / "audit" / "relearning.json").read_text())
    assert sorted(relearning["attack"] + relearning["evaluated"]) == ["009", "010"]  # forget_15 of the small bench
    assert recovery_markdown(relearning["models"], 10) in text
    holdout = json.loads((out / "data" / "holdout-mirror" / "holdout.json").read_text())["holdout"]
    vanilla_card = json.loads((out / "vanilla" / "unlearn_config.json").read_text())
    assert len(holdout) == 4 and not set(holdout) & set(relearning["attack"] + relearning["evaluated"])
    assert vanilla_card["source"].endswith("holdout-mirror")
    assert (out / "forget_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "forget_quality.png" in text


def test_mllmu_audit_gives_the_pipelines_privacy_rows(finished, small_source, tmp_path, capsys):
    from unlearners.audit.cli import main

    out, _ = finished
    main(["--checkpoints", str(out / "vanilla"), "--retrained", str(out / "retrained"), "--holdout",
          str(out / "data" / "holdout-mirror" / "holdout.json"), "--source", small_source, "--forget_ratio", "15",
          "--out", str(tmp_path / "audit")])
    report_rows = [line for line in (out / "report.md").read_text().splitlines() if line.startswith(("| vanilla | image+text |", "| vanilla | text-only |"))]
    printed = capsys.readouterr().out
    assert len(report_rows) == 2 and all(row in printed for row in report_rows)
    assert (tmp_path / "audit" / "privacy.md").read_text().strip() in printed
    with pytest.raises(SystemExit, match="are in forget_15"):
        main(["--checkpoints", str(out / "vanilla"), "--retrained", str(out / "retrained"), "--holdout", "009",
              "--source", small_source, "--forget_ratio", "15"])


def test_rerun_skips_everything(finished, small_source):
    out, _ = finished
    before = json.loads((out / "manifest.json").read_text())
    stdout = pipeline(out, small_source)
    assert stdout.count("unchanged, skipped") == len(before)
    assert json.loads((out / "manifest.json").read_text()) == before


def test_a_moved_run_folder_resumes_with_every_stage_skipped(finished, small_source, tmp_path):
    """Stage keys hold the data's hash and the source as given, not paths under --out_dir (the holdout copy
    lives there): a run folder moved or copied elsewhere, as mllmu-sweep's trials link theirs, is still done."""
    out, _ = finished
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    before = json.loads((moved / "manifest.json").read_text())
    stdout = pipeline(moved, small_source)
    assert stdout.count("unchanged, skipped") == len(before) and "running" not in stdout
    assert {k: v["key"] for k, v in json.loads((moved / "manifest.json").read_text()).items()} == \
        {k: v["key"] for k, v in before.items()}


def test_interrupted_run_resumes_to_the_same_result(finished, small_source, tmp_path):
    reference_out, _ = finished
    out = tmp_path / "interrupted"
    proc = pipeline(out, small_source, wait=False, extra=NO_AUDIT)
    manifest = out / "manifest.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and "vanilla" in json.loads(manifest.read_text()):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the pipeline ended before it could be interrupted"
    time.sleep(1.0)  # now inside the unlearning stage
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = json.loads(manifest.read_text())
    assert "vanilla" in done_before and "score/vanilla" not in done_before
    assert not (out / "unlearn" / "ga-text-only" / "model.safetensors").exists() or \
        "unlearn/ga-text-only" in done_before
    stdout = pipeline(out, small_source, extra=NO_AUDIT)
    for stage in done_before:
        assert f"[{stage}] unchanged, skipped" in stdout
    after = json.loads(manifest.read_text())
    for stage, entry in done_before.items():
        assert after[stage] == entry  # not redone
    for name in ("vanilla", "unlearn_ga-text-only", "identity"):
        a = json.loads((out / "results" / f"{name}.json").read_text())["results"]
        b = json.loads((reference_out / "results" / f"{name}.json").read_text())["results"]
        for task, metrics in b.items():
            for key, value in metrics.items():
                if isinstance(value, float) and "stderr" not in key:
                    assert a[task][key] == pytest.approx(value, abs=1e-9), (name, task, key)
    assert re.search(r"finished in \d+ s", stdout)


def test_released_protocol_pipeline(small_source, tmp_path):
    """--protocol released: vanilla on the ft_Data pairs alone, a retain-only NPO reference (the retrained model)
    from the pre-trained model, image+text unlearning only, every training stage recorded as released."""
    out = tmp_path / "released"
    # the last of a repeated flag wins: NPO, both modalities asked for, one question per task
    args = [*SMALL, "--methods", "npo", "--modalities", "image+text,text-only", "--score_limit", "1",
            "--protocol", "released", "--audit", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "unlearners.pipeline", "--out_dir", str(out), "--source",
                           small_source, *args], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"retrained", "unlearn/npo-image+text"} <= set(manifest) and "unlearn/npo-text-only" not in manifest
    assert not any(stage.startswith("audit/") for stage in manifest) and "[audit]" not in proc.stdout
    assert "image+text unlearning only" in proc.stdout
    for stage in ("vanilla", "retrained", "unlearn/npo-image+text"):
        card = json.loads((out / stage / "unlearn_config.json").read_text())
        assert card["protocol"] == "released", stage
    npo = json.loads((out / "unlearn" / "npo-image+text" / "unlearn_config.json").read_text())
    assert npo["reference_model"] == str(out / "retrained")
    reference = json.loads((out / "retrained" / "unlearn_config.json").read_text())
    assert reference["base_model"] == str(out / "pretrain") and reference["data"].startswith("retain profiles only")
    # scored with the paper protocol: forget_15 has 2 profiles, both LLaVA cloze demonstrations: no cloze score
    report_text = (out / "report.md").read_text()
    assert "Scored with `mllmu` (the paper protocol)" in report_text
    table = parse_markdown_table(report_text, "model")
    results = json.loads((out / "results" / "vanilla.json").read_text())["results"]
    for s in ("forget", "test"):
        for m in ("img", "txt"):
            assert table["vanilla"][f"{s} cloze {m}"] == "-" and results[f"mllmu_{s}_cloze_{m}"]["sample_len"] == 0
    assert table["vanilla"]["retain cloze img"] != "-"


def test_a_training_stage_killed_after_a_checkpoint_resumes_to_the_same_weights(finished, small_source, tmp_path):
    from safetensors.torch import load_file

    reference_out, _ = finished
    out = tmp_path / "killed"
    proc = pipeline(out, small_source, wait=False, extra=NO_AUDIT)
    checkpoint = out / ".vanilla.partial" / "trainer" / "checkpoint-5" / "trainer_state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the pipeline ended before its vanilla stage saved a checkpoint"
    time.sleep(0.3)  # let the checkpoint finish writing
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "vanilla" not in json.loads((out / "manifest.json").read_text())
    stdout = pipeline(out, small_source, extra=NO_AUDIT)
    assert "[vanilla] resuming from checkpoint-" in stdout
    a = load_file(reference_out / "vanilla" / "model.safetensors")
    b = load_file(out / "vanilla" / "model.safetensors")
    import torch
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (out / ".vanilla.key").exists() and not (out / ".vanilla.partial").exists()


#: SHA-256 of the default pipeline's first stage (``base``: the demo tiny VLM, seed 0, tokenizer trained on the
#: shipped mini benchmark): its tensors in name order, and its BPE vocabulary. The README's report starts here;
#: a change to the builder, the tokenizer training or the shipped data changes these. Update them on purpose,
#: together with the README's report (same on 1 and 2 threads, measured).
BASE_WEIGHTS_SHA256 = "e83b9ce9e4a0d5d65e34f94ef68702ffed59e9633c7ed37f762cec6bee620f47"
BASE_VOCAB_SHA256 = "018a24becba2f1256058ab52e1055b774e57a08e73180a1ff534ecaec94a8e45"


def test_the_first_stage_is_pinned(tmp_path):
    import hashlib

    from safetensors.torch import load_file

    from unlearners.pipeline import PipelineConfig, build_base

    build_base(PipelineConfig(out_dir=str(tmp_path)), tmp_path / "base")
    weights = load_file(str(tmp_path / "base" / "model.safetensors"))
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].contiguous().numpy().tobytes())
    vocab = json.loads((tmp_path / "base" / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(weights) == 64 and len(vocab) == 1300
    assert digest.hexdigest() == BASE_WEIGHTS_SHA256
    assert hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest() == BASE_VOCAB_SHA256


def test_method_args_reach_the_method_config_and_bad_ones_fail_first():
    from unlearners.pipeline import PipelineConfig, check_method_args, method_config

    cfg = PipelineConfig(methods=("npo", "grad_diff"), method_args="npo.retain_weight=3, npo.beta=0.2")
    assert (method_config(cfg, "npo").retain_weight, method_config(cfg, "npo").beta) == (3.0, 0.2)
    assert method_config(cfg, "grad_diff").retain_weight == 1.0  # its default: the entries name npo only
    for args, message in [("npo.gamma=1", "npo has no setting 'gamma'"), ("npo=3", "expected <method>.<field>"),
                          ("kl_min.kl_weight=2", "names kl_min, which --methods")]:
        with pytest.raises(ValueError, match=message):
            check_method_args(PipelineConfig(methods=("npo",), method_args=args))


def test_real_text_mode_names_people_cuts_profiles_and_reports_the_probe(tmp_path):
    from unlearners.pipeline import parse, run_pipeline

    people = [f"{i:03d}" for i in range(1, 13)]
    lines = []
    for i, pid in enumerate(people):
        name = f"Person{chr(65 + i)} Surname{chr(65 + i)}"
        pairs = [("What is the name of this person?", f"This person's name is {name}."),
                 ("Where was this person born?", f"This person was born in Town{i}."),
                 ("What is this person's job?", f"This person works as a job{i}.")]
        lines.append(json.dumps({"ID": pid, "metadata": [{"ID": pid, "Question": q, "Answer": a} for q, a in pairs]}))
    (tmp_path / "ft.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "splits.json").write_text(json.dumps({"forget_10": people[:2], "retain_90": people[2:]}))
    out = tmp_path / "run"
    cfg = parse(["--source", str(tmp_path / "ft.jsonl"), "--splits", str(tmp_path / "splits.json"), "--size", "test",
                 "--forget_ratio", "10", "--profiles", "10", "--vanilla_epochs", "1", "--unlearn_epochs", "1",
                 "--methods", "npo", "--method_args", "npo.retain_weight=2", "--probe_questions", "4",
                 "--checkpoint_steps", "0", "--out_dir", str(out)])
    text = run_pipeline(cfg, log=lambda line: None)
    named = [json.loads(line) for line in (out / "data" / "ft_qa.jsonl").read_text().splitlines()]
    # round(10 * 10 %) = 1 forget profile (the splits' first), then 9 retain profiles in file order
    assert [r["ID"] for r in named] == ["001"] + people[2:11]
    assert json.loads((out / "data" / "splits.json").read_text()) == {"forget_10": ["001"], "retain_90": people[2:11]}
    assert [p["Question"] for p in named[0]["metadata"]] == ["Where was PersonA SurnameA born?",
                                                             "What is PersonA SurnameA's job?"]
    card = json.loads((out / "unlearn" / "npo-text-only" / "unlearn_config.json").read_text())
    assert (card["retain_weight"], card["modality"]) == (2.0, "text-only")
    for name, stem in [("vanilla", "vanilla"), ("npo (text-only)", "unlearn_npo-text-only")]:
        scores = json.loads((out / "results" / f"{stem}.json").read_text())
        assert (scores["forget_questions"], scores["retain_questions"]) == (2, 4)  # 2 named pairs; --probe_questions
        assert f"| {name} | {scores['forget_rougeL']:.3f} | {scores['retain_rougeL']:.3f} |" in text
    # the audit: 4 retain profiles held out of every training stage; text-only, no multiple choice to score
    holdout = json.loads((out / "data" / "holdout" / "holdout.json").read_text())["holdout"]
    assert len(holdout) == 4 and set(holdout) <= set(people[2:11])
    trained = [json.loads(line)["ID"] for line in (out / "data" / "holdout" / "ft_qa.jsonl").read_text().splitlines()]
    assert trained == [i for i in ["001"] + people[2:11] if i not in holdout]
    audit = json.loads((out / "audit" / "vanilla.json").read_text())
    assert list(audit) == ["text-only"] and audit["text-only"]["truth_ratios"] is None
    assert [len(audit["text-only"][k]) for k in ("forget_scores", "holdout_scores")] == [2, 8]
    assert re.search(r"\| vanilla \| text-only \| .* \| n/a \|", text) and "| vanilla | image+text |" not in text
    assert not (out / "relearn").exists()
    from unlearners.audit.cli import main as audit_main

    audit_main(["--checkpoints", str(out / "vanilla"), "--retrained", str(out / "retrained"), "--holdout",
                str(out / "data" / "holdout" / "holdout.json"), "--source", str(out / "data" / "ft_qa.jsonl"),
                "--splits", str(out / "data" / "splits.json"), "--forget_ratio", "10", "--out", str(tmp_path / "a")])
    row = next(line for line in text.splitlines() if line.startswith("| vanilla | text-only |"))
    assert row in (tmp_path / "a" / "privacy.md").read_text()


def test_methods_all_is_every_unlearning_method():
    from unlearners.methods import METHODS
    from unlearners.pipeline import expand_methods

    every = expand_methods(("all",))
    assert every == tuple(m for m in METHODS if m != "finetune") and len(every) == 13
    assert expand_methods(("npo", "all"))[0] == "npo" and len(expand_methods(("npo", "all"))) == 13
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        expand_methods(("ga", "nope"))


def test_data_hash_follows_the_files_not_the_folder(small_source, tmp_path):
    import shutil

    from unlearners.pipeline import PipelineConfig, data_hash

    copy = shutil.copytree(small_source, tmp_path / "elsewhere")
    assert data_hash(PipelineConfig(source=str(copy))) == data_hash(PipelineConfig(source=small_source))
    changed = next(copy.glob("forget_15/*.parquet"))
    changed.write_bytes(changed.read_bytes() + b"\0")
    assert data_hash(PipelineConfig(source=str(copy))) != data_hash(PipelineConfig(source=small_source))


def test_bad_settings_are_one_line_before_anything_is_written(tmp_path, capsys):
    from unlearners.pipeline import main

    for args, message in [(["--methods", "nope"], "unknown method 'nope'"),
                          (["--method_args", "npo.gamma=1"], "npo has no setting 'gamma'"),
                          (["--profiles", "5"], "--profiles cuts a JSON Lines source"),
                          (["--suite", "zs"], "--suite must be auto"),
                          (["--unlearn_lr", "0"], "--unlearn_lr must be > 0, got 0"),
                          (["--train_lr", "-0.002"], "--train_lr must be > 0, got -0.002"),
                          (["--vanilla_epochs", "0"], "--vanilla_epochs must be > 0, got 0"),
                          (["--unlearn_batch_size", "0"], "--unlearn_batch_size must be > 0, got 0"),
                          (["--score_limit", "0"], "--score_limit must be > 0, got 0"),
                          (["--holdout_profiles", "-1"], "--holdout_profiles must be >= 0, got -1")]:
        out = tmp_path / "never"
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out_dir", str(out)])
        assert str(exit_info.value).startswith("mllmu-pipeline: error: ") and message in str(exit_info.value)
        assert "\n" not in str(exit_info.value) and not out.exists()


def test_a_changed_training_setting_changes_its_stages_key(tmp_path, monkeypatch):
    """Every setting a fine-tuning or unlearning stage trains with is in its key, so a rerun with it changed
    trains again instead of reusing the old weights (a changed --base_model once reused the old vanilla model)."""
    from unlearners.pipeline import Manifest, PipelineConfig, parse, run_pipeline

    class Stop(Exception):
        pass

    def keys(**settings):
        seen = {}

        def record(self, stage, output, stage_settings, upstream, work):
            seen[stage] = self.key(stage, stage_settings, upstream)
            self.entries[stage] = {"key": seen[stage]}
            if stage.startswith("unlearn/"):
                raise Stop
            return output

        monkeypatch.setattr(Manifest, "run", record)
        cfg = PipelineConfig(out_dir=str(tmp_path / "run"), size="test", holdout_profiles=0, audit=False,
                             methods=("ga",), modalities=("text-only",), **settings)
        with pytest.raises(Stop):
            run_pipeline(cfg, log=lambda line: None)
        return seen

    default = keys()
    assert set(default) == {"base", "pretrain", "vanilla", "unlearn/ga-text-only"}
    for change, stages in [({"base_model": "/models/a"}, {"vanilla", "unlearn/ga-text-only"}),
                           ({"train_batch_size": 16}, {"pretrain", "vanilla", "unlearn/ga-text-only"}),
                           ({"vanilla_lora": True}, {"pretrain", "vanilla", "unlearn/ga-text-only"}),
                           ({"unlearn_batch_size": 4}, {"unlearn/ga-text-only"}),
                           ({"lora": True, "vanilla_lora": False}, {"unlearn/ga-text-only"})]:
        changed = keys(**change)
        assert {s for s in changed if changed[s] != default.get(s)} == stages, change
    assert keys(base_model="/models/a") != keys(base_model="/models/b")
    # --lora alone also trains the vanilla model with LoRA; --vanilla_lora parses as a bool (false is False)
    assert keys(lora=True)["vanilla"] == keys(vanilla_lora=True, lora=True)["vanilla"] != default["vanilla"]
    assert parse(["--vanilla_lora", "false"]).vanilla_lora is False and parse([]).vanilla_lora is None
    assert parse(["--lora", "YES", "--audit", "0"]).lora is True and parse(["--audit", "0"]).audit is False


@pytest.mark.parametrize("flag", ["--vanilla_lora", "--lora", "--audit"])
def test_a_misspelled_bool_flag_is_refused_not_read_as_false(flag, capsys):
    from unlearners.pipeline import PipelineConfig, parse, train_overrides

    with pytest.raises(SystemExit) as exit_info:
        parse([flag, "ture"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"mllmu-pipeline: error: argument {flag}: 'ture' is not a bool (true/false, yes/no, 1/0)"
    with pytest.raises(ValueError, match=r"--train_args entry 'bf16=maybe': 'maybe' is not a bool"):
        train_overrides(PipelineConfig(train_args="bf16=maybe"))
    assert PipelineConfig(lora=True, vanilla_lora=False).finetune_lora is False
