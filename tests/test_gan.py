"""The video GAN (vidiff/models/gan.py, vidiff/train/objectives/gan.py) on tiny CPU configs."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn.utils import parametrize

from vidiff.cli import main
from vidiff.config import load_config
from vidiff.data.video_io import read_video
from vidiff.families import load_model
from vidiff.families.gan import GANPipeline
from vidiff.models.gan import ImageDiscriminator, VideoDiscriminator
from vidiff.train.checkpoint import load_state
from vidiff.train.objectives import build_objective
from vidiff.train.objectives.gan import GANObjective, r1_penalty

VOCAB = "[a,red,blue,circle,square,moving,left,right]"
TINY = ["model.arch=gan", "model.preset=gan-test", f"model.text.vocab={VOCAB}",
        "data.num_frames=4", "data.size=8"]  # fmt: skip
CAPS = ["a red circle moving left", "a blue square moving right"]


def tiny_objective(*extra: str) -> GANObjective:
    torch.manual_seed(0)
    return build_objective(load_config(None, [*TINY, *extra]))


def test_shapes_seeding_and_spectral_norm():
    obj = tiny_objective()
    video = obj.pipe.generate(CAPS, [0, 1])
    assert video.shape == (2, 3, 4, 8, 8) and video.min() >= 0 and video.max() <= 1
    # a clip depends on its prompt and seed, not on its batch
    alone = obj.pipe.generate(CAPS[1:], [1])
    torch.testing.assert_close(alone, video[1:], atol=1e-5, rtol=0)
    assert not torch.equal(obj.pipe.generate(CAPS[:1], [5]), video[:1])
    x = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    ids, mask = obj.pipe.tokens(CAPS)
    assert obj.image_disc(x, ids, mask).shape == (2, 4)
    assert obj.video_disc(x, ids, mask).shape == (2,)
    for disc in (obj.image_disc, obj.video_disc):
        convs = [m for m in disc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
        linears = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
        assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs + linears)
    assert isinstance(obj.image_disc, ImageDiscriminator)
    assert isinstance(obj.video_disc, VideoDiscriminator)


def test_hinge_and_r1_losses_on_toy_inputs():
    obj = tiny_objective()
    video, seeds = torch.rand(2, 3, 4, 8, 8), [0, 1]
    # the generator's loss leaves no gradient on the critics
    obj.training_loss(video, CAPS, seeds).sum().backward()
    assert all(p.grad is None for p in obj.image_disc.parameters())
    assert any(p.grad is not None for p in obj.pipe.parameters())
    # hinge on known logits: real critics say 0.5, fake ones 0.3 (R1 off)
    obj = tiny_objective("model.net.r1_gamma=0")

    def critics(x, captions, detach=False):
        v = 0.5 if torch.equal(x.detach(), video * 2 - 1) else 0.3
        return torch.full((len(x), 4), v), torch.full((len(x),), v)

    obj.critics = critics
    torch.testing.assert_close(obj.discriminator_loss(video, CAPS, seeds), torch.full((2,), 3.6))
    torch.testing.assert_close(obj.training_loss(video, CAPS, seeds), torch.full((2,), -0.6))
    # matching-aware critics: real clips under the other clip's caption are one more negative
    # (0.5 -> 1.5 per critic), skipped where the two captions agree
    obj = tiny_objective("model.net.r1_gamma=0", "model.net.mismatch_weight=0.5")
    obj.critics = critics
    torch.testing.assert_close(obj.discriminator_loss(video, CAPS, seeds), torch.full((2,), 5.1))
    same = [CAPS[0], CAPS[0]]
    torch.testing.assert_close(obj.discriminator_loss(video, same, seeds), torch.full((2,), 3.6))
    # R1 of D(x) = sum(x^2) is |2x|^2
    x = torch.randn(3, 5, requires_grad=True)
    torch.testing.assert_close(r1_penalty(x.square().sum(1), x), (2 * x).square().sum(1))
    with pytest.raises(ValueError, match="r1_gamma"):
        tiny_objective("model.net.r1_gamma=-1")
    with pytest.raises(ValueError, match="mismatch_weight"):
        tiny_objective("model.net.mismatch_weight=-1")


def test_cfg_and_steps_are_refused_and_unknown_words_named():
    pipe = tiny_objective().pipe
    with pytest.raises(ValueError, match="--cfg is a diffusion option.*gan"):
        pipe.generate(CAPS, [0, 1], cfg=3.0)
    with pytest.raises(ValueError, match="--top-k is not an option of a gan model"):
        pipe.generate(CAPS, [0, 1], top_k=3)
    with pytest.raises(ValueError, match="unknown word 'green'"):
        pipe.generate(["a green circle moving left"], [0])


def test_cli_train_resume_export_generate(tmp_path, capsys):
    run = ["train", "configs/shapes-gan.yaml", *[o for o in TINY if "vocab" not in o], "data.num_items=8", "train.batch_size=2",
           "train.log_every=1", "train.ckpt_every=2", "train.lr=1e-3"]  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*run, "train.steps=4", f"train.out_dir={a}"]) == 0
    assert main([*run, "train.steps=2", f"train.out_dir={b}"]) == 0
    assert main([*run, "train.steps=4", f"train.out_dir={b}", "--resume"]) == 0
    sa, sb = load_state(a), load_state(b)
    for key in ("model", "ema", "optimizer", "d_optimizer"):
        flat_a, flat_b = _tensors(sa[key]), _tensors(sb[key])
        assert flat_a.keys() == flat_b.keys()
        for k in flat_a:
            assert torch.equal(flat_a[k], flat_b[k]), (key, k)
    # training moved the generator away from its initialisation
    fresh = tiny_objective().state_dict()
    moved = [
        k for k, v in sa["model"].items() if k.startswith("pipe.") and not torch.equal(v, fresh[k])
    ]
    assert moved
    out = tmp_path / "model"
    assert main(["export", str(a), "-o", str(out)]) == 0
    pipe = load_model(out)
    assert isinstance(pipe, GANPipeline)
    assert not any(k.startswith(("image_disc", "video_disc")) for k in pipe.state_dict())
    clip = tmp_path / "clip.mp4"
    assert (
        main(["generate", "a red circle moving left", "--model", str(out), "--out", str(clip)]) == 0
    )
    assert read_video(clip)[0].shape[1] == 4
    # vidiff eval scores it unchanged, with no sampler or guidance to report
    ev = tmp_path / "eval"
    argv = ["eval", "--model", str(out), "--num-videos", "2", "--splits", "train", "--out", str(ev)]
    assert main([*argv, "--no-progress"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["sampler"] == "gan" and metrics["cfg"] is None and "adherence" in metrics
    capsys.readouterr()
    assert main(["generate", "a red circle", "--model", str(out), "--steps", "4"]) != 0
    assert "--steps" in capsys.readouterr().err


def _tensors(tree, prefix=""):
    out = {}
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_tensors(v, f"{prefix}.{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(_tensors(v, f"{prefix}.{i}"))
    return out


def test_matching_aware_critics_learn_to_read_the_caption():
    """With mismatch_weight the critics score a red clip far higher under "red ..." than "blue ...":
    20 critic steps on two solid clips, the generator frozen, give a margin above 4 (without the
    term: 1.5 and 0.5 on this seed)."""
    obj = tiny_objective("model.net.mismatch_weight=1")
    video = torch.zeros(2, 3, 4, 8, 8)
    video[0, 0], video[1, 2] = 1.0, 1.0  # a red clip, a blue clip
    params = [*obj.image_disc.parameters(), *obj.video_disc.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3, betas=(0.0, 0.99))
    for _ in range(20):
        opt.zero_grad()
        obj.discriminator_loss(video, CAPS, [0, 1]).mean().backward()
        opt.step()
    with torch.no_grad():
        right = obj._critic_score(*obj.critics(video * 2 - 1, CAPS))
        wrong = obj._critic_score(*obj.critics(video * 2 - 1, CAPS[::-1]))
    assert (right > wrong + 4).all(), (right, wrong)
