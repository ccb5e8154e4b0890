"""``vidiff data preview`` / ``vidiff data export``: files, manifest, and agreement with the dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidiff.cli import main
from vidiff.commands.data import export, preview
from vidiff.data import build_dataset, read_video, write_video


def test_preview_writes_a_captioned_sheet(tmp_path):
    out = tmp_path / "sheet.gif"
    assert main(["data", "preview", "shapes", "--n", "4", "--num-frames", "6", "-o", str(out)]) == 0
    sheet, fps = read_video(out)
    # 2x2 tiles of 32*4 px plus gutters and a caption band
    assert (
        sheet.shape[:2] == (3, 6)
        and sheet.shape[3] == 2 + 2 * (128 + 2)
        and sheet.shape[2] > 2 + 2 * (128 + 2)
    )
    assert fps == pytest.approx(8, rel=0.05)
    png = tmp_path / "digits.png"
    preview("digits", n=2, num_frames=3, out=str(png))
    strip, _ = read_video(png)
    assert strip.shape[1] == 3


def test_preview_of_a_folder_says_what_it_used_and_skipped(tmp_path, capsys):
    clips = tmp_path / "clips"
    assert (
        main(["data", "export", "shapes", "--n", "2", "--num-frames", "8", "-o", str(clips)]) == 0
    )
    (clips / "broken.mp4").write_bytes(b"not a video at all")
    capsys.readouterr()
    out = tmp_path / "sheet.gif"
    args = ["data", "preview", "folder", "--root", str(clips), "--n", "2", "--num-frames", "8"]
    assert main([*args, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 files used, 1 skipped (1 unreadable)" in printed and out.is_file()


def test_preview_bad_input_is_one_line_error(tmp_path, capsys):
    assert main(["data", "preview", "mnist", "-o", str(tmp_path / "x.gif")]) == 2
    assert "unknown dataset 'mnist'" in capsys.readouterr().err
    assert main(["data", "preview", "folder", "-o", str(tmp_path / "x.gif")]) == 2
    assert "--root" in capsys.readouterr().err


def test_export_manifest_matches_dataset(tmp_path):
    out = tmp_path / "export"
    export("shapes", n=3, split="heldout", seed=5, out=str(out), num_frames=8, fmt="gif")
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    ds = build_dataset("shapes", num_items=3, split="heldout", seed=5, num_frames=8)
    assert len(lines) == 3
    for i, row in enumerate(lines):
        item = ds[i]
        assert row["path"] == f"{i:05d}.gif" and row["caption"] == item["caption"]
        video, _ = read_video(out / row["path"])
        assert torch.equal(video, (item["video"] * 255).round() / 255)  # gif: exact
        (obj,) = row["gt"]["objects"]
        assert "masks" not in obj and obj["shape"] in ("circle", "square", "triangle")
        assert np.allclose(
            obj["centroids"], item["gt"]["objects"][0]["centroids"].numpy(), atol=1e-4
        )
        assert len(obj["boxes"]) == 8 and len(obj["boxes"][0]) == 4
        assert row["split"] == "heldout" and row["gt"]["split"] == "heldout"


def test_export_balls_mp4_and_folder(tmp_path):
    out = tmp_path / "balls"
    assert main(["data", "export", "balls", "--n", "2", "-o", str(out), "--num-frames", "5"]) == 0
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == ["00000.mp4", "00001.mp4"]
    obj = rows[0]["gt"]["objects"][0]
    assert len(obj["velocities"]) == 5 and isinstance(obj["bounce_frames"], list)
    assert read_video(out / "00000.mp4")[0].shape == (3, 5, 32, 32)
    src = tmp_path / "mine"
    write_video(torch.rand(3, 6, 10, 10), src / "a.gif", fps=8)
    (src / "a.txt").write_text("my clip")
    export("folder", n=5, root=str(src), out=str(tmp_path / "f"), num_frames=4, size=8, fmt="png")
    (row,) = [json.loads(x) for x in (tmp_path / "f" / "manifest.jsonl").read_text().splitlines()]
    assert row["caption"] == "my clip" and row["source"] == "a.gif" and row["gt"] is None
    assert read_video(tmp_path / "f" / row["path"])[0].shape == (3, 4, 8, 8)
    with pytest.raises(ValueError, match="fmt"):
        export("shapes", n=1, out=str(tmp_path / "z"), fmt="avi")
