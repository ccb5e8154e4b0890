"""Folder data against broken and hostile files: each is skipped or read with a clear message naming
it, and every good file is still used (nothing lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidiff.commands.data import export
from vidiff.config import Config
from vidiff.data.folder import VideoFolder
from vidiff.data.video_io import write_video
from vidiff.train.data import ensure_vocabulary

GOOD = ["good/a.mp4", "good/b.gif"]


def good_clips(root: Path) -> None:
    """Two good 10-frame clips with sidecar captions."""
    write_video(
        torch.rand(3, 10, 16, 16, generator=torch.Generator().manual_seed(0)), root / GOOD[0]
    )
    write_video(torch.full((3, 10, 12, 20), 0.5), root / GOOD[1])
    (root / "good" / "a.txt").write_text("a noisy clip")
    (root / "good" / "b.txt").write_text("a grey clip")


def build(root: Path, **kwargs) -> tuple[VideoFolder, list[str]]:
    kwargs = {"num_frames": 8, "size": 16, "random_start": False, **kwargs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = VideoFolder(root, **kwargs)
    return ds, [str(w.message) for w in caught]


def used(ds: VideoFolder) -> list[str]:
    return sorted(e.path.relative_to(ds.root).as_posix() for e in ds.entries)


def named_once(messages: list[str], name: str, *words: str) -> str:
    """The one message naming ``name``; it must hold every word of ``words``."""
    hits = [m for m in messages if name in m]
    assert len(hits) == 1, (name, messages)
    assert all(w in hits[0] for w in words), (words, hits[0])
    return hits[0]


def encode(path: Path, h: int, w: int, frames: int) -> None:
    """A flat grey H.264 clip, encoded fast (huge sizes stay cheap: flat frames compress to nothing)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 120, np.uint8), format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_broken_media_files_are_skipped_by_reason_and_counted(tmp_path):
    good_clips(tmp_path)
    data = (tmp_path / GOOD[0]).read_bytes()
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 10)
    write_video(torch.rand(3, 1, 16, 16), tmp_path / "still.png")
    (tmp_path / "png.mp4").write_bytes((tmp_path / "still.png").read_bytes())
    (tmp_path / "still.png").unlink()
    (tmp_path / "headless.mp4").write_bytes(data[len(data) // 2 :])  # its header cut off
    with av.open(str(tmp_path / "zero.mkv"), "w") as container:  # a video stream, no frame
        stream = container.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()
    (tmp_path / "gif.mp4").write_bytes((tmp_path / GOOD[1]).read_bytes())  # a GIF in disguise
    (tmp_path / "gif.txt").write_text("a grey clip")
    ds, messages = build(tmp_path)
    assert used(ds) == ["gif.mp4", *GOOD]  # nothing good lost, whatever its suffix
    named_once(messages, "random.mp4", "unreadable")
    named_once(messages, "text.mp4", "unreadable")
    named_once(messages, "png.mp4", "not a video", "image (png)")
    named_once(messages, "zero.mkv", "unreadable")
    assert ds.summary == {
        "used": 3,
        "skipped": {"not a video": 1, "unreadable": 4},
        "uncaptioned": 0,
        "caption_warnings": 0,
    }
    assert "3 files used, 5 skipped (1 not a video, 4 unreadable)" in ds.report()


def test_truncated_clip_fails_only_where_it_is_cut_and_the_replacement_is_deterministic(tmp_path):
    good_clips(tmp_path)
    write_video(torch.rand(3, 40, 16, 16), tmp_path / "cut.mp4")
    data = (tmp_path / "cut.mp4").read_bytes()
    start = data.index(b"mdat")  # +faststart: the index comes first, so the probe sees 40 frames
    (tmp_path / "cut.mp4").write_bytes(data[: start + (len(data) - start) // 2])
    ds, _ = build(tmp_path, random_start=True, seed=1)
    assert len(ds) == 3 and ds.skipped == []
    cut = [e.path.name for e in ds.entries].index("cut.mp4")
    outcome = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(12):
            ds.set_epoch(epoch)
            outcome[epoch] = ds[cut]["path"]
    after = ds.entries[(cut + 1) % 3].path.relative_to(tmp_path).as_posix()
    assert {"cut.mp4", after} == set(outcome.values())  # early windows decode, late ones don't
    named_once([str(w.message) for w in caught], "cut.mp4", "failed to decode", "truncated")
    assert ds.summary["skipped"] == {"failed to decode": 1}
    # A fresh dataset (a resumed run, a DataLoader worker) picks the same item at every epoch.
    fresh, _ = build(tmp_path, random_start=True, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in reversed(range(12)):
            fresh.set_epoch(epoch)
            assert fresh[cut]["path"] == outcome[epoch]


def test_degenerate_sizes_are_skipped_by_rule(tmp_path):
    good_clips(tmp_path)
    write_video(torch.rand(3, 10, 1, 1), tmp_path / "dot.gif")  # 1x1 (GIF keeps odd sizes)
    encode(tmp_path / "sliver.mp4", 8000, 2, 10)  # 2 px wide, 8000 px tall
    write_video(torch.rand(3, 10, 10, 60), tmp_path / "wide.gif")  # 6:1
    ds, messages = build(tmp_path)
    assert used(ds) == GOOD
    named_once(messages, "dot.gif", "too small", "1x1")
    named_once(messages, "sliver.mp4", "too small", "2x8000")
    named_once(messages, "wide.gif", "extreme aspect", "60x10", "6:1", "max_aspect=4")
    loose, _ = build(tmp_path, max_aspect=8)  # the rules are options
    assert used(loose) == sorted([*GOOD, "wide.gif"])
    assert loose[used(loose).index("wide.gif")]["video"].shape == (3, 8, 16, 16)


def test_a_huge_clip_is_decoded_without_holding_it_at_full_size(tmp_path):
    encode(tmp_path / "huge.mp4", 1600, 1600, 16)
    script = textwrap.dedent(
        f"""
        import resource
        from vidiff.data.folder import VideoFolder
        ds = VideoFolder({str(tmp_path)!r}, num_frames=16, size=32, random_start=False)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert ds[0]["video"].shape == (3, 16, 32, 32)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    growth_mb = int(run.stdout.split()[-1])
    # The whole clip at full size is 123 MB as uint8 and 491 MB as float: resizing the clip after
    # decoding it grew the peak by 550-640 MB; resizing each frame as it comes, by about 100 MB.
    assert growth_mb < 250, growth_mb


def test_a_caption_that_is_not_utf8_skips_that_clip_and_names_the_file(tmp_path):
    good_clips(tmp_path)
    write_video(torch.rand(3, 10, 16, 16), tmp_path / "cafe.mp4")
    (tmp_path / "cafe.txt").write_bytes("un café au lait".encode("latin-1"))
    ds, messages = build(tmp_path)
    assert used(ds) == GOOD
    named_once(messages, "cafe.txt", "cafe.mp4", "bad caption", "not UTF-8", "0xe9")
    assert ds.summary["skipped"] == {"bad caption": 1}


def test_symlinks_and_folders_named_like_files(tmp_path):
    root = tmp_path / "root"
    elsewhere = tmp_path / "elsewhere"
    good_clips(elsewhere)
    root.mkdir()
    (root / "linked").symlink_to(elsewhere / "good", target_is_directory=True)  # a linked folder
    (root / "loop").symlink_to(root, target_is_directory=True)  # walked once, not forever
    (root / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # broken
    (root / "x.mp4").mkdir()  # a folder named like a video: searched as a folder
    write_video(torch.rand(3, 10, 16, 16), root / "x.mp4" / "inner.mp4")
    (root / "x.mp4" / "metadata.jsonl").mkdir()  # a folder named like a caption table
    ds, messages = build(root)
    assert used(ds) == ["linked/a.mp4", "linked/b.gif", "x.mp4/inner.mp4"]
    assert ds.captions()[:2] == ["a noisy clip", "a grey clip"]
    named_once(messages, "gone.mp4", "not a file", "broken symlink", "deleted.mp4")
    assert not any("x.mp4:" in m or "metadata.jsonl" in m for m in messages)


def test_a_bad_row_in_a_caption_table_is_named_with_its_line_and_the_rest_is_read(tmp_path):
    good_clips(tmp_path)
    for name in ("a.txt", "b.txt"):
        (tmp_path / "good" / name).unlink()
    rows = [
        json.dumps({"path": "a.mp4", "caption": "a noisy clip"}),
        '{"path": "b.gif", "caption": "a grey',  # cut off
        json.dumps({"file": "b.gif"}),  # no caption column
        json.dumps({"file_name": "b.gif", "text": "a grey clip"}),
        json.dumps({"path": "typo.mp4", "caption": "lost"}),
    ]
    (tmp_path / "good" / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    ds, messages = build(tmp_path)
    assert used(ds) == GOOD and ds.captions() == ["a noisy clip", "a grey clip"]
    table = str(tmp_path / "good" / "metadata.jsonl")
    named_once(messages, f"{table}, line 2", "not valid JSON")
    named_once(messages, f"{table}, line 3", "caption")
    named_once(messages, "typo.mp4", "1 caption rows name files that do not exist")
    assert ds.summary["caption_warnings"] == 3
    (tmp_path / "good" / "metadata.jsonl").unlink()
    csv = tmp_path / "good" / "metadata.csv"
    csv.write_bytes(b"path,caption\na.mp4,un caf\xe9\nb.gif,a plain grey clip\n")
    ds, messages = build(tmp_path)
    assert used(ds) == GOOD and ds.captions() == ["", "a plain grey clip"]
    named_once(messages, f"{csv}, line 2", "not UTF-8")
    assert ds.summary["uncaptioned"] == 1 and "1 without a caption" in ds.report()


def test_the_manifest_that_data_export_writes_gives_the_captions(tmp_path, capsys):
    export("shapes", n=3, out=str(tmp_path / "clips"), num_frames=8, size=16)
    rows = [json.loads(line) for line in (tmp_path / "clips" / "manifest.jsonl").open()]
    ds, messages = build(tmp_path / "clips")
    assert messages == []
    assert ds.captions() == [r["caption"] for r in rows] and all(ds.captions())


def test_no_captions_anywhere_says_where_captions_go(tmp_path):
    good_clips(tmp_path)
    for name in ("a.txt", "b.txt"):
        (tmp_path / "good" / name).unlink()
    ds, _ = build(tmp_path)
    assert "no captions found (captions go in a sidecar .txt" in ds.report()
    config = Config()
    config.data.name, config.data.root = "folder", str(tmp_path)
    with pytest.raises(ValueError, match="no captions found in .*sidecar .txt.*metadata.jsonl"):
        ensure_vocabulary(config, ds)


def test_the_command_line_names_each_skipped_file_on_one_line(tmp_path):
    good_clips(tmp_path)
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (tmp_path / "good" / "b.txt").write_bytes(b"caf\xe9")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("VIDIFF_DEBUG", None)
    args = ["data", "preview", "folder", "--root", str(tmp_path), "--num-frames", "8"]
    run = subprocess.run(
        [sys.executable, "-m", "vidiff.cli", *args, "-o", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert run.stderr.splitlines() == [
        f"vidiff: warning: VideoFolder: skipping {tmp_path / GOOD[1]}: bad caption: "
        f"{tmp_path / 'good' / 'b.txt'}, line 1: not UTF-8 text (byte 0xe9); save it as UTF-8",
        f"vidiff: warning: VideoFolder: skipping {tmp_path / 'random.mp4'}: unreadable: "
        "Invalid data found when processing input",
    ]
