"""Tile several videos into one captioned sheet video, so a person can look at many clips at once."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

GUTTER = 0.3  # grey between tiles, so black-background clips stay apart
TEXT_MARGIN = 2


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _line_height() -> int:
    left, top, right, bottom = _font().getbbox("Ayg|")
    return int(bottom) + 2


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels with the default font (an over-long word is clipped)."""
    font, lines, line = _font(), [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width - 2 * TEXT_MARGIN:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


def _caption_image(lines: list[str], height: int, width: int) -> torch.Tensor:
    """White text on black -> ``(height, width)`` float in [0, 1]."""
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((TEXT_MARGIN, 1 + i * _line_height()), line, fill=255, font=_font())
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)


def _as_rgb_float(video: torch.Tensor) -> torch.Tensor:
    if video.ndim != 4 or video.shape[0] not in (1, 3):
        raise ValueError(
            f"each video must be (C, T, H, W) with C in (1, 3), got {tuple(video.shape)}"
        )
    video = video.detach().cpu()
    video = video.float() / 255 if video.dtype == torch.uint8 else video.float().clamp(0, 1)
    return video.expand(3, -1, -1, -1) if video.shape[0] == 1 else video


def make_sheet(
    videos: list[torch.Tensor] | torch.Tensor,
    captions: list[str] | None = None,
    ncols: int | None = None,
    scale: int = 4,
    pad: int = 2,
) -> torch.Tensor:
    """Tile videos into one ``(3, T, H, W)`` sheet in [0, 1], with each caption drawn below its tile.

    ``videos`` is a list of ``(C, T, H, W)`` (float in [0, 1] or uint8; C = 1 or 3) or a batch
    ``(B, C, T, H, W)``. Each tile is upscaled ``scale`` times by pixel repetition (nearest, so pixels
    stay honest); a shorter video holds its last frame; smaller tiles sit top-left in the largest tile's
    cell. ``ncols`` defaults to ``ceil(sqrt(B))``; ``pad`` is the grey gutter in pixels. Captions use
    PIL's default font, wrapped to the tile width.
    """
    if isinstance(videos, torch.Tensor):
        if videos.ndim != 5:
            raise ValueError(
                f"a batch of videos must be (B, C, T, H, W), got {tuple(videos.shape)}"
            )
        videos = list(videos)
    if not videos:
        raise ValueError("make_sheet needs at least one video")
    if captions is not None and len(captions) != len(videos):
        raise ValueError(f"got {len(captions)} captions for {len(videos)} videos")
    if scale < 1 or pad < 0:
        raise ValueError(f"scale must be >= 1 and pad >= 0, got scale={scale}, pad={pad}")
    videos = [_as_rgb_float(v) for v in videos]
    n = len(videos)
    ncols = min(n, ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    t = max(v.shape[1] for v in videos)
    th = max(v.shape[2] for v in videos) * scale
    tw = max(v.shape[3] for v in videos) * scale
    wrapped = [_wrap(c, tw) for c in captions] if captions is not None else None
    ch = max(len(w) for w in wrapped) * _line_height() + 2 if wrapped and any(wrapped) else 0
    cell_h, cell_w = th + ch, tw
    sheet = torch.full(
        (3, t, nrows * cell_h + (nrows + 1) * pad, ncols * cell_w + (ncols + 1) * pad), GUTTER
    )
    for i, v in enumerate(videos):
        row, col = divmod(i, ncols)
        y, x = pad + row * (cell_h + pad), pad + col * (cell_w + pad)
        if v.shape[1] < t:  # hold the last frame
            v = torch.cat([v, v[:, -1:].expand(-1, t - v.shape[1], -1, -1)], dim=1)
        v = v.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        sheet[:, :, y : y + cell_h, x : x + cell_w] = 0
        sheet[:, :, y : y + v.shape[2], x : x + v.shape[3]] = v
        if ch:
            text = _caption_image(wrapped[i], ch, cell_w)  # (ch, cell_w)
            sheet[:, :, y + th : y + th + ch, x : x + cell_w] = text
    return sheet
