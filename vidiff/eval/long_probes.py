"""Long-video probes: does a long clip keep following its caption, and how does it drift?

A model of 16-frame clips extended to hundreds of frames can lose its object (it leaves the frame, or
fades), change its colour or shape (identity drift), slow down, shrink or grow, or flicker more as
errors accumulate (the drift studied by Phenaki, NUWA-XL and FIFO-Diffusion). These pure functions
measure each as a curve over the clip's windows (``window`` frames each, the model's native length)
plus one number, on the same object extraction as :mod:`vidiff.eval.probes`:

* adherence per window: colour and shape of :func:`~vidiff.eval.probes.score_shapes` on the window,
  and the axis of motion (a bouncing object reverses its direction, but stays on its axis);
* the captioned direction per window (``direction_ok``, reported, not part of adherence: a clip
  between walls reverses; a model trained without walls may do so too);
* presence per frame: the expected objects are all detected;
* speed (median displacement per frame over 4-frame spans) and size (median area) per window, and their drift: the
  last quarter of the clip against the first (``last / first - 1``; 0 = no drift);
* background flicker per window;
* for balls, trajectory error per window against a reference (ADE, :func:`window_ade`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidiff.eval.extract import detect_objects, track_objects
from vidiff.eval.probes import (
    ade_fde,
    direction_of,
    fit_line,
    parse_shapes_caption,
    score_shapes,
    static_threshold,
)

AXIS = {"left": 0, "right": 0, "up": 1, "down": 1}


def window_starts(num_frames: int, window: int) -> list[int]:
    """First frames of the whole windows of a clip (one window when the clip is shorter)."""
    if window < 2:
        raise ValueError(f"window must be >= 2 frames, got {window}")
    return list(range(0, max(num_frames - window, 0) + 1, window))


def drift(values: np.ndarray) -> float:
    """``median(last quarter) / median(first quarter) - 1`` over the finite values of a per-frame
    series; NaN when either quarter has none (or the first is 0)."""
    v = np.asarray(values, dtype=np.float64)
    q = max(len(v) // 4, 1)
    first, last = v[:q][np.isfinite(v[:q])], v[-q:][np.isfinite(v[-q:])]
    if not len(first) or not len(last) or np.median(first) == 0:
        return math.nan
    return float(np.median(last) / np.median(first) - 1)


def speeds(centroids: np.ndarray, span: int = 4) -> np.ndarray:
    """Per-frame speed (px/frame) of a track ``(T, 2)``: the displacement over ``span`` frames
    divided by ``span`` (which averages out the pixel quantisation of detected centroids; a span
    holding a bounce reads low, which the medians of the probes ignore), NaN where either end is
    missing or past the clip."""
    c = np.asarray(centroids, np.float64)
    out = np.full(len(c), np.nan)
    if len(c) > span:
        out[:-span] = np.linalg.norm(c[span:] - c[:-span], axis=1) / span
    return out


def motion_axis(centroids: np.ndarray) -> int | None:
    """0 (x) or 1 (y): the axis along which a track travelled farther, summing absolute steps (so
    bounces do not cancel); None without two consecutive detections."""
    steps = np.abs(np.diff(np.asarray(centroids, np.float64), axis=0))
    steps = steps[np.isfinite(steps).all(axis=1)]
    if not len(steps):
        return None
    return int(steps[:, 1].sum() > steps[:, 0].sum())


JUMP = 3.0  # px per frame at 32 px


def jumps(centroids: np.ndarray, limit: float) -> int:
    """Frames of a track ``(T, 2)`` whose centre moved more than ``limit`` px from the frame
    before (both present)."""
    step = np.linalg.norm(np.diff(np.asarray(centroids, np.float64), axis=0), axis=1)
    return int(np.sum(np.nan_to_num(step, nan=0.0) > limit))


def score_long_shapes(
    video: torch.Tensor | np.ndarray, caption: str, window: int = 16, judge=None
) -> dict:
    """Long-video verdict for one MovingShapes clip ``(C, T, H, W)`` in ``[0, 1]``.

    Returns ``curves`` (per window: ``frame`` its first frame, ``colour_ok``, ``shape_ok``,
    ``axis_ok``, ``direction_ok``, ``presence``, ``speed`` px/frame, ``area`` px, ``flicker``; and ``presence_frames``
    per frame) and the summaries ``adherence`` (share of windows with colour, shape and axis right),
    ``presence``, ``direction`` (share of windows moving as captioned), ``speed_drift``,
    ``size_drift``, ``flicker``, and ``jumps``: frames where the object's centre moves more than
    :data:`JUMP` px (3x MovingShapes' fastest speed at 32 px, scaled with the frame): a
    discontinuity, such as a new window that does not continue the last.
    """
    if judge is None:
        from vidiff.eval.judges import load_shape_judge

        judge = load_shape_judge()
    v = (
        video.detach().cpu().float().numpy()
        if isinstance(video, torch.Tensor)
        else np.asarray(video)
    )
    expected = parse_shapes_caption(caption)
    dets = detect_objects(v)
    present = np.array([len(d) >= len(expected) for d in dets], dtype=np.float64)
    track = track_objects(dets, len(expected))[0]  # the first named object
    steps = speeds(track.centroids)  # (T,), NaN where missing
    areas = track.areas.astype(np.float64)
    axis = AXIS[expected[0]["direction"]]
    curves: dict[str, list] = {
        k: [] for k in ("frame", "colour_ok", "shape_ok", "axis_ok", "direction_ok")
    }
    curves.update({k: [] for k in ("presence", "speed", "area", "flicker")})
    for s in window_starts(v.shape[1], window):
        sl = slice(s, s + window)
        verdict = score_shapes(v[:, sl], caption, judge=judge)
        curves["frame"].append(s)
        curves["colour_ok"].append(verdict["colour_ok"])
        curves["shape_ok"].append(verdict["shape_ok"])
        curves["axis_ok"].append(float(motion_axis(track.centroids[sl]) == axis))
        moving = direction_of(fit_line(track.centroids[sl])[1], static_threshold(v.shape[-1]))
        curves["direction_ok"].append(float(moving == expected[0]["direction"]))
        curves["presence"].append(float(present[sl].mean()))
        curves["speed"].append(_nanmedian(steps[sl]))
        curves["area"].append(_nanmedian(areas[sl]))
        curves["flicker"].append(verdict["flicker"])
    ok = np.array([curves[k] for k in ("colour_ok", "shape_ok", "axis_ok")]) >= 1.0
    return {
        "caption": caption,
        "num_frames": int(v.shape[1]),
        "adherence": float(ok.all(axis=0).mean()),
        "presence": float(present.mean()),
        "direction": float(np.mean(curves["direction_ok"])),
        "speed_drift": drift(steps),
        "size_drift": drift(np.where(present > 0, areas, np.nan)),
        "flicker": float(np.mean(curves["flicker"])),
        "jumps": jumps(track.centroids, JUMP * min(v.shape[-2:]) / 32),
        "curves": {**curves, "presence_frames": present.tolist()},
    }


# What a long video must keep (issue 19's bars), per video: colour and shape right in >= 90% of the
# windows, the object present in >= 95% of the frames, still moving in the last quarter (median
# speed >= MOVING px/frame at 32 px), its size within +-30% of the start, background flicker <= 0.01.
MOVING = 0.25
BAR_KEYS = ("colour_shape", "presence", "moving", "size_drift", "flicker")


def long_bars(verdict: dict) -> dict:
    """The bars of one video's :func:`~vidiff.eval.long_probes.score_long_shapes` verdict: the
    share of windows with colour and shape right, whether it still moves at the end, and ``passes``
    (every bar met)."""
    c = verdict["curves"]
    colour_shape = float(
        np.mean([a >= 1 and b >= 1 for a, b in zip(c["colour_ok"], c["shape_ok"])])
    )
    speed = np.asarray(c["speed"], dtype=np.float64)
    last = speed[-max(1, len(speed) // 4) :]
    moving = bool(np.isfinite(last).any() and np.nanmedian(last) >= MOVING)
    size = verdict["size_drift"]
    passes = (
        colour_shape >= 0.9
        and verdict["presence"] >= 0.95
        and moving
        and bool(np.isfinite(size) and abs(size) <= 0.3)
        and verdict["flicker"] <= 0.01
    )
    return {"colour_shape": colour_shape, "moving": float(moving), "passes": float(passes)}


def window_ade(pred: np.ndarray, ref: np.ndarray, window: int = 16) -> dict:
    """Trajectory error of centroids ``(T, K, 2)`` (or ``(T, 2)``) against a reference rollout:
    ``ade`` per window (the curve), and the whole clip's ``ade`` / ``fde``; missing (NaN) frames
    are skipped as in :func:`~vidiff.eval.probes.ade_fde`."""
    p, r = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if p.shape != r.shape:
        raise ValueError(f"trajectories {p.shape} and {r.shape} differ in shape")
    if p.ndim == 3:  # (T, K, 2) -> (K, T, 2), the layout of ade_fde
        p, r = p.transpose(1, 0, 2), r.transpose(1, 0, 2)
    ade, fde = ade_fde(p, r)
    t = p.shape[-2]
    curve = [
        ade_fde(p[..., s : s + window, :], r[..., s : s + window, :])[0]
        for s in window_starts(t, window)
    ]
    return {"ade": ade, "fde": fde, "window_ade": curve}


def _nanmedian(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else math.nan
