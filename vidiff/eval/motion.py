"""Motion probes: the global (camera) motion of a clip by phase correlation, and trajectory error.

* :func:`phase_correlation` -- the translation between two frames from the normalised cross-power
  spectrum (Kuglin & Hines 1975), with a parabolic sub-pixel peak.
* :func:`scale_between` -- the zoom between two frames: the scale that, undone, gives the sharpest
  phase-correlation peak (a scale search; simpler to validate than a log-polar transform).
* :func:`read_camera` -- a clip's camera move: consecutive-frame translations summed, the zoom of
  frame pairs a few frames apart, and the dominant of the two named as a move of
  :data:`vidiff.data.camera.MOVES` with its speed.
* :func:`measure_trajectory`, :func:`trajectory_errors` -- the object's centre per frame and its
  distance to the requested one.

All are pure functions on tensors (``(C, T, H, W)`` clips in [0, 1]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

STATIC_SPEED = 0.15  # px/frame (content motion at the frame's edge): below this a clip is static
SCALES = torch.exp(torch.linspace(-0.35, 0.35, 71))  # the zoom search grid, 1 % steps in log


def _gray(frame: torch.Tensor) -> torch.Tensor:
    return frame.float().mean(0) if frame.ndim == 3 else frame.float()


def _hann(h: int, w: int) -> torch.Tensor:
    return torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)


def _parabola(c: float, left: float, right: float) -> float:
    """Offset of a parabola's vertex through (-1, left), (0, c), (1, right), in [-1/2, 1/2]."""
    denom = left - 2 * c + right
    return 0.0 if denom >= 0 else 0.5 * (left - right) / denom


def phase_correlation(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """``(dx, dy, peak)``: ``b`` shows ``a``'s content moved by ``(dx, dy)`` px (x right, y down);
    ``peak`` in (0, 1] is how clean the match is. Frames ``(H, W)`` or ``(C, H, W)``."""
    a, b = _gray(a), _gray(b)
    h, w = a.shape
    win = _hann(h, w)
    fa = torch.fft.fft2((a - a.mean()) * win)
    fb = torch.fft.fft2((b - b.mean()) * win)
    cross = fb * fa.conj()
    r = torch.fft.ifft2(cross / (cross.abs() + 1e-9)).real  # a delta at the displacement
    i = int(r.argmax())
    y, x = divmod(i, w)
    peak = float(r[y, x])
    # parabolic sub-pixel refinement along each axis (wrapping)
    fx = _parabola(peak, float(r[y, (x - 1) % w]), float(r[y, (x + 1) % w]))
    fy = _parabola(peak, float(r[(y - 1) % h, x]), float(r[(y + 1) % h, x]))
    dx = (x + w // 2) % w - w // 2 + fx  # wrap to [-W/2, W/2)
    dy = (y + h // 2) % h - h // 2 + fy
    return dx, dy, peak


def zoom_frame(frame: torch.Tensor, scale: float) -> torch.Tensor:
    """``frame`` ``(H, W)`` sampled at ``centre + (u - centre) * scale``: undoes a zoom-in by
    ``scale`` (border: replicated)."""
    h, w = frame.shape
    u = torch.linspace(-1 + 1 / w, 1 - 1 / w, w) * scale
    v = torch.linspace(-1 + 1 / h, 1 - 1 / h, h) * scale
    grid = torch.stack(torch.broadcast_tensors(u[None, :], v[:, None]), -1)[None]  # (1,H,W,2)
    return F.grid_sample(
        frame[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )[0, 0]


def scale_between(a: torch.Tensor, b: torch.Tensor, scales: torch.Tensor = SCALES) -> float:
    """The zoom from ``a`` to ``b``: ``s > 1`` when ``b`` shows ``a``'s content enlarged by ``s``
    (zoomed in). The scale whose undoing gives the highest phase-correlation peak."""
    a, b = _gray(a), _gray(b)
    peaks = torch.tensor([phase_correlation(a, zoom_frame(b, float(s)))[2] for s in scales])
    k = int(peaks.argmax())
    logs = scales.log()
    if 0 < k < len(scales) - 1:  # parabola through the neighbours, in log scale
        off = _parabola(float(peaks[k]), float(peaks[k - 1]), float(peaks[k + 1]))
        return math.exp(float(logs[k]) + off * float(logs[1] - logs[0]))
    return float(scales[k])


def read_camera(video: torch.Tensor, stride: int = 4) -> dict:
    """A clip's camera move: ``{"move", "speed", "dx", "dy", "zoom"}``.

    ``dx, dy``: the picture's mean motion in px/frame (consecutive-frame phase correlation);
    ``zoom``: percent per frame, from frame pairs ``stride`` apart. The move is the larger of the
    two motions -- a zoom counts as the motion it gives at the frame's edge, ``log zoom * W / 2``
    -- or ``static`` under :data:`STATIC_SPEED`. A camera panning left moves the picture right.
    ``speed``: px/frame for pans, percent per frame for zooms (0 for static).
    """
    if video.ndim != 4 or video.shape[1] < 2:
        raise ValueError(f"read_camera needs a (C, T >= 2, H, W) clip, got {tuple(video.shape)}")
    frames = video.float().mean(0)  # (T, H, W)
    t, h, w = frames.shape
    shifts = torch.tensor([phase_correlation(frames[i], frames[i + 1])[:2] for i in range(t - 1)])
    dx, dy = (float(v) for v in shifts.mean(0))
    k = max(1, min(stride, t - 1))
    pairs = range(0, t - k, k)
    log_zoom = sum(math.log(scale_between(frames[i], frames[i + k])) for i in pairs)
    log_zoom /= len(pairs) * k  # per frame
    pan, edge = math.hypot(dx, dy), abs(log_zoom) * w / 2
    zoom = math.expm1(log_zoom) * 100
    if max(pan, edge) < STATIC_SPEED:
        move, speed = "static", 0.0
    elif edge > pan:
        move, speed = ("zoom-in" if log_zoom > 0 else "zoom-out"), abs(zoom)
    elif abs(dx) >= abs(dy):
        move, speed = ("pan-left" if dx > 0 else "pan-right"), pan
    else:
        move, speed = ("pan-up" if dy > 0 else "pan-down"), pan
    return {"move": move, "speed": speed, "dx": dx, "dy": dy, "zoom": zoom}


def trajectory_errors(measured: torch.Tensor, requested: torch.Tensor) -> dict:
    """Per-frame distances (px) between measured and requested centres ``(T, 2)``: ``mean``,
    ``median``, ``first``, ``last``, ``endpoints`` (the larger of first and last)."""
    d = (torch.as_tensor(measured, dtype=torch.float32) - torch.as_tensor(requested)).norm(dim=-1)
    return {
        "mean": float(d.mean()),
        "median": float(d.median()),
        "first": float(d[0]),
        "last": float(d[-1]),
        "endpoints": float(max(d[0], d[-1])),
    }


def measure_trajectory(video: torch.Tensor) -> torch.Tensor:
    """The ``(T, 2)`` centre of the clip's largest object per frame (the probes' detector and
    tracker, :mod:`vidiff.eval.extract`); NaN where no object is found."""
    from vidiff.eval.extract import detect_objects, track_objects

    track = track_objects(detect_objects(video), 1)[0]
    return torch.from_numpy(track.centroids.astype("float32"))
