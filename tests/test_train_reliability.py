"""Training never loses a good state: NaN at every phase, unreadable checkpoints, resume changes,
metrics after a resume, and non-finite weight files at load time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.test_train import Blobs, TinyDenoiser, _assert_same_state, run_tiny, tiny_config
from vidiff.train.checkpoint import list_checkpoints, load_state
from vidiff.train.loop import Hooks, train

ROOT = Path(__file__).resolve().parents[1]


class NaNAtStep(TinyDenoiser):
    """The tiny denoiser whose loss is NaN from optimiser step ``bad_step`` on (1-based; one
    ``training_loss`` call per step in these runs)."""

    def __init__(self, bad_step: int):
        super().__init__()
        self.bad_step, self.calls = bad_step, 0

    def training_loss(self, video, captions, seeds):
        self.calls += 1
        loss = super().training_loss(video, captions, seeds)
        return loss * float("nan") if self.calls >= self.bad_step else loss


def run_with(tmp_path, model, *overrides: str, hooks: Hooks | None = None, resume=False):
    torch.manual_seed(0)
    return train(
        tiny_config(tmp_path, *overrides),
        resume=resume,
        model=model,
        datasets=(Blobs(), None),
        hooks=hooks,
        progress=False,
    )


def assert_all_checkpoints_finite(run_dir: Path) -> None:
    for _, path in list_checkpoints(run_dir):
        state = load_state(path)
        for weights in (state["model"], state["ema"]["module"]):
            assert all(v.isfinite().all() for v in weights.values()), path


# --------------------------------------------------------------------------------------------------
# NaN at every phase, with train.ckpt_every not a multiple of train.log_every


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=r"diverged at step 5\b.*ckpt-0000004") as err:
        run_with(
            tmp_path,
            NaNAtStep(5),
            "train.log_every=3",
            "train.ckpt_every=2",
            "train.keep_last=1",
        )
    assert "\n" not in str(err.value)  # one line
    assert [s for s, _ in list_checkpoints(run)] == [4]  # never pruned, nothing NaN written
    assert_all_checkpoints_finite(run)


def test_nan_weights_before_a_checkpoint_are_never_written(tmp_path):
    model = TinyDenoiser()

    def poison(step, scalars):  # a log step just before the step-10 checkpoint
        if step == 10:
            with torch.no_grad():
                model.net[0].weight[0, 0, 0, 0, 0] = float("nan")

    with pytest.raises(ValueError, match=r"step 10\b.*net\.0\.weight.*ckpt-0000005"):
        run_with(
            tmp_path,
            model,
            "train.log_every=2",
            "train.ckpt_every=5",
            "train.keep_last=1",
            hooks=Hooks(log=poison),
        )
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [5]
    assert_all_checkpoints_finite(tmp_path / "run")


def test_nan_in_the_ema_is_caught_before_the_checkpoint(tmp_path):
    def poison(step, ema_model):
        if step == 10:
            with torch.no_grad():
                ema_model.net[2].bias.fill_(float("inf"))
        return False

    with pytest.raises(ValueError, match=r"step 20\b.*EMA.*ckpt-0000010"):
        run_with(tmp_path, TinyDenoiser(), "train.log_every=3", hooks=Hooks(after_step=poison))
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [10]
    assert_all_checkpoints_finite(tmp_path / "run")


def test_pipeline_load_refuses_non_finite_weights(tmp_path):
    from tests.test_pipeline import micro_pipeline
    from vidiff.pipeline import VideoPipeline

    micro_pipeline().save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    name = sorted(k for k in state if k.startswith("denoiser.net."))[3]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(weights))
    with pytest.raises(ValueError, match=rf"model\.safetensors.*{name.replace('.', '[.]')}"):
        VideoPipeline.load(tmp_path / "m")


# --------------------------------------------------------------------------------------------------
# resume


def _corrupt(ckpt: Path, how: str) -> None:
    state = ckpt / "state.pt"
    if how == "truncated":
        data = state.read_bytes()
        state.write_bytes(data[: len(data) // 2])
    elif how == "random-bytes":
        state.write_bytes(os.urandom(4096))
    elif how == "missing-state":
        state.unlink()
    elif how == "missing-rng":
        (ckpt / "rng-0.pt").unlink()


@pytest.mark.parametrize("how", ["truncated", "random-bytes", "missing-state", "missing-rng"])
def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path, capsys, how):
    run_tiny(tmp_path / "a")  # uninterrupted reference
    run_tiny(tmp_path / "b", "train.steps=10", "train.ckpt_every=5", "train.keep_last=3")
    _corrupt(tmp_path / "b" / "run" / "checkpoints" / "ckpt-0000010", how)
    capsys.readouterr()
    resumed = run_tiny(tmp_path / "b", "train.ckpt_every=5", "train.keep_last=3", resume=True)
    out = capsys.readouterr().out
    assert "skipping checkpoint ckpt-0000010" in out and "from ckpt-0000005 (step 5)" in out
    assert resumed.step == 20
    a, b = load_state(tmp_path / "a" / "run"), load_state(tmp_path / "b" / "run")
    for key in ("model", "ema", "optimizer"):
        _assert_same_state({key: a[key]}, {key: b[key]})


def test_resume_refuses_a_changed_batch_size_unless_allowed(tmp_path, capsys):
    run_tiny(tmp_path, "train.steps=10")
    with pytest.raises(ValueError, match=r"batch_size 4 -> 8.*--allow-changes"):
        run_tiny(tmp_path, "train.batch_size=8", resume=True)
    with pytest.raises(ValueError, match=r"grad_accum 1 -> 2"):
        run_tiny(tmp_path, "train.grad_accum=2", resume=True)
    torch.manual_seed(0)
    done = train(
        tiny_config(tmp_path, "train.batch_size=8"),
        resume=True,
        allow_changes=True,
        model=TinyDenoiser(),
        datasets=(Blobs(), None),
        progress=False,
    )
    assert done.step == 20
    from vidiff.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--allow-changes" in capsys.readouterr().out


def test_resumed_metrics_have_unique_increasing_steps(tmp_path):
    run_tiny(tmp_path / "a")
    stop = Hooks(after_step=lambda step, ema: step == 7)  # logged 6, 7 after the step-5 checkpoint
    torch.manual_seed(0)
    run_with(tmp_path / "b", TinyDenoiser(), "train.ckpt_every=5", hooks=stop)
    run_tiny(tmp_path / "b", "train.ckpt_every=5", resume=True)
    rows = [
        json.loads(x) for x in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == list(range(1, 21))
    ref = [
        json.loads(x) for x in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref]


# --------------------------------------------------------------------------------------------------
# kill -9 in the middle of writing a checkpoint

KILLED_RUN = """
import os, signal, sys, torch
sys.path.insert(0, {root!r})
from tests.test_train import run_tiny
from vidiff.train import checkpoint

torch.set_num_threads(1)  # as in tests/conftest.py, so the reference run matches bit for bit

real = checkpoint._save_file
def save_then_die(obj, path):
    if path.name == "state.pt" and obj["step"] == 20:
        with open(path, "wb") as f:  # half a file on disk, then SIGKILL
            f.write(b"x" * 1000)
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(obj, path)
checkpoint._save_file = save_then_die
run_tiny(__import__("pathlib").Path({tmp!r}), "train.steps=20")
"""


def test_kill_9_while_writing_a_checkpoint_still_resumes(tmp_path):
    script = KILLED_RUN.format(root=str(ROOT), tmp=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [10]
    resumed = run_tiny(tmp_path, resume=True)
    assert resumed.step == 20
    run_tiny(tmp_path / "ref")
    a, b = load_state(tmp_path / "ref" / "run"), load_state(tmp_path / "run")
    _assert_same_state({"model": a["model"]}, {"model": b["model"]})


def test_resume_with_no_readable_checkpoint_is_refused(tmp_path):
    run_tiny(tmp_path, "train.steps=10")
    _corrupt(tmp_path / "run" / "checkpoints" / "ckpt-0000010", "truncated")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        run_tiny(tmp_path, resume=True)  # never silently restart a run from step 0


def test_export_refuses_a_checkpoint_with_non_finite_weights(tmp_path):
    from tests.test_pipeline import micro_config
    from vidiff.commands.train import export
    from vidiff.config import to_dict
    from vidiff.pipeline import VideoPipeline

    cfg = micro_config()
    weights = VideoPipeline(cfg.pipeline_config()).state_dict()
    name = sorted(k for k in weights if k.startswith("denoiser.net."))[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    ckpt = tmp_path / "run" / "checkpoints" / "ckpt-0000001"
    ckpt.mkdir(parents=True)
    state = {"step": 1, "config": to_dict(cfg), "ema": {"module": weights}, "net": None}
    torch.save(state, ckpt / "state.pt")
    with pytest.raises(ValueError, match=rf"ckpt-0000001.*non-finite.*{name.replace('.', '[.]')}"):
        export(str(tmp_path / "run"), out=str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()
