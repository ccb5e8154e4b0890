"""Latent diffusion: a VideoPipeline over a frozen causal VAE (the Sora / WALT / Wan route)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_dit import PROMPTS, _micro_pipeline
from tests.test_vae import micro_vae
from vidiff.pipeline import VideoPipeline


@pytest.fixture
def vae_dir(tmp_path):
    vae = micro_vae(seed=1)
    with torch.no_grad():  # a VAE that is not the identity-at-init one: latents carry the clip
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    vae.config.scaling_factor, vae.config.shift_factor = 2.0, 0.1
    vae.save(tmp_path / "vae")
    return tmp_path / "vae"


def _latent_pipeline(vae_dir, *overrides: str):
    # 16 frames of 16x16: padded to 17, then 5 latent frames of 4x4 (x4 time, x4 space)
    return _micro_pipeline(
        f"model.vae={vae_dir}",
        "data.num_frames=16",
        "data.size=16",
        "model.net.patch_size=[1, 1, 1]",
        *overrides,
    )


def test_latent_pipeline_trains_samples_and_round_trips(vae_dir, tmp_path):
    pipe = _latent_pipeline(vae_dir)
    vae = pipe.vae
    assert pipe.sample_shape == (4, 5, 4, 4) and pipe.net.config.in_channels == 4
    assert not any(p.requires_grad for p in vae.parameters())
    video = torch.rand(2, 3, 16, 16, 16)
    x0 = pipe.to_model_space(video)
    assert x0.shape == (2, 4, 5, 4, 4)
    torch.testing.assert_close(x0, vae.encode_latents(vae.pad_frames(video * 2 - 1)))
    loss = pipe.training_loss(video, PROMPTS, [0, 1])
    loss.mean().backward()
    assert all(p.grad is None for p in vae.parameters())  # the VAE stays frozen
    assert any(p.grad is not None for p in pipe.net.parameters())
    pipe.eval()
    out = pipe.generate(PROMPTS, [3, 4])
    assert out.shape == (2, 3, 16, 16, 16) and out.min() >= 0 and out.max() <= 1

    pipe.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["model"]
    assert saved["vae"] is None and saved["vae_config"]["scaling_factor"] == 2.0
    assert saved["preset"] is None  # the complete net config, whatever presets become
    (vae_dir / "model.safetensors").unlink()  # the export carries the VAE itself
    loaded = VideoPipeline.load(tmp_path / "model")
    torch.testing.assert_close(loaded.generate(PROMPTS, [3, 4]), out, atol=1e-6, rtol=0)


def test_known_frames_map_to_latent_frames(vae_dir):
    pipe = _latent_pipeline(vae_dir)
    frames = torch.rand(3, 3, 16, 16, 16)
    mask = torch.zeros(3, 16, dtype=torch.bool)
    mask[0, 0] = True  # image to video: latent frame 0 is frame 0 alone
    mask[1, :5] = True  # frames 0..4: latent frames 0 and 1 (frames 1..4)
    mask[2, :4] = True  # frames 0..3: latent frame 1 lacks frame 4
    x, latent_mask = pipe._known_in_model_space(frames, mask)
    assert x.shape == (3, 4, 5, 4, 4)
    assert latent_mask.tolist() == [
        [True, False, False, False, False],
        [True, True, False, False, False],
        [True, False, False, False, False],
    ]
    everything = pipe._known_in_model_space(frames, torch.ones(1, 16, dtype=torch.bool))[1]
    assert everything.all()  # the padded 17th frame repeats frame 15, known with it


def test_progressive_distillation_in_latent_space_with_known_frames(vae_dir):
    """The student learns the teacher's 2-step DDIM output in one step on VAE latents, with the frame
    mask on (image to video / continuation draws), the VAE frozen throughout."""
    import copy

    from vidiff.distill import ProgressiveDistillation

    teacher = _latent_pipeline(
        vae_dir, "model.frame_conditioning=true", "diffusion.p_frame_cond=1.0"
    )
    student = copy.deepcopy(teacher).train()
    obj = ProgressiveDistillation(teacher, student, 2, guidance=2.0)
    video, seeds = torch.rand(2, 3, 16, 16, 16), [5, 6]
    x0, _, _, mask = obj.setup(video, PROMPTS, seeds)
    torch.testing.assert_close(x0, teacher.to_model_space(video))  # latents, not pixels
    assert mask is not None and mask.any()  # known latent frames are part of the draw
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(30):
        loss = obj.training_loss(video, PROMPTS, seeds).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is None for p in student.vae.parameters())
    assert sum(losses[-5:]) < 0.3 * sum(losses[:5]), losses
