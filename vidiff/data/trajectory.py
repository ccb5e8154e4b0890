"""Trajectories: where an object's centre is in each frame, and the heat map a network reads.

A trajectory is a polyline of pixel coordinates ``x0,y0:x1,y1[:x2,y2 ...]`` (x right, y down, pixel
centres at integer + 0.5, as the datasets' ``centroids``). :func:`parse_trajectory` reads and checks
one, :func:`spread_polyline` places T points along it at equal arc-length steps (constant speed over
the clip), and :func:`trajectory_heatmap` renders per-frame centroids as the ``(1, T, H, W)``
Gaussian heat map of the ``trajectory`` conditioning (:mod:`vidiff.nn.control`). All three are pure.
"""

from __future__ import annotations

import numpy as np
import torch

# Heat-map width at a 32 px frame; it scales with the frame size like the datasets' lengths.
HEATMAP_SIGMA = 1.5


def parse_trajectory(text: str, size: int | tuple[int, int]) -> np.ndarray:
    """``"x0,y0:x1,y1[:...]"`` -> ``(K, 2)`` float64 points, K >= 2, each inside the frame.

    ``size``: the frame, ``S`` or ``(H, W)``; a point must satisfy ``0 <= x <= W`` and
    ``0 <= y <= H``. A malformed string or a point outside is a ``ValueError`` naming it.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if not isinstance(text, str) or not text.strip():
        raise ValueError("trajectory is empty; expected x0,y0:x1,y1[:x2,y2 ...] in pixels")
    parts = text.strip().split(":")
    if len(parts) < 2:
        raise ValueError(
            f"trajectory {text!r} has one point; give at least two as x0,y0:x1,y1 (pixels)"
        )
    points = []
    for i, part in enumerate(parts):
        xy = part.split(",")
        try:
            x, y = (float(v) for v in xy) if len(xy) == 2 else (None, None)
        except ValueError:
            x = y = None
        if x is None or not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(
                f"trajectory point {i} {part!r} is not x,y (two numbers); "
                "expected x0,y0:x1,y1[:x2,y2 ...] in pixels"
            )
        if not (0 <= x <= w and 0 <= y <= h):
            raise ValueError(
                f"trajectory point {i} ({x:g}, {y:g}) is outside the {w}x{h} frame "
                f"(0 <= x <= {w}, 0 <= y <= {h})"
            )
        points.append((x, y))
    return np.asarray(points, dtype=np.float64)


def spread_polyline(points: np.ndarray, num_frames: int) -> np.ndarray:
    """``(K, 2)`` polyline -> ``(T, 2)`` centres at equal arc-length steps from first to last point
    (frame 0 at the start, frame T-1 at the end); a polyline of length 0 stays put."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"a polyline needs (K >= 2, 2) points, got shape {points.shape}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # (K,)
    if arc[-1] == 0:
        return np.repeat(points[:1], num_frames, axis=0)
    at = np.linspace(0.0, arc[-1], num_frames) if num_frames > 1 else np.zeros(1)
    return np.stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])], -1)


def trajectory_heatmap(
    centroids: torch.Tensor | np.ndarray, size: int | tuple[int, int], sigma: float | None = None
) -> torch.Tensor:
    """Per-frame centres ``(T, 2)`` -> heat map ``(1, T, H, W)`` float32 in [0, 1]: a Gaussian of
    width ``sigma`` px (default :data:`HEATMAP_SIGMA` scaled by ``W / 32``) peaking at 1 on each
    frame's centre. ``(N, T, 2)`` (several objects) -> their pointwise maximum."""
    h, w = (size, size) if isinstance(size, int) else size
    c = torch.as_tensor(np.asarray(centroids), dtype=torch.float32)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[-1] != 2:
        raise ValueError(f"centroids must be (T, 2) or (N, T, 2), got {tuple(c.shape)}")
    sigma = HEATMAP_SIGMA * w / 32 if sigma is None else sigma
    ys = torch.arange(h, dtype=torch.float32) + 0.5  # pixel centres
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    dx2 = (xs[None, None, None, :] - c[..., 0, None, None]) ** 2  # (N, T, 1, W)
    dy2 = (ys[None, None, :, None] - c[..., 1, None, None]) ** 2  # (N, T, H, 1)
    heat = torch.exp(-(dx2 + dy2) / (2 * sigma**2))  # (N, T, H, W)
    return heat.amax(0, keepdim=True)  # (1, T, H, W)
