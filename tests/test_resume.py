"""Nothing lost: checkpoints survive a killed or failed run, --resume_from_checkpoint continues exactly (issue 13)."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from unlearners import api
from unlearners.checkpoint import recover_publish, staging_dir, trainer_checkpoints
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
from unlearners.trainer import UnlearnTrainer

SETTINGS = dict(use_cpu=True, max_steps=6, learning_rate=1e-2, seed=0, disable_tqdm=True, logging_steps=1,
                per_device_train_batch_size=4, save_strategy="steps", save_steps=3)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("resume-base"), size="test")


def run(base, out, lora=True, **kw):
    return api.run("grad_diff", ModelArguments(model=str(base), lora=lora), DataArguments(source="mini", forget_ratio=10),
                   UnlearnTrainingArguments(output_dir=str(out), **{**SETTINGS, **kw}))


KILLED_RUN = """
import os, signal
from unlearners import api
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
from unlearners.trainer import UnlearnTrainer

save = UnlearnTrainer._save_checkpoint
def save_then_die(self, *args, **kwargs):
    save(self, *args, **kwargs)
    if self.state.global_step == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 right after the first checkpoint
UnlearnTrainer._save_checkpoint = save_then_die
api.run("grad_diff", ModelArguments(model={base!r}, lora={lora!r}), DataArguments(source="mini", forget_ratio=10),
        UnlearnTrainingArguments(output_dir={out!r}, **{settings!r}))
"""


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_resume_after_kill_9_ends_with_the_uninterrupted_weights(base, tmp_path, monkeypatch, lora):
    """Full fine-tuning too: its checkpoints hold hub-layout names, which the Trainer's own loader would skip
    (strict=False), resuming silently from the starting weights."""
    whole = run(base, tmp_path / "whole", lora=lora)
    out = tmp_path / "killed"
    code = textwrap.dedent(KILLED_RUN).format(base=str(base), out=str(out), settings=SETTINGS, lora=lora)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not out.exists() and [p.name for p in trainer_checkpoints(out)] == ["checkpoint-3"]
    # without saying what to do with them, a new run refuses to wipe the checkpoints
    with pytest.raises(FileExistsError, match="--resume_from_checkpoint to continue it, or --overwrite"):
        run(base, out, lora=lora)
    steps = []
    compute = UnlearnTrainer.compute_loss
    monkeypatch.setattr(UnlearnTrainer, "compute_loss",
                        lambda self, *a, **k: steps.append(self.state.global_step) or compute(self, *a, **k))
    resumed = run(base, out, lora=lora, resume_from_checkpoint="last")
    assert steps == [3, 4, 5]  # continued at the saved step: steps 4-6 only
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    assert not staging_dir(out).exists()  # published: the checkpoints go with the staging folder


def test_a_failed_run_keeps_its_checkpoints(base, tmp_path, monkeypatch):
    from unlearners.trainer import NonFiniteLossError

    compute = UnlearnTrainer.compute_loss

    def nan_at_step_4(self, *args, **kwargs):
        loss = compute(self, *args, **kwargs)
        return loss * float("nan") if self.state.global_step == 4 else loss

    monkeypatch.setattr(UnlearnTrainer, "compute_loss", nan_at_step_4)
    out = tmp_path / "failed"
    with pytest.raises(NonFiniteLossError):
        run(base, out)
    assert not out.exists() and [p.name for p in trainer_checkpoints(out)] == ["checkpoint-3"]
    with pytest.raises(FileNotFoundError, match="not a Trainer checkpoint"):
        run(base, out, resume_from_checkpoint=str(tmp_path / "nowhere"))


def test_nothing_to_resume_and_an_interrupted_publish(base, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in .*--save_strategy steps"):
        run(base, tmp_path / "fresh", resume_from_checkpoint="last")
    # a publish that died between its two renames: the old output waits as .<name>.old
    out = tmp_path / "published"
    old = tmp_path / ".published.old"
    old.mkdir()
    (old / "model.safetensors").write_text("the previous model")
    assert recover_publish(out) and (out / "model.safetensors").read_text() == "the previous model"
    assert not old.exists() and not recover_publish(out)
