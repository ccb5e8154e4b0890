"""A DiT samples clips of other lengths, sizes and aspect ratios than it trained on (its spacetime
patches and 3D RoPE take any grid); other networks refuse with one line (issue 20, item 7)."""

from __future__ import annotations

import pytest
import torch

from tests.test_dit import _micro_pipeline
from tests.test_pipeline import micro_pipeline
from tests.test_vae import micro_vae
from vidiff import cli
from vidiff.data.video_io import read_video

PROMPT = ["a red circle moving right"]


def micro_latent_dit(tmp_path):
    """A micro latent DiT over a micro VAE saved in ``tmp_path`` (5 frames of 16x16, 1x1x1 patches)."""
    micro_vae().save(tmp_path / "vae")
    return _micro_pipeline(
        f"model.vae={tmp_path / 'vae'}", "data.num_frames=5", "data.size=16",
        "model.net.patch_size=[1, 1, 1]",
    )  # fmt: skip


def test_dit_samples_other_sizes_and_lengths():
    pipe = _micro_pipeline()  # trained shape: 4 frames of 8x8, patches 1x2x2
    default = pipe.generate(PROMPT, [0])
    assert default.shape == (1, 3, 4, 8, 8)
    # the trained shape given explicitly is the default path, bit for bit
    torch.testing.assert_close(pipe.generate(PROMPT, [0], num_frames=4, size=(8, 8)), default)
    for t, (h, w) in [(6, (8, 12)), (2, (12, 8)), (9, (4, 4))]:
        video = pipe.generate(PROMPT, [0], num_frames=t, size=(h, w))
        assert video.shape == (1, 3, t, h, w) and torch.isfinite(video).all()
    # a video depends on its prompt and seed, not on its batch, at any size
    two = pipe.generate(PROMPT * 2, [0, 1], num_frames=6, size=(8, 12))
    torch.testing.assert_close(two[:1], pipe.generate(PROMPT, [0], num_frames=6, size=(8, 12)))


def test_latent_dit_samples_other_sizes(tmp_path):
    pipe = micro_latent_dit(tmp_path)
    video = pipe.generate(PROMPT, [0], num_frames=9, size=(16, 24))
    assert video.shape == (1, 3, 9, 16, 24)
    with pytest.raises(ValueError, match="multiple of 4"):
        pipe.generate(PROMPT, [0], size=(16, 18))  # not whole latents


def test_other_shapes_are_checked():
    pipe = _micro_pipeline()
    with pytest.raises(ValueError, match=r"size 8x9: .*width of 2"):
        pipe.generate(PROMPT, [0], size=(8, 9))
    with pytest.raises(ValueError, match="known_frames"):
        pipe.generate(
            PROMPT, [0], size=(8, 12), known_frames=torch.zeros(1, 3, 4, 8, 8),
            frame_mask=torch.ones(1, 4, dtype=torch.bool),
        )  # fmt: skip
    with pytest.raises(ValueError, match="unet3d model samples 4 frames of 8x8 only"):
        micro_pipeline().generate(PROMPT, [0], num_frames=6)


def test_generate_size_and_num_frames_options(tmp_path, capsys):
    _micro_pipeline().save(tmp_path / "dit")
    out = tmp_path / "v.gif"
    args = ["generate", PROMPT[0], "--model", str(tmp_path / "dit"), "--steps", "1"]
    assert cli.main([*args, "--size", "8x12", "--num-frames", "6", "-o", str(out)]) == 0
    video, _ = read_video(out)
    assert video.shape == (3, 6, 8, 12)
    assert cli.main([*args, "--size", "8x9"]) == 2
    assert "--size/--num-frames: size 8x9" in capsys.readouterr().err
    assert cli.main([*args, "--size", "big"]) == 2
    assert "--size must be HxW" in capsys.readouterr().err
    assert cli.main(["generate", PROMPT[0], "--size", "16x16", "--steps", "1"]) == 2
    assert "other lengths and sizes need a DiT" in capsys.readouterr().err
    assert cli.main([*args, "--size", "8x12", "--num-frames", "6", "--long", "extend"]) == 2
    assert "--size goes with a DiT's clips made in one pass" in capsys.readouterr().err
