"""The trainer: loss falls, exact resume, atomic checkpoints, keep-last-k, export round trip, data plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from vidiff.config import load_config
from vidiff.train import checkpoint as ckpt_mod
from vidiff.train.checkpoint import (
    CheckpointWriter,
    latest_checkpoint,
    list_checkpoints,
    load_state,
)
from vidiff.train.data import DataPlan, Layout, sample_seed
from vidiff.train.ema import EMA
from vidiff.train.logging import read_metrics
from vidiff.train.loop import Hooks, train

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# A tiny stand-in for VideoPipeline: the loop only needs ``training_loss(video, captions, seeds)``.


class TinyDenoiser(nn.Module):
    """x0-prediction with a 2-layer conv net; every random draw comes from the per-sample seeds."""

    def __init__(self, channels: int = 3, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(channels + 1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv3d(width, channels, 3, padding=1),
        )

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        x0 = video * 2 - 1
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        sigma = torch.stack([torch.rand((), generator=g) for g in gens]).to(x0) * 2 + 0.05
        noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in gens]).to(x0)
        s = sigma.view(-1, 1, 1, 1, 1)
        x = (x0 + s * noise) / (1 + s**2).sqrt()
        inp = torch.cat([x, s.log().expand_as(x[:, :1])], dim=1)
        return (self.net(inp) - x0).square().mean(dim=(1, 2, 3, 4))


class Blobs(torch.utils.data.Dataset):
    """A bright square moving right, position and colour a pure function of the index."""

    def __init__(self, length: int = 64, frames: int = 4, size: int = 8):
        self.length, self.frames, self.size = length, frames, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        v = torch.zeros(3, self.frames, self.size, self.size)
        y = i % (self.size - 2)
        for t in range(self.frames):
            x = (i + t) % (self.size - 2)
            v[i % 3, t, y : y + 2, x : x + 2] = 1.0
        return {"video": v, "caption": "a square moving right", "gt": None}


def tiny_config(tmp_path, *overrides: str):
    base = [
        f"train.out_dir={tmp_path / 'run'}",
        "train.steps=20",
        "train.batch_size=4",
        "train.lr=0.003",
        "train.warmup_steps=5",
        "train.log_every=1",
        "train.ckpt_every=10",
        "train.ema_decay=0.9",
        "data.num_frames=4",
        "data.size=8",
    ]
    return load_config(None, base + list(overrides))


def run_tiny(tmp_path, *overrides: str, resume: bool = False):
    torch.manual_seed(0)
    return train(
        tiny_config(tmp_path, *overrides),
        resume=resume,
        model=TinyDenoiser(),
        datasets=(Blobs(), None),
        progress=False,
    )


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        elif isinstance(a[k], dict):
            _assert_same_state(a[k], b[k])
        else:
            assert a[k] == b[k], k


# --------------------------------------------------------------------------------------------------


def test_loss_falls_and_metrics_are_logged(tmp_path):
    result = run_tiny(tmp_path, "train.steps=40", "train.ckpt_every=100")
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert result.finished and result.step == 40
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert (
        load_config(tmp_path / "run" / "config.yaml").train.steps == 40
    )  # resolved config, reloadable


def test_after_step_hook_can_stop_training(tmp_path):
    from vidiff.train.loop import Hooks

    seen = []

    def after_step(step, ema_model):
        seen.append(step)
        return step == 3

    torch.manual_seed(0)
    result = train(
        tiny_config(tmp_path, "train.steps=10", "train.ckpt_every=100"),
        model=TinyDenoiser(),
        datasets=(Blobs(), None),
        hooks=Hooks(after_step=after_step),
        progress=False,
    )
    assert seen == [1, 2, 3] and result.step == 3 and not result.finished


def test_resume_is_exact(tmp_path):
    run_tiny(tmp_path / "a")
    run_tiny(tmp_path / "b", "train.steps=10")
    resumed = run_tiny(tmp_path / "b", resume=True)
    assert resumed.step == 20
    a = load_state(tmp_path / "a" / "run")
    b = load_state(tmp_path / "b" / "run")
    for key in ("model", "ema", "optimizer", "scheduler", "data_position"):
        _assert_same_state({key: a[key]}, {key: b[key]})
    # the loss trajectory of steps 11..20 is the same too
    la = [r["loss"] for r in read_metrics(tmp_path / "a" / "run" / "metrics.jsonl")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "b" / "run" / "metrics.jsonl")]
    assert la == lb


def test_resume_edge_cases(tmp_path, capsys):
    run_tiny(tmp_path, "train.steps=10")
    with pytest.raises(ValueError, match="--resume"):
        run_tiny(tmp_path, "train.steps=10")  # never silently overwrite a run
    done = run_tiny(tmp_path, "train.steps=10", resume=True)
    assert done.finished and done.step == 10
    assert "already finished" in capsys.readouterr().out
    with pytest.raises(ValueError, match="data.size"):
        run_tiny(
            tmp_path, "data.size=16", resume=True
        )  # a different model/data shape cannot resume


def test_lr_cooldown_and_adding_it_on_resume(tmp_path):
    # warmup 5, constant, then linear to 0 over the last 8 of 20 steps
    run_tiny(tmp_path / "a", "train.decay_steps=8")
    lrs = [r["lr"] for r in read_metrics(tmp_path / "a" / "run" / "metrics.jsonl")]
    assert lrs[0] == pytest.approx(0.003 / 5) and lrs[4:12] == pytest.approx([0.003] * 8)
    assert lrs[12:] == pytest.approx([0.003 * (8 - i) / 8 for i in range(8)])
    # a constant-LR run cooled down from its step-10 checkpoint follows the same LRs
    run_tiny(tmp_path / "b", "train.steps=10")
    run_tiny(tmp_path / "b", "train.decay_steps=8", resume=True)
    lb = [r["lr"] for r in read_metrics(tmp_path / "b" / "run" / "metrics.jsonl")]
    assert lb == pytest.approx(lrs)
    # a cool-down longer than the run spans all of it
    run_tiny(tmp_path / "c", "train.steps=10", "train.decay_steps=30", "train.warmup_steps=0")
    lc = [r["lr"] for r in read_metrics(tmp_path / "c" / "run" / "metrics.jsonl")]
    assert lc == pytest.approx([0.003 * (10 - i) / 10 for i in range(10)])
    with pytest.raises(ValueError, match="decay_steps"):
        run_tiny(tmp_path / "d", "train.decay_steps=-1")


def test_crash_during_save_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    run_tiny(tmp_path, "train.steps=10")
    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        if isinstance(obj, dict) and "optimizer" in obj:  # state.pt written, before the rename
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(ckpt_mod.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        run_tiny(tmp_path, resume=True)
    monkeypatch.undo()
    root = tmp_path / "run" / "checkpoints"
    assert [p.name for _, p in list_checkpoints(tmp_path / "run")] == ["ckpt-0000010"]
    assert any(
        p.name.startswith(".tmp-ckpt-") for p in root.iterdir()
    )  # the crash left only a temp dir
    resumed = run_tiny(tmp_path, resume=True)  # ... which a resume ignores and cleans up
    assert resumed.step == 20
    assert not any(p.name.startswith(".tmp-ckpt-") for p in root.iterdir())
    assert latest_checkpoint(tmp_path / "run").name == "ckpt-0000020"


def test_keep_last_k(tmp_path):
    writer = CheckpointWriter(tmp_path, keep_last=2)
    for step in (5, 10, 15, 20):
        writer.save(step, {"step": step, "w": torch.ones(2) * step})
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 20]
    assert load_state(tmp_path)["step"] == 20  # a run dir resolves to its latest checkpoint
    assert load_state(tmp_path / "checkpoints" / "ckpt-0000015")["step"] == 15
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_state(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointWriter(tmp_path, keep_last=0)


def test_checkpoints_load_weights_only(tmp_path):
    """A checkpoint with pickled code in it is refused, not executed."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    d = tmp_path / "checkpoints" / "ckpt-0000001"
    d.mkdir(parents=True)
    torch.save({"step": 1, "x": Evil()}, d / "state.pt")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_state(tmp_path)


def test_ema_warmup_and_average():
    lin = nn.Linear(2, 1, bias=False)
    ema = EMA(lin, decay=0.99, warmup=True)
    assert ema.decay(0) == 0.0  # first update copies the weights
    assert 0.0 < ema.decay(10) < ema.decay(100) <= 0.99
    assert ema.decay(10**9) == 0.99
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update()
    assert torch.allclose(ema.module.weight, torch.ones(1, 2))
    with torch.no_grad():
        lin.weight.fill_(3.0)
    d = ema.update()
    assert torch.allclose(ema.module.weight, torch.full((1, 2), d * 1.0 + (1 - d) * 3.0))
    assert EMA(lin, 0.5, warmup=False).decay(0) == 0.5
    with pytest.raises(ValueError, match="decay"):
        EMA(lin, 1.5)


def test_ema_skips_frozen_parameters():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)  # e.g. a frozen text encoder
    ema = EMA(model, decay=0.5, warmup=False)
    assert len(ema._pairs) == 2  # the trainable Linear's weight and bias only
    with torch.no_grad():
        model[1].weight.fill_(2.0)
    ema.update()
    assert not torch.equal(ema.module[1].weight, model[1].weight)  # averaged, not copied
    torch.testing.assert_close(ema.module[0].weight, model[0].weight)


def test_data_plan_shards_by_global_index():
    """P processes x micro-batch B/P see exactly the samples and seeds of one process with B."""
    one = DataPlan(3, Layout(8), 100, None, 0.0)
    two = [
        DataPlan(3, Layout(8, num_processes=2, process_index=p), 100, None, 0.0) for p in range(2)
    ]
    acc = [
        DataPlan(3, Layout(8, num_processes=2, process_index=p, grad_accum=2), 100, None, 0.0)
        for p in range(2)
    ]
    pos: dict[str, int] = {}
    seen = set()
    for step in range(30):  # > 2 epochs of 100 items
        ref = one.keys(step, pos)[0]
        assert two[0].keys(step, pos)[0] + two[1].keys(step, pos)[0] == ref
        assert sorted(k for p in acc for mb in p.keys(step, pos) for k in mb) == sorted(ref)
        assert [k[3] for k in ref] == [sample_seed(3, step, g) for g in range(8)]
        if step < 12:
            seen.update(k[1] for k in ref)
        pos = one.advance(step, pos)
    assert pos == {"video": 240}
    assert len(seen) == 96  # without replacement within an epoch
    with pytest.raises(ValueError, match="batch_size"):
        Layout(6, num_processes=4)


def test_image_steps(tmp_path):
    plan = DataPlan(0, Layout(4), 10, None, 0.5)
    kinds = [plan.kind(s) for s in range(200)]
    assert 70 < kinds.count("image") < 130
    assert plan.kind(7) == DataPlan(0, Layout(4), 10, None, 0.5).kind(
        7
    )  # a pure function of the step
    # without an image folder, image steps take first frames of clips from the video stream
    pos = {}
    for s in range(10):
        pos = plan.advance(s, pos)
    assert pos == {"video": 40}
    result = run_tiny(tmp_path, "data.image_ratio=0.5", "train.steps=6", "train.ckpt_every=100")
    assert result.step == 6


def test_train_cli_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision"):
        run_tiny(tmp_path, "train.mixed_precision=fp8")
    with pytest.raises(ValueError, match="batch_size"):
        run_tiny(tmp_path, "train.batch_size=3", "train.grad_accum=2")


def test_metrics_records_are_json(tmp_path):
    run_tiny(tmp_path, "train.steps=3", "train.ckpt_every=100")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[-1])
    assert {"step", "loss", "lr", "grad_norm", "ema_decay", "it_per_s"} <= rec.keys()
    assert rec["lr"] == pytest.approx(3e-3 * 3 / 5)  # linear warmup over 5 steps


# --------------------------------------------------------------------------------------------------
# The real thing: VideoPipeline (unet3d + built-in text encoder) through the CLI.

# Data and model small enough for CPU tests (shared with tests/test_multiprocess.py).
TINY_MODEL = [
    "data.num_frames=4",
    "data.size=16",
    "data.num_items=64",
    "model.net.model_channels=16",
    "model.net.channel_mult=[1, 2]",
    "model.net.attention_resolutions=[2]",
    "model.net.head_dim=16",
    "model.text.dim=32",
    "model.text.depth=1",
]
TINY_REAL = [
    *TINY_MODEL,
    "diffusion.steps=2",
    "train.batch_size=2",
    "train.log_every=1",
]


def test_cli_train_sample_export_load(tmp_path):
    from vidiff.cli import main
    from vidiff.pipeline import VideoPipeline

    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text((ROOT / "configs" / "shapes-unet-tiny.yaml").read_text())
    args = [
        "train",
        str(config),
        *TINY_REAL,
        "train.steps=3",
        "train.ckpt_every=2",
        "train.sample_every=3",
        f"train.out_dir={run}",
    ]
    assert main(args) == 0
    assert [s for s, _ in list_checkpoints(run)] == [2, 3]
    assert (run / "samples" / "step-0000003.mp4").stat().st_size > 0
    assert main([*args[:-1], f"train.out_dir={run}", "train.steps=4", "--resume"]) == 0
    state = load_state(run)
    assert state["step"] == 4
    vocab = state["config"]["model"]["text"]["vocab"]
    assert {"red", "circle", "moving", "right"} <= set(
        vocab
    )  # built from the dataset, kept in the ckpt

    out = tmp_path / "model"
    assert main(["export", str(run), "-o", str(out)]) == 0
    pipe = VideoPipeline.load(out)
    ema = state["ema"]["module"]
    loaded = pipe.state_dict()
    assert loaded.keys() == ema.keys()
    for k in ema:
        assert torch.equal(loaded[k], ema[k]), k
    video = pipe.generate(["a red circle moving right"], [0], steps=2)
    assert video.shape == (1, 3, 4, 16, 16) and video.min() >= 0 and video.max() <= 1
    assert (
        main(["export", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    )  # a clear one-line error
    half = tmp_path / "half"
    ckpt = run / "checkpoints" / "ckpt-0000004"
    args = [
        "export",
        str(ckpt),
        "-o",
        str(half),
        "--dtype",
        "float16",
        "--steps",
        "7",
        "--cfg",
        "2.5",
        "--noise-correlation",
        "0.1",
    ]
    assert main(args) == 0
    diffusion = VideoPipeline.load(half).config.diffusion  # the sampling defaults travel
    assert diffusion.steps == 7 and diffusion.cfg == 2.5 and diffusion.noise_correlation == 0.1
    assert main(["export", str(ckpt), "-o", str(half), "--sampler", "nope"]) == 2
    assert main(["export", str(ckpt), "-o", str(half), "--cfg", "-1"]) == 2
    assert main(["export", str(ckpt), "-o", str(half), "--noise-correlation", "1"]) == 2
    size = lambda d: (d / "model.safetensors").stat().st_size
    assert size(half) < 0.6 * size(out)
    w = VideoPipeline.load(half).state_dict()
    assert all(torch.allclose(w[k], ema[k], atol=1e-2, rtol=1e-2) for k in ema)
    # An exported model folder re-exports (e.g. a distilled student at float16) with new defaults.
    again = tmp_path / "again"
    assert (
        main(["export", str(out), "-o", str(again), "--dtype", "float16", "--sampler", "ddim"]) == 0
    )
    re = VideoPipeline.load(again)
    assert (
        re.config.diffusion.sampler == "ddim"
        and re.config.diffusion.steps == pipe.config.diffusion.steps
        and re.config.diffusion.cfg == pipe.config.diffusion.cfg
    )
    assert size(again) == size(half)
    assert all(torch.equal(re.state_dict()[k], w[k]) for k in w)


def test_a_preset_edit_changes_no_run(tmp_path, monkeypatch):
    """Checkpoints keep the complete network config: export and resume ignore later preset edits."""
    import dataclasses

    from vidiff.cli import main
    from vidiff.models import unet3d
    from vidiff.pipeline import VideoPipeline

    run = tmp_path / "run"
    args = ["train", str(ROOT / "configs" / "shapes-unet-tiny.yaml"), *TINY_REAL]
    args += ["train.warmup_steps=1", f"train.out_dir={run}"]
    assert main([*args, "train.steps=2"]) == 0
    assert load_state(run)["net"]["pooled_context"] is True
    edited = dataclasses.replace(unet3d.UNET_PRESETS["unet-tiny"], pooled_context=False)
    monkeypatch.setitem(unet3d.UNET_PRESETS, "unet-tiny", edited)
    assert main(["export", str(run), "-o", str(tmp_path / "model")]) == 0
    assert VideoPipeline.load(tmp_path / "model").net.config.pooled_context
    assert main([*args, "train.steps=3", "--resume"]) == 0
    assert load_state(run)["step"] == 3


def test_real_pipeline_resume_is_exact(tmp_path):
    base = [*TINY_REAL, "train.ckpt_every=2", "train.warmup_steps=1", "train.lr=0.001"]
    a = train(
        load_config(None, [*base, "train.steps=4", f"train.out_dir={tmp_path / 'a'}"]),
        progress=False,
    )
    train(
        load_config(None, [*base, "train.steps=2", f"train.out_dir={tmp_path / 'b'}"]),
        progress=False,
    )
    b = train(
        load_config(None, [*base, "train.steps=4", f"train.out_dir={tmp_path / 'b'}"]),
        resume=True,
        progress=False,
    )
    _assert_same_state({"m": a.model.state_dict()}, {"m": b.model.state_dict()})
    _assert_same_state({"e": a.ema.state_dict()}, {"e": b.ema.state_dict()})


def test_joint_image_video_from_an_image_folder(tmp_path):
    """With data.image_root, image steps train on 1-frame images from that folder (real U-Net, T=1)."""
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i, colour in enumerate(["red", "blue", "green"]):
        Image.new("RGB", (20, 20), colour).save(images / f"{i}.png")
        (images / f"{i}.txt").write_text(f"a {colour} tile")
    cfg = load_config(
        None,
        [
            *TINY_REAL,
            "train.steps=5",
            "train.ckpt_every=100",
            f"train.out_dir={tmp_path / 'run'}",
            f"data.image_root={images}",
            "data.image_ratio=0.5",
        ],
    )
    plan_kinds = [DataPlan(cfg.train.seed, Layout(2), 64, 3, 0.5).kind(s) for s in range(5)]
    assert "image" in plan_kinds and "video" in plan_kinds  # this seed exercises both kinds of step
    result = train(cfg, progress=False)
    assert result.step == 5
    assert "tile" in cfg.model.text["vocab"]  # image captions join the vocabulary
    state = load_state(tmp_path / "run")
    assert state["data_position"]["image"] == 2 * plan_kinds.count("image")
    assert state["data_position"]["video"] == 2 * plan_kinds.count("video")


def test_named_hooks_are_called(tmp_path):
    calls: dict[str, list] = {"log": [], "checkpoint": [], "sample": [], "evaluate": []}
    hooks = Hooks(
        log=lambda step, s: calls["log"].append(step),
        checkpoint=lambda step, path: calls["checkpoint"].append((step, path.name)),
        sample=lambda step, ema_model, path: calls["sample"].append((step, path.name)),
        evaluate=lambda step, ema_model: calls["evaluate"].append(step) or {"score": step / 10},
    )
    torch.manual_seed(0)
    cfg = tiny_config(
        tmp_path,
        "train.steps=6",
        "train.ckpt_every=3",
        "train.log_every=2",
        "train.sample_every=4",
        "train.eval_every=3",
    )
    train(cfg, model=TinyDenoiser(), datasets=(Blobs(), None), hooks=hooks, progress=False)
    assert calls["log"] == [2, 4, 6]
    assert calls["checkpoint"] == [(3, "ckpt-0000003"), (6, "ckpt-0000006")]
    assert calls["sample"] == [
        (4, "step-0000004.mp4"),
        (6, "step-0000006.mp4"),
    ]  # and the last step
    assert calls["evaluate"] == [3, 6]
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval/score" in r]
    assert [(r["step"], r["eval/score"]) for r in evals] == [(3, 0.3), (6, 0.6)]


class AdversarialDenoiser(TinyDenoiser):
    """An objective using every optional part of the protocol: a critic trained as an extra step
    (own optimiser, from step 2 on), ``begin_step`` / ``end_step`` hooks, ``trainable_parameters``."""

    def __init__(self):
        super().__init__()
        self.critic = nn.Linear(3, 1)
        self.frozen = nn.Parameter(torch.ones(2))  # trainable, but the objective leaves it out
        self.began: list[int] = []
        self.ended: list[int] = []

    def trainable_parameters(self):
        return list(self.net.parameters())

    def extra_steps(self):
        from vidiff.train.objectives import ExtraStep

        def critic_loss(video, captions, seeds):
            if self.began[-1] < 2:
                return None
            return self.critic(video.mean(dim=(2, 3, 4))).squeeze(1).abs()

        return [ExtraStep("critic", list(self.critic.parameters()), critic_loss, lr_mult=0.5)]

    def begin_step(self, step):
        self.began.append(step)

    def end_step(self, step):
        self.ended.append(step)


def test_objective_protocol_extra_steps_hooks_and_exact_resume(tmp_path):
    def run(sub, *overrides, resume=False):
        torch.manual_seed(0)
        model = AdversarialDenoiser()
        frozen = model.frozen.detach().clone()
        result = train(
            tiny_config(tmp_path / sub, "train.ckpt_every=3", *overrides),
            resume=resume,
            model=model,
            datasets=(Blobs(), None),
            progress=False,
        )
        assert torch.equal(model.frozen, frozen)  # not in trainable_parameters: never stepped
        return model, result

    model, _ = run("a", "train.steps=6")
    assert model.began == model.ended == list(range(6))
    state = load_state(tmp_path / "a" / "run")
    assert state["critic_optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.003 * 0.5)
    rows = read_metrics(tmp_path / "a" / "run" / "metrics.jsonl")
    assert [r["critic_loss"] > 0 for r in rows] == [False, False, True, True, True, True]
    run("b", "train.steps=3")
    resumed, _ = run("b", "train.steps=6", resume=True)
    assert resumed.began == [3, 4, 5]
    a, b = load_state(tmp_path / "a" / "run"), load_state(tmp_path / "b" / "run")
    for key in ("model", "ema", "optimizer", "critic_optimizer", "scheduler", "data_position"):
        _assert_same_state({key: a[key]}, {key: b[key]})
