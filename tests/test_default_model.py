"""The model shipped inside the package: it loads offline, `vidiff generate` uses it by default, an
unknown word is named, and it carries its measured figures (eval.json) for `vidiff demo`."""

import json

import pytest

from vidiff.cli import main
from vidiff.data.video_io import read_video
from vidiff.runtime import DEFAULT_MODEL

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL / "config.json").is_file(), reason="no default model in this checkout"
)


def test_the_default_model_is_small_and_measured():
    weights = DEFAULT_MODEL / "model.safetensors"
    assert weights.stat().st_size < 8 * 2**20  # a few MB inside the wheel
    figures = json.loads((DEFAULT_MODEL / "eval.json").read_text())
    row = figures["rows"][0]
    assert row["num_videos"] >= 64 and 0 <= row["adherence"] <= 1 and "adherence_heldout" in row
    config = json.loads((DEFAULT_MODEL / "config.json").read_text())
    assert config["video"]["num_frames"] >= 16 and config["video"]["size"] >= 32


def test_generate_uses_the_shipped_model(tmp_path):
    out = tmp_path / "circle.gif"
    assert main(["generate", "a red circle moving right", "--seed", "3", "--out", str(out)]) == 0
    frames = read_video(out)[0]
    assert frames.shape[0] == 3 and frames.shape[1] >= 16 and frames.shape[2] >= 32
    # The prompt's colour is there: the brightest pixels are red, not another palette colour.
    peak = frames.flatten(1)[:, frames.flatten(1).sum(0).argmax()]
    assert peak[0] > 0.6 and peak[1] < 0.3 and peak[2] < 0.3, peak


def test_an_unknown_word_is_named_with_the_vocabulary(tmp_path, capsys):
    assert main(["generate", "a purple circle moving right", "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert "purple" in err and "red" in err and "circle" in err


def _probe(t) -> list[float]:
    """Three sums that move with any change of ``t`` -- total, energy and a fixed random projection
    (so a local change shows too) -- in float64. Checked to a relative 1e-5, not as a hash of the
    bits: CPUs of other makes round float32 convolutions differently in the last bit."""
    import torch

    t = t.detach().double()
    w = torch.randn(t.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return [t.sum().item(), (t * t).sum().item(), (t * w).sum().item()]


def _pinned(t, expected: list[float]) -> None:
    import pytest

    assert _probe(t) == pytest.approx(expected, rel=1e-5, abs=1e-3)


def test_shipped_model_output_is_pinned():
    """The shipped model's outputs: text-to-video, continuation (frame masks) and one
    classifier-free-guided, frame-conditioned denoiser call. A refactor of the network, its
    conditioning or the pipeline must leave these probes unchanged (to float rounding: the same with
    1 or 2 torch threads, and across CPU makes); pixel values are checked first so a real drift
    shows its size."""
    import torch

    from vidiff.diffusion import frame_conditioned
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.load(DEFAULT_MODEL)
    t2v = pipe.generate(["a red circle moving right"], [3])
    torch.testing.assert_close(
        t2v[0, :, 5, 10, 10],
        torch.tensor([0.03349429368972778, 0.0030069947242736816, 0.003295332193374634]),
    )
    _pinned(t2v, [1767.9063, 1154.791, 22.4201])

    mask = torch.zeros(1, pipe.num_frames, dtype=torch.bool)
    mask[:, :4] = True
    cont = pipe.generate(["a blue square moving up"], [5], known_frames=t2v, frame_mask=mask)
    torch.testing.assert_close(cont[:, :, :4], t2v[:, :, :4], atol=1.5 / 255, rtol=0)
    torch.testing.assert_close(
        cont[0, :, 9, 20, 12],
        torch.tensor([0.0101088285446167, 0.0002510249614715576, 0.0038521885871887207]),
    )
    _pinned(cont, [1756.1765, 1212.0976, 8.3556])

    x = torch.randn(2, *pipe.sample_shape, generator=torch.Generator().manual_seed(0))
    prompts = ["a green triangle moving left", "a white circle"]
    den, cond = pipe.guided(pipe.encode_prompts(prompts), 2.0, 2)
    known = torch.zeros(2, pipe.num_frames, dtype=torch.bool)
    known[0, 0] = True
    known[1, ::5] = True
    den = frame_conditioned(den, x.clamp(-1, 1), known)
    with torch.no_grad():
        d = den(x * 0.8, torch.tensor([0.8, 0.3]), **cond)
    assert abs(d.sum().item() - (-33309.08)) < 0.05
    _pinned(d, [-33309.0762, 33795.8273, 352.8266])
