"""Video I/O round trips (mp4 within codec tolerance, gif and png exact) and the captioned sheet."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidiff.data.shapes import MovingShapes
from vidiff.data.sheet import make_sheet
from vidiff.data.video_io import probe_video, read_video, write_video


def quantised(video: torch.Tensor) -> torch.Tensor:
    """What an 8-bit file can hold exactly."""
    return (video * 255).round() / 255


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return quantised(MovingShapes(4, seed=3)[1]["video"])  # (3, 16, 32, 32), few colours


def smooth_video(t: int = 8, h: int = 32, w: int = 32) -> torch.Tensor:
    """Gradients and a soft moving blob: content that 4:2:0 chroma can represent."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    frames = []
    for i in range(t):
        blob = torch.exp(-((x - 0.2 - 0.05 * i) ** 2 + (y - 0.5) ** 2) / 0.05)
        frames.append(torch.stack([0.2 + 0.6 * x, 0.3 + 0.5 * blob, 0.8 - 0.6 * y]))
    return quantised(torch.stack(frames, 1))


def test_mp4_round_trip_within_codec_tolerance(tmp_path, clip):
    path = tmp_path / "clip.mp4"
    write_video(clip, path, fps=8)
    back, fps = read_video(path)
    assert back.shape == clip.shape and back.dtype == torch.float32
    assert fps == pytest.approx(8.0)
    err = (back - clip).abs()
    # Measured: mean 0.009, max 0.43 — the max is 4:2:0 chroma at saturated 1-px colour edges.
    assert err.mean() < 0.015
    smooth = smooth_video()
    write_video(smooth, path, fps=12)
    back, fps = read_video(path)
    assert fps == pytest.approx(12.0)
    # Measured: max 0.055, mean 0.010 (the 8-bit limited-range yuv420p floor is ~0.009 even at crf 0).
    assert (back - smooth).abs().max() < 0.08
    assert (back - smooth).abs().mean() < 0.015


def test_mp4_is_browser_friendly_and_handles_odd_sizes(tmp_path):
    video = smooth_video(5, 33, 31)
    path = tmp_path / "odd.mp4"
    write_video(video, path, fps=8)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: index before the payload
    back, _ = read_video(path)
    assert back.shape == (3, 5, 34, 32)  # padded to even by edge replication
    assert (back[:, :, :33, :31] - video).abs().mean() < 0.01
    assert probe_video(path) == (5, 8.0, (34, 32))


def test_gif_round_trip_exact_with_repeated_frames(tmp_path, clip):
    video = torch.cat(
        [clip, clip[:, -1:].expand(-1, 3, -1, -1)], 1
    )  # 3 identical frames at the end
    path = tmp_path / "clip.gif"
    write_video(video, path, fps=8)
    back, fps = read_video(path)
    assert back.shape == video.shape
    assert torch.equal(back, video)
    assert fps == pytest.approx(8.0, rel=0.05)
    with Image.open(path) as im:
        assert im.info.get("loop") == 0  # loop forever
        assert im.n_frames == video.shape[1]


def test_gif_many_colours_is_quantised(tmp_path):
    video = smooth_video()
    path = tmp_path / "smooth.gif"
    write_video(video, path, fps=8)
    back, _ = read_video(path)
    assert back.shape == video.shape
    assert (back - video).abs().mean() < 0.02


def test_png_filmstrip_round_trip_and_uint8_input(tmp_path, clip):
    path = tmp_path / "strip.png"
    u8 = (clip * 255).round().to(torch.uint8)
    write_video(u8, path, fps=4)
    with Image.open(path) as im:
        assert im.size == (32 * 16, 32)  # (W, H): frames side by side
    back, fps = read_video(path)
    assert torch.equal(back, clip) and fps == 4.0
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((5, 7, 3), 255, np.uint8)).save(plain)
    one, fps = read_video(plain)
    assert one.shape == (3, 1, 5, 7) and fps == 0.0 and one.min() == 1.0


def test_io_errors_name_the_culprit(tmp_path, clip):
    with pytest.raises(ValueError, match="suffix"):
        write_video(clip, tmp_path / "x.avi2")
    with pytest.raises(ValueError, match="channels"):
        write_video(torch.zeros(4, 2, 8, 8), tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        write_video(torch.zeros(2, 8, 8), tmp_path / "x.gif")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="bad.mp4"):
        read_video(bad)


def test_make_sheet_layout_captions_and_hold_last_frame():
    a = torch.zeros(3, 4, 8, 8)
    a[0, :, 2, 3] = 1.0  # one red pixel
    b = torch.rand(1, 2, 8, 8)  # grayscale, shorter
    sheet = make_sheet([a, b], scale=2, pad=1)
    assert sheet.shape == (3, 4, 1 + 16 + 1, 1 + 16 + 1 + 16 + 1)
    # nearest upscale: the red pixel becomes a 2x2 block at (1 + 2*2, 1 + 2*3)
    assert torch.equal(
        sheet[:, 0, 5:7, 7:9], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 2, 2)
    )
    assert torch.all(sheet[:, :, 0] == 0.3) and torch.all(sheet[:, :, :, 17] == 0.3)  # grey gutters
    # the shorter video holds its last frame
    tile_b = sheet[:, :, 1:17, 18:34]
    assert torch.equal(tile_b[:, 2], tile_b[:, 1]) and torch.equal(tile_b[:, 3], tile_b[:, 1])
    assert torch.allclose(tile_b[0, 1], b[0, 1].repeat_interleave(2, 0).repeat_interleave(2, 1))
    with_caps = make_sheet([a, b], captions=["a red dot", "noise"], scale=4, pad=2)
    assert with_caps.shape[2] > 2 + 32 + 2
    band = with_caps[:, 0, 2 + 32 : -2, 2 : 2 + 32]  # caption band under the first tile
    assert band.max() > 0.9 and (band > 0.5).float().mean() > 0.02  # text was drawn
    batch = make_sheet(torch.rand(5, 3, 2, 4, 4), ncols=2, scale=1, pad=0)
    assert batch.shape == (3, 2, 12, 8)  # 3 rows x 2 cols
    with pytest.raises(ValueError, match="captions"):
        make_sheet([a, b], captions=["one"])
