"""VideoFolder / ImageFolder on files the test writes itself: good, corrupt, empty, too short, images."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from vidiff.data import build_dataset
from vidiff.data.folder import ImageFolder, VideoFolder, load_image
from vidiff.data.video_io import write_video


def counter_video(t: int, h: int = 12, w: int = 12) -> torch.Tensor:
    """Frame i is a flat grey of level 8*i/255, so a decoded frame tells its index (gif is exact)."""
    levels = torch.arange(t, dtype=torch.float32) * 8 / 255
    return levels[None, :, None, None].expand(3, t, h, w).clone()


def frame_ids(video: torch.Tensor) -> list[int]:
    return (video[0, :, 0, 0] * 255 / 8).round().int().tolist()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "clips"
    (root / "sub").mkdir(parents=True)
    write_video(counter_video(24), root / "count.gif", fps=24)
    (root / "count.txt").write_text("a grey ramp\n")
    write_video(torch.rand(3, 20, 16, 24), root / "sub" / "noise.mp4", fps=8)
    write_video(counter_video(5), root / "short.gif", fps=8)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (root / "empty.webm").write_bytes(b"")
    Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(root / "sub" / "still.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "metadata.csv").write_text(
        "file_name,text\nsub/noise.mp4,random pixels\ncount.gif,ignored\n"
    )
    (root / "sub" / "metadata.jsonl").write_text(
        json.dumps({"path": "still.png", "caption": "a grey picture"}) + "\n"
    )
    (root / "notes.md").write_text("not media")
    return root


def build(root, **kwargs) -> tuple[VideoFolder, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = VideoFolder(root, **kwargs)
    return ds, [str(w.message) for w in caught]


def test_folder_skips_bad_files_once_each_and_reads_captions(folder):
    ds, messages = build(folder, num_frames=8, size=16, random_start=False)
    names = sorted(p.relative_to(folder).as_posix() for p in (e.path for e in ds.entries))
    assert names == ["count.gif", "sub/noise.mp4", "sub/still.png"]
    skipped = sorted(p.split("/")[-1] for p, _ in ds.skipped)
    assert skipped == ["broken.jpg", "corrupt.mp4", "empty.webm", "short.gif"]
    for name in skipped:  # exactly one warning per skipped file, naming it
        assert sum(name in m for m in messages) == 1
    assert any("too short" in m and "short.gif" in m for m in messages)
    items = {ds[i]["path"]: ds[i] for i in range(len(ds))}
    assert items["count.gif"]["caption"] == "a grey ramp"  # sidecar wins over metadata.csv
    assert items["sub/noise.mp4"]["caption"] == "random pixels"  # metadata.csv
    assert items["sub/still.png"]["caption"] == "a grey picture"  # metadata.jsonl in a subfolder
    assert items["count.gif"]["video"].shape == (3, 8, 16, 16)
    assert items["sub/noise.mp4"]["video"].shape == (
        3,
        8,
        16,
        16,
    )  # 16x24 resized to cover, cropped
    assert items["sub/still.png"]["video"].shape == (3, 1, 16, 16)  # an image is a 1-frame clip
    assert items["sub/still.png"]["video"].sub(200 / 255).abs().max() < 1e-5
    assert items["count.gif"]["gt"] is None
    assert frame_ids(items["count.gif"]["video"]) == list(range(8))  # fixed start, native fps
    assert ds.lengths == [8, 8, 1] and ds.captions() == [
        "a grey ramp",
        "random pixels",
        "a grey picture",
    ]


def test_folder_frame_stride_random_start_and_padding(folder):
    ds, _ = build(folder, num_frames=4, size=12, fps=8, random_start=False, include_images=False)
    assert frame_ids(ds[0]["video"]) == [0, 3, 6, 9]  # 24 fps -> 8 fps: stride 3
    ds, _ = build(folder, num_frames=6, size=12, random_start=True, seed=3, include_images=False)
    ids = frame_ids(ds[0]["video"])
    assert ids == list(range(ids[0], ids[0] + 6)) and 0 <= ids[0] <= 18
    assert frame_ids(ds[0]["video"]) == ids  # deterministic per (seed, epoch, index)
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        starts.add(frame_ids(ds[0]["video"])[0])
    assert len(starts) > 1  # epochs draw different starts
    ds, _ = build(
        folder, num_frames=8, size=12, min_frames=4, random_start=False, include_images=False
    )
    short = next(ds[i] for i in range(len(ds)) if ds[i]["path"] == "short.gif")
    assert frame_ids(short["video"]) == [0, 1, 2, 3, 4, 4, 4, 4]  # holds the last frame


def test_folder_survives_a_file_that_breaks_after_probing(folder):
    ds, _ = build(folder, num_frames=8, size=16, random_start=False, include_images=False)
    assert [ds[i]["path"] for i in range(len(ds))] == ["count.gif", "sub/noise.mp4"]
    (folder / "count.gif").write_bytes(b"GIF89a garbage")
    with pytest.warns(UserWarning, match="count.gif"):
        item = ds[0]
    assert item["path"] == "sub/noise.mp4"  # the next good item, deterministically
    assert any(p.endswith("count.gif") for p, _ in ds.skipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning for the same file
        assert ds[0]["path"] == "sub/noise.mp4"


def test_folder_errors_name_the_folder(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        VideoFolder(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mp4").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="nothing usable in .*bad"):
        build(bad)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        VideoFolder(tmp_path / "nowhere")
    (folder / "metadata.csv").write_text("video_path,label\nx,y\n")
    with pytest.raises(ValueError, match="metadata.csv"):
        VideoFolder(folder)


def test_image_folder_and_load_image(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = ImageFolder(folder, size=8)
        via_registry = build_dataset("images", root=str(folder), size=8)
    assert len(ds) == 1 == len(via_registry)
    item = ds[0]
    assert item["video"].shape == (3, 1, 8, 8) and item["caption"] == "a grey picture"
    img = load_image(folder / "sub" / "still.png", 6)
    assert img.shape == (3, 1, 6, 6)
    assert load_image(folder / "sub" / "still.png").shape == (3, 1, 10, 20)
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(folder / "broken.jpg")
    with pytest.raises(FileNotFoundError):
        load_image(folder / "nope.png")
