"""The shipped latent DiT `shapes-dit`: small, measured to its bar, listed by `vidiff models`, and
`vidiff generate --model shapes-dit` makes the prompt -- the colour, and the motion the direction word
asks for -- at its trained shape and at another size and length (docs/latent-dit.md)."""

import json

import pytest
import torch

from tests.test_default_model import _pinned
from vidiff import cli
from vidiff.data.video_io import read_video
from vidiff.registry import ASSETS

MODEL = ASSETS / "shapes-dit"

pytestmark = pytest.mark.skipif(
    not (MODEL / "config.json").is_file(), reason="no shapes-dit in this checkout"
)


def test_shapes_dit_is_small_and_measured_to_its_bar():
    assert (MODEL / "model.safetensors").stat().st_size < 8 * 2**20
    row = json.loads((MODEL / "eval.json").read_text())["rows"][0]
    assert row["num_videos"] >= 256 and row["setting"].startswith("8 euler")
    assert row["adherence"] >= 0.95 and row["adherence_heldout"] >= 0.80
    assert max(row["flicker_median"], row["flicker_median_heldout"]) <= 0.01
    config = json.loads((MODEL / "config.json").read_text())
    assert config["model"]["arch"] == "dit" and config["model"]["vae_config"] is not None


def test_models_lists_it_as_a_latent_dit(capsys):
    assert cli.main(["models"]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("shapes-dit"))
    assert "latent DiT" in row and "16x32x32" in row and "8 euler" in row


def _centroid_x(frame: torch.Tensor) -> float:
    """The x centroid of the red pixels of a (3, H, W) frame."""
    red = ((frame[0] > 0.5) & (frame[1] < 0.3) & (frame[2] < 0.3)).float()
    assert red.sum() > 4, "no red object"
    xs = torch.arange(frame.shape[-1], dtype=torch.float32)
    return float((red.sum(0) * xs).sum() / red.sum())


@pytest.mark.parametrize("size,frames", [(None, None), ("32x48", 24)])
def test_generate_draws_the_prompt_and_its_motion(tmp_path, size, frames):
    out = tmp_path / "red.gif"
    args = ["generate", "a red circle moving right", "--model", "shapes-dit", "--seed", "3"]
    if size:
        args += ["--size", size, "--num-frames", str(frames)]
    assert cli.main([*args, "--out", str(out), "--no-progress"]) == 0
    video = read_video(out)[0]  # (3, T, H, W) in [0, 1]
    h, w = (32, 32) if size is None else (32, 48)
    assert video.shape == (3, frames or 16, h, w)
    start, end = _centroid_x(video[:, 0]), _centroid_x(video[:, -1])
    assert end - start > 4, (start, end)  # moving right, by several pixels


def test_shapes_dit_output_is_pinned():
    """Its text-to-video sample and one guided denoiser call: a refactor of the DiT, its position
    code, the layout prior, the VAE or the pipeline must leave them unchanged (to float rounding:
    the same with 1 or 2 torch threads)."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.load(MODEL)
    video = pipe.generate(["a red circle moving right"], [3])
    torch.testing.assert_close(
        video[0, :, 5, 10, 10], torch.tensor([0.0, 0.0025068, 0.0011050]), atol=2e-6, rtol=0
    )
    _pinned(video, [1626.2968, 1467.3666, -47.7976])
    x = torch.randn(2, *pipe.sample_shape, generator=torch.Generator().manual_seed(0))
    prompts = ["a green triangle moving left", "a white circle"]
    den, cond = pipe.guided(pipe.encode_prompts(prompts), 3.0, 2)
    with torch.no_grad():
        d = den(x * 3, torch.tensor([3.0, 0.5]), **cond)
    _pinned(d, [-290.4322, 13672.2139, 146.2389])
