"""Two processes on CPU (gloo) follow one process exactly.

The processes are started with ``accelerate launch --multi_gpu --num_processes 2`` on a machine without
GPUs (accelerate's ``--cpu`` launcher starts only one process unless MPI is installed); the trainer
then asks accelerate for CPU (gloo) data parallelism. ``torchrun --nproc_per_node 2`` works the same.

With global batch B, each of P processes trains on B / P samples; because every random draw is made
from per-sample seeds of (train.seed, step, global sample index), both runs see the same samples with
the same noise, and their per-step losses agree up to float reduction order.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_train import TINY_MODEL
from vidiff.config import load_config
from vidiff.train.checkpoint import latest_checkpoint, load_state
from vidiff.train.logging import read_metrics
from vidiff.train.loop import train as train_loop

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")

OVERRIDES = [
    "train.steps=6",
    "train.batch_size=4",
    "train.lr=0.002",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.ckpt_every=100",
    *TINY_MODEL,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(mode: str) -> list[str]:
    """``accelerate launch MODE`` with 2 processes on this machine, fp32, no dynamo, a free port."""
    return [
        str(ACCELERATE), "launch", mode, "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
    ]  # fmt: skip


def _run(cmd: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


@pytest.mark.skipif(not ACCELERATE.exists(), reason="needs accelerate's launcher")
def test_two_processes_match_one(tmp_path):
    threads = torch.get_num_threads()
    config = ROOT / "configs" / "shapes-unet-tiny.yaml"
    train = ["-m", "vidiff.cli", "train", str(config)]
    one = [*OVERRIDES, f"train.out_dir={tmp_path / 'one'}"]
    two = [*OVERRIDES, f"train.out_dir={tmp_path / 'two'}"]
    # the one-process reference runs here (saves an interpreter start); the same code path as the CLI
    torch.set_num_threads(1)
    try:
        train_loop(load_config(config, one), progress=False)
    finally:
        torch.set_num_threads(threads)
    _run([*_launch("--multi_gpu"), *train, *two], tmp_path)
    # the second run really had two processes (each wrote its RNG state into the final checkpoint)
    assert load_state(tmp_path / "two")["num_processes"] == 2
    assert (latest_checkpoint(tmp_path / "two") / "rng-1.pt").is_file()
    assert load_state(tmp_path / "one")["num_processes"] == 1
    a = read_metrics(tmp_path / "one" / "metrics.jsonl")
    b = read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 7))
    la, lb = [r["loss"] for r in a], [r["loss"] for r in b]
    # Same samples, same noise: equal up to float reduction order (differences ~1e-7 relative).
    print("losses 1 process:", la, "\nlosses 2 processes:", lb)
    for x, y in zip(la, lb):
        assert abs(x - y) <= 1e-4 * abs(x), (la, lb)
    assert len(set(la)) > 1  # the model trains: the losses are not all equal
    ga, gb = [r["grad_norm"] for r in a], [r["grad_norm"] for r in b]
    for x, y in zip(ga, gb):
        assert abs(x - y) <= 1e-3 * abs(x), (ga, gb)


@pytest.mark.skipif(not ACCELERATE.exists(), reason="needs accelerate's launcher")
def test_fsdp_launch_is_refused_with_one_line(tmp_path):
    """`accelerate launch --use_fsdp` is refused, not run as something else: on CPU accelerate would
    silently fall back to DDP, and on GPU checkpoints and the EMA would see only shards."""
    config = ROOT / "configs" / "shapes-unet-tiny.yaml"
    cmd = [
        *_launch("--use_fsdp"),
        *["-m", "vidiff.cli", "train", str(config)],
        *OVERRIDES,
        f"train.out_dir={tmp_path / 'run'}",
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vidiff: error:")]
    assert errors and "FSDP is not supported" in errors[0], proc.stderr[-3000:]
    assert "vidiff/train/loop.py" not in proc.stderr  # a user error, not a traceback of vidiff
    assert latest_checkpoint(tmp_path / "run") is None
