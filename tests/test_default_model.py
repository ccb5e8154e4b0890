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
