"""``mllmu-unlearn`` under ``accelerate launch`` with two gloo processes agrees with one process at the same
global batch: the loss at every step and the saved weights, for a method without a reference model (GradDiff)
and one with (NPO), LoRA and full fine-tuning. FSDP and DeepSpeed launches on CPUs are refused (accelerate
would run them as plain data parallel); FSDP is compared the same way where two GPUs are present. A NaN loss on
one process stops both (one all-reduced flag), not only the one that saw it.

Tolerance (stated): the logged loss per step within 1e-5 absolute or relative (the larger; measured
2026-12-01: at most 8e-6 absolute, on losses of 0.002 to 6.4 that are differences of terms near 5); the weights'
update (saved minus starting weights) within 1e-4 relative L2 (measured: at most 6.3e-6). The two runs sum
the same per-example gradients in a different order (one batch of 4 vs two of 2 all-reduced), nothing more.
LoRA dropout is 0: each process draws its own dropout masks, which no global-batch equality survives.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mllmu_tasks import MINI_DATA_DIR
from mllmu_tasks.mini.tiny_vlm import benchmark_corpus, build_tiny_vlm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "accelerate"
STEPS = 3


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "tiny"
    build_tiny_vlm(out, size="test", texts=benchmark_corpus(MINI_DATA_DIR), seed=0)
    return out


def unlearn(base, out, method, lora, processes=1, config=None, extra=(), launch_extra=()):
    """One ``mllmu-unlearn`` run at a global batch of 4 (4 x 1 process or 2 x 2 processes)."""
    args = ["--method", method, "--model", str(base), "--source", "mini", "--forget_ratio", "10",
            "--max_steps", str(STEPS), "--learning_rate", "1e-3", "--logging_steps", "1", "--lora", str(lora).lower(),
            "--lora_dropout", "0", "--seed", "0", "--disable_tqdm", "true", "--output_dir", str(out),
            "--per_device_train_batch_size", str(4 // processes), *extra]
    launch = [sys.executable, "-m", "unlearners.cli"] if processes == 1 else \
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes",
         str(processes), "--main_process_port", str(free_port()), *launch_extra, "-m", "unlearners.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launch, *args], capture_output=True, text=True, env=env, timeout=600)


def free_port() -> int:
    """A free TCP port for the processes' rendezvous (not accelerate's fixed 29500, which a previous launch may
    still hold)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def losses(run):
    return [entry["loss"] for entry in json.loads((run / "log_history.json").read_text()) if "loss" in entry]


def assert_same_training(one, two, base):
    assert len(losses(one)) == STEPS
    assert losses(two) == pytest.approx(losses(one), rel=1e-5, abs=1e-5)
    start, w1, w2 = (load_file(str(p / "model.safetensors")) for p in (base, one, two))
    assert sorted(w1) == sorted(w2) and all(w1[k].shape == w2[k].shape for k in w1)
    d1 = torch.cat([(w1[k] - start[k]).flatten() for k in start])
    d2 = torch.cat([(w2[k] - start[k]).flatten() for k in start])
    assert d1.norm() > 0
    assert ((d1 - d2).norm() / d1.norm()).item() < 1e-4
    assert sorted(os.listdir(one)) == sorted(os.listdir(two))
    assert json.loads((two / "unlearn_config.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("method", ["grad_diff", "npo"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_two_gloo_processes_train_like_one(base, tmp_path, method, lora):
    one = unlearn(base, tmp_path / "one", method, lora, extra=["--use_cpu"])
    assert one.returncode == 0, one.stderr[-3000:]
    two = unlearn(base, tmp_path / "two", method, lora, 2, EXAMPLES / "cpu_2proc.yaml", ["--use_cpu"])
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", base)


def test_an_fsdp_launch_on_cpus_is_refused_not_run_unsharded(base, tmp_path):
    proc = unlearn(base, tmp_path / "out", "ga", False, 2, EXAMPLES / "fsdp_8gpu.yaml", ["--use_cpu"])
    assert proc.returncode != 0
    assert "mllmu-unlearn: error: the accelerate config asks for FSDP, but accelerate runs FSDP only on GPUs: here " \
           "the processes would train as MULTI_CPU" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="FSDP runs on GPUs only (accelerate 1.15): needs 2")
@pytest.mark.parametrize("method", ["grad_diff", "npo"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_fsdp_on_two_gpus_trains_like_one(base, tmp_path, method, lora):
    one = unlearn(base, tmp_path / "one", method, lora, extra=["--bf16", "false"])
    assert one.returncode == 0, one.stderr[-3000:]
    two = unlearn(base, tmp_path / "two", method, lora, 2, EXAMPLES / "fsdp_8gpu.yaml", ["--bf16", "false"],
                  ["--mixed_precision", "no"])  # fp32 like the one-process run
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", base)



CASES = [([1.5, 2.0], True), ([float("nan"), 2.0], False), ([1.5, float("inf")], False)]  # rank 0's, rank 1's


def _finite_on_rank(rank: int, port: int, results) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    from unlearners.trainer import finite_everywhere

    results.put((rank, [finite_everywhere(torch.tensor(losses[rank])) for losses, _ in CASES]))
    torch.distributed.destroy_process_group()


def test_a_non_finite_loss_on_one_process_stops_every_process():
    # a rank that raised alone would leave the other waiting in the gradients' all-reduce: both must see it
    context = torch.multiprocessing.get_context("spawn")
    results, port = context.SimpleQueue(), free_port()
    workers = [context.Process(target=_finite_on_rank, args=(rank, port, results)) for rank in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    expected = [finite for _, finite in CASES]
    assert sorted(results.get() for _ in workers) == [(0, expected), (1, expected)]
