"""mllmu-sweep on local Ray (2 workers): a 2 x 2 grid killed midway and resumed, each trial finished exactly
once, a failing trial recorded while the others go on, and the result table equal to the trials' results JSONs."""

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mllmu_tasks.mini.generator import generate_benchmark, write_hub_layout

KINDS = {"cls": "acc", "gen": "rougeL", "cloze": "cloze_acc"}


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    bench = write_hub_layout(generate_benchmark(num_profiles=12, num_celebrities=2, seed=5), root / "bench")
    path = root / "sweep.yaml"
    path.write_text(f"""out_dir: {root / 'out'}
pipeline: {{source: {bench}, size: test, pretrain_epochs: 1, vanilla_epochs: 1, unlearn_epochs: 1, forget_ratio: 15,
            score_limit: 2, score_batch_size: 16, checkpoint_steps: 5, modality: text-only, relearn_steps: 2}}
grid:
  method: [ga, grad_diff]
  unlearn_lr: [1.0e-3, 2.0e-3]
trials:
  - {{method: ga, unlearn_lr: 1.0e+30, unlearn_epochs: 4}}   # diverges: a non-finite loss
resources: {{cpus_per_trial: 1}}
""")
    return path, root / "out"


def sweep(path, wait=True):
    cmd = [sys.executable, "-m", "unlearners.sweep.cli", "--config", str(path), "--num_cpus", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if wait:
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output[-4000:]
        return output
    return proc


def _process(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def attempts(folder):
    return [json.loads(line) for line in (folder / "attempts.jsonl").read_text().splitlines()]


def records(out):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "trials").glob("*/trial.json")}


@pytest.fixture(scope="module")
def resumed(sweep_file):
    path, out = sweep_file
    proc = sweep(path, wait=False)
    deadline = time.time() + 600
    while time.time() < deadline and not records(out) and proc.poll() is None:
        time.sleep(0.2)
    # the machine "dies": the driver and every process of its local Ray (raylet, workers), wherever their group
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    psutil.wait_procs([p for p in map(_process, family) if p is not None], timeout=30)
    before = records(out)
    assert 1 <= len(before) < 5, f"the kill should land between the first and the last trial: {len(before)} " \
                                 f"finished; the sweep printed:\n{proc.stdout.read()[-3000:]}"
    output = sweep(path)
    return out, before, output


def test_every_trial_finished_exactly_once_across_the_kill(resumed):
    out, before, output = resumed
    finals = records(out)
    assert len(finals) == 5
    for trial, rec in finals.items():
        log = attempts(out / "trials" / trial)
        starts, ends = [a for a in log if "start" in a], [a["end"] for a in log if "end" in a]
        if trial in before:
            # finished before the kill (trial.json is the commit; the kill may land before its end line): not
            # started again, its record untouched
            assert len(starts) == 1 and ends in ([], [rec["status"]]) and before[trial] == rec, trial
        else:
            # interrupted or never started: the attempt of the resumed run is the one that finished
            assert ends == [rec["status"]] and log[-1] == {"end": rec["status"], "pid": log[-2]["pid"]}, trial
    assert f"{5 - len(before)} to run" in output
    # the shared upstream (one vanilla model for all five) trained once, before the kill
    [upstream] = (out / "upstream").iterdir()
    assert (upstream / "log.txt").read_text().count("[vanilla] running") == 1
    # a third run has nothing to do
    assert "5 finished before, 0 to run" in sweep(out.parent / "sweep.yaml")


def test_a_diverging_trial_is_recorded_and_the_others_finish(resumed):
    out, _, _ = resumed
    finals = records(out)
    failed = [r for r in finals.values() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["settings"]["unlearn_lr"] == 1e30
    assert failed[0]["error"].startswith("NonFiniteLossError: step ")
    assert sorted(r["status"] for r in finals.values()) == ["done"] * 4 + ["failed"]
    # the failed trial's training checkpoints, if any, are kept (nothing deleted), its model never written
    assert not (Path(failed[0]["out_dir"]) / "unlearn" / "ga-text-only" / "config.json").exists()


def by_hand(results, sets):
    """The mean of the sets' headline metrics, read straight from an lm-eval results JSON."""
    values = [results["results"][task][f"{KINDS[task.split('_')[2]]},none"] for task in results["results"]
              if task.count("_") == 3 and task.split("_")[1] in sets]
    return sum(values) / len(values)


def test_the_result_table_is_the_trials_results_jsons(resumed):
    out, _, _ = resumed
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    done = {t: r for t, r in records(out).items() if r["status"] == "done"}
    vanilla = json.loads((out / "trials" / next(iter(done)) / "results" / "vanilla.json").read_text())
    for trial, rec in done.items():
        results = json.loads((out / "trials" / trial / "results" / f"unlearn_{rec['method']}-text-only.json").read_text())
        mine = {r["metric"]: r for r in rows if r["trial"] == trial}
        assert float(mine["forget_efficacy"]["value"]) == pytest.approx(by_hand(results, ("forget",)), abs=1e-12)
        assert float(mine["model_utility"]["value"]) == pytest.approx(by_hand(results, ("retain", "celebrity")),
                                                                      abs=1e-12)
        assert float(mine["vanilla.forget_efficacy"]["value"]) == pytest.approx(by_hand(vanilla, ("forget",)))
        for task, values in results["results"].items():
            if task.count("_") == 3:
                _, s, k, m = task.split("_")
                assert float(mine[f"{s}_{k}_{m}.{KINDS[k]}"]["value"]) == values[f"{KINDS[k]},none"]
        low, high = float(mine["model_utility"]["ci_low"]), float(mine["model_utility"]["ci_high"])
        assert low <= float(mine["model_utility"]["value"]) + 1e-9 and high >= low
        retrained = json.loads((out / "trials" / trial / "audit" / "retrained.json").read_text())
        own = json.loads((out / "trials" / trial / "audit" / f"unlearn_{rec['method']}-text-only.json").read_text())
        for modality in own:
            base, mia = retrained[modality]["auc"]["min_k"]["auc"], own[modality]["auc"]["min_k"]["auc"]
            assert float(mine[f"privleak.{modality}"]["value"]) == pytest.approx(100 * (mia - base) / base)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["metric"] == "error"
    table = (out / "results.md").read_text()
    assert all(f"| {t} |" in table for t in records(out))
    best = json.loads((out / "best.json").read_text())
    assert set(best) == {"ga", "grad_diff"}
    assert (out / "pareto.png").stat().st_size > 10_000
