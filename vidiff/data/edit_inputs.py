"""The inputs of an edit: a clip fitted to a model's frame count and size, and a region mask.

A mask is given as ``box:x0,y0,x1,y1`` (pixels of the input, ``x1``/``y1`` exclusive), an image (the
same mask for every frame) or a mask video (one mask per frame); white (luminance > 0.5) marks what is
regenerated. It is built at the input's own size and then resized and cut exactly as the input is,
so it stays on the same pixels. Functions here return what they changed as notices (one line each)
for the command to print; they never print.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vidiff.data.folder import resize_crop
from vidiff.data.video_io import read_video

_BOX = re.compile(r"^box:\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*$")


def fit_clip(
    video: torch.Tensor, num_frames: int, size: int, name: str = "the input"
) -> tuple[torch.Tensor, list[str]]:
    """``(C, T, H, W)`` -> ``(C, num_frames, size, size)`` and notices: a longer clip is cut to its first
    ``num_frames`` frames, another size is resized to cover the square and centre-cropped; a shorter
    clip is refused (ValueError naming ``name``): inventing frames is not an edit."""
    c, t, h, w = video.shape
    if t < num_frames:
        raise ValueError(
            f"{name} has {t} frame{'s' if t != 1 else ''}; the model makes {num_frames}-frame clips, "
            f"so give at least {num_frames} frames"
        )
    notes = []
    if t > num_frames:
        video = video[:, :num_frames]
        notes.append(f"{name}: cut from {t} to its first {num_frames} frames (the model's length)")
    if (h, w) != (size, size):
        video = resize_crop(video, (size, size))
        notes.append(f"{name}: resized from {w}x{h} to {size}x{size} (centre-cropped to a square)")
    return video, notes


def box_mask(spec: str, num_frames: int, height: int, width: int) -> torch.Tensor:
    """``box:x0,y0,x1,y1`` -> a ``(T, H, W)`` bool mask, True inside the box in every frame; ValueError
    when the spec does not parse or the box is empty or leaves the ``width`` x ``height`` frame."""
    m = _BOX.match(spec)
    if m is None:
        raise ValueError(
            f"mask {spec!r}: a box is written box:x0,y0,x1,y1 (pixels, x1/y1 exclusive)"
        )
    x0, y0, x1, y1 = map(int, m.groups())
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(
            f"mask {spec!r}: the box must lie inside the {width}x{height} input with x0 < x1 and "
            f"y0 < y1 (0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})"
        )
    mask = torch.zeros(num_frames, height, width, dtype=torch.bool)
    mask[:, y0:y1, x0:x1] = True
    return mask


def read_mask(spec: str, num_frames: int, height: int, width: int) -> torch.Tensor:
    """A mask for an input of ``num_frames`` frames of ``width`` x ``height``: ``(T, H, W)`` bool.

    ``spec``: ``box:...`` (:func:`box_mask`), an image file (every frame) or a video file (at least
    ``num_frames`` frames; extra ones are dropped with the input's). A file of another size than the
    input is refused: a mask must mark the input's own pixels. An all-False mask is refused too.
    """
    if spec.startswith("box:"):
        return box_mask(spec, num_frames, height, width)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path} (or give box:x0,y0,x1,y1)")
    frames, _ = read_video(path)  # (3, t, h, w); an image is one frame
    _, t, h, w = frames.shape
    if (h, w) != (height, width):
        raise ValueError(
            f"mask {path} is {w}x{h} but the input is {width}x{height}; make them match"
        )
    if t == 1:
        frames = frames.expand(-1, num_frames, -1, -1)
    elif t < num_frames:
        raise ValueError(f"mask video {path} has {t} frames but the input has {num_frames}")
    mask = frames[:, :num_frames].mean(0) > 0.5  # luminance-ish: white regenerates
    if not mask.any():
        raise ValueError(f"mask {path} marks nothing (white = regenerate, black = keep)")
    return mask


def fit_mask(mask: torch.Tensor, num_frames: int, size: int) -> torch.Tensor:
    """Cut and resize a ``(T, H, W)`` mask exactly as :func:`fit_clip` does its input; a pixel that is
    partly inside after resizing is regenerated (the edit never keeps a pixel it should change)."""
    m = mask[:num_frames].float()[None]  # (1, T, H, W) as a 1-channel clip
    if m.shape[-2:] != (size, size):
        m = resize_crop(m, (size, size))
    return m[0] > 0.01
