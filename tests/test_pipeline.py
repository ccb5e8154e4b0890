"""VideoPipeline: losses, generation, frame conditioning, save/load — on a micro U-Net."""

import json
import os
import stat

import pytest
import torch

from vidiff.config import load_config
from vidiff.data.shapes import vocabulary
from vidiff.pipeline import VideoPipeline

MICRO_NET = "{model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2], head_dim: 8}"


def micro_config(*overrides: str):
    """The run config of a micro text-to-video U-Net (4 frames of 8x8) plus ``overrides``."""
    return load_config(
        None,
        [
            f"model.net={MICRO_NET}",
            f"model.text={{vocab: {vocabulary()}, dim: 16, depth: 1, num_heads: 2}}",
            "data.num_frames=4",
            "data.size=8",
            "diffusion.steps=3",
            *overrides,
        ],
    )


def micro_pipeline(*overrides: str) -> VideoPipeline:
    cfg = micro_config(*overrides)
    torch.manual_seed(0)
    pipe = VideoPipeline(cfg.pipeline_config()).eval()
    # Zero-initialised output layers make a fresh net constant; perturb so outputs depend on inputs.
    with torch.no_grad():
        for p in pipe.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return pipe


PROMPTS = ["a red circle moving right", "a blue square moving up", "a green triangle moving left"]


def test_generate_shape_range_and_seed_independence_of_batch():
    pipe = micro_pipeline()
    together = pipe.generate(PROMPTS, [1, 2, 3])
    assert together.shape == (3, 3, 4, 8, 8) and together.dtype == torch.float32
    assert together.min() >= 0 and together.max() <= 1
    alone = torch.cat([pipe.generate([p], [s]) for p, s in zip(PROMPTS, [1, 2, 3])])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)
    assert not torch.allclose(together, pipe.generate(PROMPTS, [4, 5, 6]))


def test_frame_noise_correlation_follows_the_config_and_the_argument():
    pipe = micro_pipeline()
    plain = pipe.generate(PROMPTS[:2], [1, 2], steps=2)
    corr = pipe.generate(PROMPTS[:2], [1, 2], steps=2, noise_correlation=0.5)
    assert not torch.allclose(plain, corr)
    pipe.config.diffusion.noise_correlation = 0.5
    torch.testing.assert_close(pipe.generate(PROMPTS[:2], [1, 2], steps=2), corr)
    torch.testing.assert_close(
        pipe.generate(PROMPTS[:2], [1, 2], steps=2, noise_correlation=0.0), plain
    )


@pytest.mark.parametrize("sampler", ["euler", "heun", "ddim", "ddpm", "dpmpp_2m"])
def test_every_sampler_runs_through_the_pipeline(sampler):
    pipe = micro_pipeline()
    out = pipe.generate(PROMPTS[:1], [0], sampler=sampler, steps=2)
    assert out.shape == (1, 3, 4, 8, 8) and torch.isfinite(out).all()


def test_unknown_word_is_named():
    pipe = micro_pipeline()
    with pytest.raises(ValueError, match="purple"):
        pipe.generate(["a purple circle moving right"], [0])


def test_known_frames_are_kept():
    pipe = micro_pipeline()
    known = torch.rand(2, 3, 4, 8, 8)
    mask = torch.tensor([[True, False, False, False], [True, False, False, True]])
    out = pipe.generate(PROMPTS[:2], [0, 1], known_frames=known, frame_mask=mask)
    torch.testing.assert_close(out[0, :, 0], known[0, :, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1, :, 3], known[1, :, 3], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="together"):
        pipe.generate(PROMPTS[:1], [0], known_frames=known[:1])


def test_frame_conditioning_off_rejects_known_frames():
    pipe = micro_pipeline("model.frame_conditioning=false")
    with pytest.raises(ValueError, match="frame conditioning"):
        pipe.generate(
            PROMPTS[:1],
            [0],
            known_frames=torch.rand(1, 3, 4, 8, 8),
            frame_mask=torch.ones(1, 4, dtype=torch.bool),
        )


@pytest.mark.parametrize("parameterization", ["eps", "v", "edm", "flow"])
def test_training_loss_is_per_sample_and_batch_independent(parameterization):
    pipe = micro_pipeline(f"diffusion.parameterization={parameterization}")
    video = torch.rand(4, 3, 4, 8, 8)
    captions = PROMPTS + [""]
    whole = pipe.training_loss(video, captions, seeds=[5, 6, 7, 8])
    assert whole.shape == (4,) and torch.isfinite(whole).all()
    halves = torch.cat(
        [
            pipe.training_loss(video[:2], captions[:2], [5, 6]),
            pipe.training_loss(video[2:], captions[2:], [7, 8]),
        ]
    )
    torch.testing.assert_close(whole, halves, rtol=1e-5, atol=1e-7)
    whole.mean().backward()
    assert all(p.grad is not None for p in pipe.net.parameters() if p.requires_grad)


def test_save_load_round_trip(tmp_path):
    pipe = micro_pipeline("diffusion.parameterization=flow")
    before = pipe.generate(PROMPTS[:2], [3, 4])
    pipe.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["diffusion"]["parameterization"] == "flow" and config["video"]["num_frames"] == 4
    assert (
        config["model"]["net"]["model_channels"] == 8
        and config["model"]["net"]["num_res_blocks"] == 1
    )
    # The weights are an ordinary file (safetensors alone writes 0600, unreadable by other users
    # of a shared install), written through a temporary name that does not stay behind.
    umask = os.umask(0)
    os.umask(umask)
    weights = tmp_path / "model" / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~umask
    assert sorted(f.name for f in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = VideoPipeline.load(tmp_path / "model")
    torch.testing.assert_close(loaded.generate(PROMPTS[:2], [3, 4]), before, rtol=0, atol=0)
    pipe.save(tmp_path / "half", dtype=torch.float16)
    name = next(iter(pipe.net.state_dict()))
    assert VideoPipeline.load(tmp_path / "half").net.state_dict()[name].dtype == torch.float32


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        VideoPipeline.load(tmp_path)
    pipe = micro_pipeline()
    state = pipe.state_dict()
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="model.safetensors.*Missing key"):
        pipe.load_weights(state, tmp_path / "model.safetensors")


def test_loss_shares_the_preconditioning_settings():
    edm = micro_pipeline("diffusion.parameterization=edm")
    assert edm.loss_fn.sigma_data == edm.denoiser.sigma_data
    v = micro_pipeline("diffusion.loss={min_snr_gamma: 5.0}")
    assert v.loss_fn.schedule is v.denoiser.schedule
    with pytest.raises(ValueError, match="diffusion.loss.sigma_data"):
        micro_pipeline("diffusion.parameterization=edm", "diffusion.loss={sigma_data: 1.0}")
    with pytest.raises(ValueError, match="diffusion.loss.schedule"):
        micro_pipeline("diffusion.loss={schedule: linear}")
    with pytest.raises(ValueError, match="steps"):
        v.sigmas(0)
