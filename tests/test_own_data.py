"""docs/own-data.md runs: every `vidiff` command in its bash blocks, in order, on tiny settings."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from vidiff.cli import main
from vidiff.data.video_io import read_video

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "own-data.md"

# Appended to the documented commands (the last value of an option or override wins): fewer clips,
# steps and sampler steps, so that the walkthrough runs in a test.
TINY = {
    ("data", "export"): ["--n", "6"],
    ("train",): ["train.steps=2", "train.batch_size=2", "train.warmup_steps=1"],
    ("generate",): ["--steps", "2"],
}


def walkthrough_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("vidiff ")]


def test_the_own_data_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    commands = walkthrough_commands()
    assert [c[0] for c in commands] == ["data", "data", "train", "export", "generate"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    for argv in commands:
        extra = next((v for k, v in TINY.items() if tuple(argv[: len(k)]) == k), [])
        assert main(argv + extra) == 0, argv
    out = capsys.readouterr().out
    assert "vidiff: data: my-clips: 6 files used\n" in out  # the trainer's report: all captioned
    assert (tmp_path / "preview.mp4").is_file()
    assert (tmp_path / "my-model" / "config.json").is_file()
    video, _ = read_video(tmp_path / "my-video.mp4")
    assert video.shape == (3, 16, 32, 32)


def test_the_folder_configs_build_their_dataset(tmp_path):
    from vidiff.commands.data import export
    from vidiff.config import load_config
    from vidiff.train.data import build_train_datasets, ensure_vocabulary

    export("shapes", n=2, out=str(tmp_path / "clips"), size=64)
    for name, size in (("folder-unet-tiny", 32), ("folder-unet-small", 64)):
        config = load_config(ROOT / "configs" / f"{name}.yaml", [f"data.root={tmp_path / 'clips'}"])
        videos, images = build_train_datasets(config.data, config.train.seed)
        ensure_vocabulary(config, videos, images)
        assert len(videos) == 2 and images is None
        assert videos[0]["video"].shape == (3, 16, size, size)
        words = {w for c in videos.captions() for w in c.split()}
        assert len(words) > 3 and set(config.model.text["vocab"]) == words  # from the manifest
