"""The control probes: sample a model under random trajectories or camera moves and measure them.

* :func:`trajectory_probe` -- ``n`` random polylines (2 or 3 points, kept a radius from the
  border) with prompts ``a {colour} {shape}`` from the training pairs; per video the trajectory
  errors (:func:`vidiff.eval.motion.trajectory_errors`) plus whether the colour and shape are
  the prompt's (the shape probes' readers). Summary: mean / median error, first and last frame,
  and the share of videos with both endpoints within ``tolerance`` px.
* :func:`camera_probe` -- every move of :data:`vidiff.data.camera.MOVES` (static excluded) at
  random speeds, each from a held-out photo's first frame when the model takes known frames;
  per video the move read by phase correlation (:func:`vidiff.eval.motion.read_camera`) and its
  speed error. Summary: the share read as the requested move, mean speed error.

Both return ``{"summary": {...}, "videos": [...]}``; they are the one place that samples for
these figures (docs/control.md).
"""

from __future__ import annotations

import numpy as np
import torch

from vidiff.data.trajectory import spread_polyline, trajectory_heatmap
from vidiff.eval.motion import measure_trajectory, read_camera, trajectory_errors

RADIUS = 5.0  # px at a 32-px frame: random paths keep the object's centre this far from the border


def random_paths(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` polylines of 2 or 3 points inside ``[r, size - r]``, a pure function of ``seed``."""
    rng = np.random.default_rng([seed, 22])
    r = RADIUS * size / 32
    return [rng.uniform(r, size - r, size=(int(rng.integers(2, 4)), 2)) for _ in range(n)]


def _adherence(video: torch.Tensor, colour: str, shape: str) -> tuple[bool, bool]:
    from vidiff.eval.extract import alpha_map, detect_objects, track_objects
    from vidiff.eval.geometry import track_shapes
    from vidiff.eval.probes import nearest_colour

    track = track_objects(detect_objects(video), 1)[0]
    seen = track.present
    if not seen.any():
        return False, False
    rgb = np.nanmedian(track.colours[seen], axis=0)
    label = track_shapes([track], alpha_map(video))[0]["label"]
    return nearest_colour(rgb) == colour, label == shape


@torch.no_grad()
def trajectory_probe(
    pipe, n: int = 64, seed: int = 0, tolerance: float = 3.0, batch_size: int = 16, **sample
) -> dict:
    """Sample ``n`` videos along random paths with ``pipe`` (a pipeline taking ``trajectory``)
    and measure them; ``sample`` goes to ``pipe.generate`` (steps, sampler, cfg)."""
    from vidiff.data.shapes import TRAIN_PAIRS

    size, frames = pipe.size, pipe.num_frames
    paths = [spread_polyline(p, frames) for p in random_paths(n, size, seed)]
    rng = np.random.default_rng([seed, 23])
    pairs = [TRAIN_PAIRS[i] for i in rng.integers(len(TRAIN_PAIRS), size=n)]
    prompts = [f"a {c} {s}" for c, s in pairs]
    heat = torch.stack([trajectory_heatmap(p, size) for p in paths])  # (n, 1, T, S, S)
    videos = pipe.generate(
        prompts, [seed + i for i in range(n)], cond={"trajectory": heat}, batch_size=batch_size,
        **sample,
    ).cpu()  # fmt: skip
    rows = []
    for video, path, prompt, (colour, shape) in zip(videos, paths, prompts, pairs):
        errs = trajectory_errors(measure_trajectory(video), torch.from_numpy(path))
        colour_ok, shape_ok = _adherence(video, colour, shape)
        rows.append({"prompt": prompt, **errs, "colour_ok": colour_ok, "shape_ok": shape_ok})

    def stat(key, fn=np.nanmean):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        return float(fn(values)) if np.isfinite(values).any() else float("nan")

    ends = np.array([r["endpoints"] for r in rows], dtype=np.float64)
    summary = {
        "n": n,
        "mean_px": stat("mean"),
        "median_px": stat("median", np.nanmedian),
        "first_px": stat("first"),
        "last_px": stat("last"),
        "endpoints_within_tol": float(np.mean(np.nan_to_num(ends, nan=np.inf) <= tolerance)),
        "tolerance_px": tolerance,
        "lost": float(np.mean(~np.isfinite(ends))),
        "colour_acc": float(np.mean([r["colour_ok"] for r in rows])),
        "shape_acc": float(np.mean([r["shape_ok"] for r in rows])),
    }
    return {"summary": summary, "videos": rows}


@torch.no_grad()
def camera_probe(
    pipe, n: int = 60, seed: int = 0, batch_size: int = 16, first_frame: bool = True, **sample
) -> dict:
    """Sample ``n`` videos of the six moves (in turn) at random speeds with ``pipe`` (a pipeline
    taking ``camera``), from held-out photos' first frames when ``first_frame`` and the model
    takes known frames, and read their moves."""
    from vidiff.data.camera import MOVES, CameraMoves, camera_path

    size, frames = pipe.size, pipe.num_frames
    heldout = CameraMoves(num_items=n, split="heldout", num_frames=frames, size=size, seed=seed)
    items = [heldout[i] for i in range(n)]
    moves = [MOVES[i % 6] for i in range(n)]
    rng = np.random.default_rng([seed, 24])
    speeds = [
        float(rng.uniform(0.5, 1.5) * size / 32 if m.startswith("pan") else rng.uniform(1, 3))
        for m in moves
    ]
    camera = torch.stack([camera_path(m, s, frames, size) for m, s in zip(moves, speeds)])
    firsts = torch.stack([it["video"][:, 0] for it in items]) if first_frame else None
    videos = pipe.generate_camera(
        [""] * n, [seed + i for i in range(n)], camera, firsts, batch_size=batch_size, **sample
    ).cpu()
    rows = []
    for i, (video, move, speed) in enumerate(zip(videos, moves, speeds)):
        read = read_camera(video)
        row = {"move": move, "speed": speed, "read": read["move"], "read_speed": read["speed"]}
        if firsts is not None:  # against the photo the move really shows
            row.update(_against_photo(video, items[i]["gt"], camera[i], firsts[i]))
        rows.append(row)
    right = [r for r in rows if r["read"] == r["move"]]
    summary = {
        "n": n,
        "move_acc": len(right) / n,
        "speed_error": float(np.mean([abs(r["read_speed"] - r["speed"]) for r in right]))
        if right
        else float("nan"),
        "read_static": float(np.mean([r["read"] == "static" for r in rows])),
    }
    for key in ("psnr_kept", "psnr_drawn", "psnr_drawn_edge"):
        values = [r[key] for r in rows if np.isfinite(r.get(key, np.nan))]
        if values:
            summary[key] = float(np.median(values))
    return {"summary": summary, "videos": rows}


def _psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    if not bool(where.any()):
        return float("nan")
    mse = float(((a - b) ** 2)[:, where].mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1 / mse))


def _against_photo(video: torch.Tensor, gt: dict, path: torch.Tensor, first: torch.Tensor) -> dict:
    """PSNR of a generated camera clip ``(3, T, S, S)`` against the same move rendered from the
    held-out photo its first frame came from (frames 1.., where the window stays on the photo):
    where frame 0 covers the view (``psnr_kept``) and where the move uncovers it (``psnr_drawn``),
    beside the naive completion that repeats frame 0's edge pixels (``psnr_drawn_edge``)."""
    from vidiff.data.camera import photo_at, render_camera, warp_first_frame

    size = video.shape[-1]
    photo = photo_at(gt["photo"], size)
    truth = render_camera(photo, gt["start"], path, size)[:, 1:]
    on_photo = render_camera(torch.ones_like(photo), gt["start"], path, size)[0, 1:] > 0.999
    covered = warp_first_frame(first, path)[0, 3, 1:] > 0.5
    edge = warp_first_frame(first, path, padding="border")[0, :3, 1:]  # no model: edges repeated
    generated = video[:, 1:]
    return {
        "psnr_kept": _psnr(generated, truth, covered & on_photo),
        "psnr_drawn": _psnr(generated, truth, ~covered & on_photo),
        "psnr_drawn_edge": _psnr(edge, truth, ~covered & on_photo),
    }
