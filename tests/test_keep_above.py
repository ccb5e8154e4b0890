"""``train.keep_above_sigma``: fine-tune model.init below a noise level, keep its output above."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.test_lora import _lora_run
from tests.test_pipeline import micro_pipeline
from vidiff.data.shapes import MovingShapes
from vidiff.train.finetune import keep_above


def test_above_the_level_the_target_is_the_frozen_model_below_it_the_clip():
    pipe = micro_pipeline()
    video = torch.rand(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    captions = ["a red circle moving up", "a blue square moving left"]
    plain = pipe.training_loss(video, captions, [0, 1])
    pipe.loss_reference = keep_above(copy.deepcopy(pipe), float("inf"))  # every draw below
    assert torch.equal(pipe.training_loss(video, captions, [0, 1]), plain)
    pipe.loss_reference = keep_above(copy.deepcopy(pipe), 0.0)  # every draw above
    # An unchanged model equals its frozen copy: nothing to learn where its output is kept.
    assert (pipe.training_loss(video, captions, [0, 1]) == 0).all() and (plain > 0).all()
    with torch.no_grad():
        for p in pipe.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = pipe.training_loss(video, captions, [0, 1])
    assert (moved > 0).all()  # drifting from the frozen model above the level costs
    moved.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pipe.parameters())


def test_keep_above_sigma_runs_and_its_errors_are_named(tmp_path):
    from vidiff.train.loop import train

    micro_pipeline().save(tmp_path / "base")
    data = (MovingShapes(4, num_frames=4, size=8), None)
    keep = ("train.trainable=all", "train.lora={}", "train.keep_above_sigma=1.0")
    cfg = _lora_run(tmp_path, tmp_path / "base", *keep)
    result = train(cfg, datasets=data, progress=False)
    assert result.step == cfg.train.steps
    # the frozen model.init is the target above the level
    assert result.model.loss_reference(result.model, ["a red circle moving up"]) is not None
    cfg = _lora_run(tmp_path / "no-init", tmp_path / "base", *keep)
    cfg.model.init = None
    with pytest.raises(ValueError, match="set model.init"):
        train(cfg, datasets=data, progress=False)
    cfg = _lora_run(tmp_path / "zero", tmp_path / "base", *keep, "train.keep_above_sigma=0")
    with pytest.raises(ValueError, match="keep_above_sigma must be > 0"):
        train(cfg, datasets=data, progress=False)


def test_keep_above_sigma_needs_a_diffusion_model(tmp_path):
    from tests.test_gan import TINY, tiny_objective
    from vidiff.config import load_config
    from vidiff.train.objectives import run_objective

    tiny_objective().pipe.save(tmp_path / "gan")
    cfg = load_config(None, [*TINY, "train.keep_above_sigma=1.0"])
    cfg.model.init = str(tmp_path / "gan")
    with pytest.raises(ValueError, match="needs a diffusion model; model.init is gan"):
        run_objective(cfg)
