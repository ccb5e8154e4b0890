"""`vidiff sample` / `vidiff generate` on a micro model exported by the test itself."""

import json

import pytest
import torch
from PIL import Image

from tests.test_pipeline import micro_pipeline
from vidiff import cli
from vidiff.commands import sample as commands
from vidiff.data.video_io import read_video


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    micro_pipeline().save(path)
    return path


def test_sample_one_prompt(model_dir, tmp_path):
    out = tmp_path / "one.gif"
    assert (
        cli.main(
            [
                "sample",
                "--prompt",
                "a red circle moving right",
                "--model",
                str(model_dir),
                "-o",
                str(out),
                "--steps",
                "2",
            ]
        )
        == 0
    )
    video, _ = read_video(out)
    assert video.shape == (3, 4, 8, 8)


def test_sample_prompts_file_writes_manifest(model_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving right\n\n# comment\na blue square moving up\n")
    out_dir = tmp_path / "many"
    cli.main(
        [
            "sample",
            "--model",
            str(model_dir),
            "--prompts",
            str(prompts),
            "--num-videos",
            "2",
            "--seed",
            "7",
            "--out-dir",
            str(out_dir),
            "--steps",
            "2",
            "-o",
            "x.mp4",
        ]
    )
    rows = [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["seed"]) for r in rows] == [
        ("a red circle moving right", 7),
        ("a red circle moving right", 8),
        ("a blue square moving up", 7),
        ("a blue square moving up", 8),
    ]
    for r in rows:
        assert (out_dir / r["path"]).suffix == ".mp4" and (out_dir / r["path"]).stat().st_size > 0


def test_first_frame_is_used(model_dir, tmp_path):
    image = tmp_path / "first.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(image)
    paths = commands.generate(
        prompt="a red circle moving right",
        model=str(model_dir),
        first_frame=str(image),
        out=str(tmp_path / "i2v.gif"),
        steps=2,
    )
    video, _ = read_video(paths[0])
    assert torch.allclose(video[:, 0].mean((1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_clear_errors(model_dir, tmp_path, capsys):
    assert (
        cli.main(
            [
                "sample",
                "--prompt",
                "a purple circle moving right",
                "--model",
                str(model_dir),
                "-o",
                str(tmp_path / "x.gif"),
            ]
        )
        == 2
    )
    assert "purple" in capsys.readouterr().err
    with pytest.raises(ValueError, match="exactly one"):
        commands.generate(model=str(model_dir))


def test_generate_with_a_model_and_without_one(model_dir, tmp_path, monkeypatch):
    out = tmp_path / "gen.mp4"
    assert (
        cli.main(
            [
                "generate",
                "a green square moving up",
                "--model",
                str(model_dir),
                "-o",
                str(out),
                "--steps",
                "2",
            ]
        )
        == 0
    )
    assert read_video(out)[0].shape == (3, 4, 8, 8)
    monkeypatch.setattr(commands, "DEFAULT_MODEL", tmp_path / "absent")
    with pytest.raises(ValueError, match="--model"):
        commands.generate("a green square moving up")
