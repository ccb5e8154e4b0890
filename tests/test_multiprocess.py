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
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

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


def _run(cmd: list[str], tmp_path: Path) -> str:
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
    return proc.stdout


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


FSDP_RUN = [
    "data.num_items=64",
    "train.batch_size=4",
    "train.lr=0.002",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.ckpt_every=2",
    "train.keep_last=3",
    "train.sample_every=0",
]


@pytest.mark.skipif(not ACCELERATE.exists(), reason="needs accelerate's launcher")
def test_fsdp_run_resumes_exactly_matches_ddp_and_exports(tmp_path):
    """`accelerate launch --use_fsdp` shards the micro U-Net over 2 gloo processes: resumed from its
    step-2 checkpoint, it ends bit-equal to the uninterrupted FSDP run and close to a DDP run (float
    reduction order); its checkpoints hold full tensors (the same files as DDP's) and export."""
    from tests.test_pipeline import micro_config
    from vidiff.cli import main
    from vidiff.config import to_dict
    from vidiff.pipeline import VideoPipeline

    config = tmp_path / "micro.yaml"
    config.write_text(yaml.safe_dump(to_dict(micro_config(*FSDP_RUN))))
    train = ["-m", "vidiff.cli", "train", str(config)]
    fsdp = _launch("--use_fsdp")
    # (train.sample_every: the sample hook gets the EMA gathered into an unsharded copy)
    whole_run = ["train.steps=4", "train.sample_every=4", f"train.out_dir={tmp_path / 'whole'}"]
    out = _run([*fsdp, *train, *whole_run], tmp_path)
    assert (tmp_path / "whole" / "samples" / "step-0000004.mp4").is_file()
    assert "FSDP: model, optimiser state and EMA sharded over 2 processes" in out, out[-2000:]
    # Stopped at step 2: a run folder holding only that checkpoint (written by 2 FSDP processes, with
    # both RNG files), resumed by a fresh launch.
    step2 = tmp_path / "whole" / "checkpoints" / "ckpt-0000002"
    shutil.copytree(step2, tmp_path / "split" / "checkpoints" / step2.name)
    out = _run(
        [*fsdp, *train, "train.steps=4", f"train.out_dir={tmp_path / 'split'}", "--resume"],
        tmp_path,
    )
    # (a fresh start would also end equal: every draw comes from the seeds)
    assert "from ckpt-0000002 (step 2)" in out, out[-2000:]
    # The data-parallel reference: one process here (test_two_processes_match_one shows that DDP over
    # 2 processes follows it up to float reduction order).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = ["train.steps=4", f"train.out_dir={tmp_path / 'ddp'}"]
        train_loop(load_config(config, reference), progress=False)
    finally:
        torch.set_num_threads(threads)

    whole, split, ddp = (load_state(tmp_path / name) for name in ("whole", "split", "ddp"))
    for state in (whole, split):
        assert state["step"] == 4 and state["num_processes"] == 2
    # Written atomically by the CheckpointWriter: complete folders, every process's RNG, no leftovers.
    ckpts = sorted((tmp_path / "whole" / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["ckpt-0000002", "ckpt-0000004"]
    assert {p.name for p in ckpts[-1].iterdir()} == {"state.pt", "rng-0.pt", "rng-1.pt"}
    # Full tensors, not shards: the same keys and shapes as a data-parallel run's checkpoint.
    for key in ("model", "ema"):
        a, b = whole[key], ddp[key]
        a, b = (a["module"], b["module"]) if key == "ema" else (a, b)
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    exp_avg = whole["optimizer"]["state"][0]["exp_avg"]
    assert exp_avg.shape == ddp["optimizer"]["state"][0]["exp_avg"].shape

    # Resumed == uninterrupted, bit for bit: weights, EMA, optimiser state.
    for k, v in whole["model"].items():
        assert torch.equal(v, split["model"][k]), k
    for k, v in whole["ema"]["module"].items():
        assert torch.equal(v, split["ema"]["module"][k]), k
    for i, entry in whole["optimizer"]["state"].items():
        for name, v in entry.items():
            assert torch.equal(v, split["optimizer"]["state"][i][name]), (i, name)
    # FSDP == data parallelism up to float reduction order: the same losses and gradient norms at
    # every step. (Adam turns reduction-order noise in a near-zero gradient into a difference of up to
    # lr per step, so a few biases differ by more than that noise: the weights are compared in bulk.)
    a, b = (read_metrics(tmp_path / name / "metrics.jsonl") for name in ("whole", "ddp"))
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for key in ("loss", "grad_norm"):
        x, y = [r[key] for r in a], [r[key] for r in b]
        assert all(abs(u - v) <= 1e-5 * abs(u) for u, v in zip(x, y)), (key, x, y)
    assert len({r["loss"] for r in a}) > 1  # it trains
    for key in ("model", "ema"):
        ours, ref = whole[key], ddp[key]
        ours, ref = (ours["module"], ref["module"]) if key == "ema" else (ours, ref)
        close = [torch.allclose(v, ref[k], rtol=1e-4, atol=1e-5) for k, v in ours.items()]
        assert sum(close) >= 0.95 * len(close), (key, sum(close), len(close))
        worst = max(float((v - ref[k]).abs().max()) for k, v in ours.items())
        assert worst <= 4 * 0.002, (key, worst)  # 4 steps at train.lr
    ema, model = whole["ema"]["module"], whole["model"]
    assert any(not torch.equal(v, model[k]) for k, v in ema.items())  # an average, not a copy

    # The FSDP run exports like any other: the EMA weights of its last checkpoint.
    out = tmp_path / "model"
    assert main(["export", str(tmp_path / "whole"), "-o", str(out)]) == 0
    loaded, ema = VideoPipeline.load(out).state_dict(), whole["ema"]["module"]
    assert loaded.keys() == ema.keys()
    for k in ema:
        assert torch.equal(loaded[k], ema[k]), k


def test_fsdp_refuses_one_process_with_one_line(tmp_path):
    """train.fsdp on a single process has nothing to shard over: a one-line error, no checkpoint."""
    from tests.test_pipeline import micro_config

    config = micro_config(*FSDP_RUN, "train.fsdp=true", f"train.out_dir={tmp_path}")
    with pytest.raises(ValueError, match="shards over several processes.*train.fsdp=false"):
        train_loop(config, progress=False)
    assert latest_checkpoint(tmp_path) is None
