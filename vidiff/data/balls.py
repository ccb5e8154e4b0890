"""BouncingBalls: 1–3 balls with elastic bounces and exact ground-truth trajectories (physics benchmark).

Each ball has a distinct colour, a radius r ~ U[3, 4.5] px and a constant speed ~ U[0.5, 1.5] px/frame
in a uniformly random direction (lengths at frame size S = 32, scaled by S / 32). Walls reflect balls
elastically; with ``collisions=True`` balls also collide elastically with each other (masses ∝ r²).
Clips may be hundreds of frames long (prediction, continuation, long video).

:func:`simulate_balls` is the simulator the dataset uses; evaluation rolls it out from observed
conditioning frames and compares trajectories (ADE/FDE) and bounce times with a generated clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .render import composite, coverage
from .shapes import COLOURS
from .synthetic import SyntheticClips

RADIUS_RANGE = (3.0, 4.5)
SPEED_RANGE = (0.5, 1.5)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven")


def vocabulary() -> list[str]:
    """Every word that can appear in a BouncingBalls caption."""
    return [*NUMBER_WORDS[1:], "ball", "balls", "bouncing"]


def simulate_balls(
    positions,
    velocities,
    radii,
    size: int | tuple[int, int],
    num_frames: int,
    collisions: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Roll out balls in a box with elastic wall (and optionally ball–ball) bounces.

    Args:
        positions: ``(K, 2)`` centres (x, y) at frame 0, pixel coordinates (the frame spans
            ``[0, W] x [0, H]``; pixel centres at +0.5).
        velocities: ``(K, 2)`` px/frame at frame 0 (x right, y down).
        radii: ``(K,)``; a ball touches a wall when its centre is ``r`` from it.
        size: frame size ``S`` or ``(H, W)``.
        num_frames: ``T``, the number of frames returned (frame 0 included).
        collisions: also collide balls elastically with each other (discrete time: when two balls
            overlap and approach, their velocities along the line of centres are exchanged as for
            masses ∝ r²; positions are not corrected).

    Returns:
        ``centroids (T, K, 2)``; ``velocities (T, K, 2)`` where ``velocities[t]`` is the velocity that
        carries frame t to frame t+1 (after any bounce at frame t); and ``bounce_frames``, one list per
        ball of the frames ``t`` at which its velocity changed, i.e. a bounce happened between frames
        ``t-1`` and ``t``. Wall bounces reflect the position about the wall, which is the exact
        continuous-time motion sampled at integer frames.
    """
    h, w = (size, size) if isinstance(size, int) else size
    pos = np.array(positions, dtype=np.float64).reshape(-1, 2)
    vel = np.array(velocities, dtype=np.float64).reshape(-1, 2)
    r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (pos.shape[0],)).copy()
    k = pos.shape[0]
    if vel.shape != pos.shape:
        raise ValueError(f"positions {pos.shape} and velocities {vel.shape} must both be (K, 2)")
    lo = r[:, None] * np.ones(2)  # (K, 2): the centre's range per axis
    hi = np.array([w, h], dtype=np.float64)[None, :] - r[:, None]
    if np.any(hi < lo):
        raise ValueError(f"a ball of radius {r.max():.2f} does not fit in a {h}x{w} frame")
    if np.any(np.abs(vel) > hi - lo):
        raise ValueError("a ball moves farther than the box allows in one frame; lower its speed")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    mass = r * r
    cents = np.empty((num_frames, k, 2))
    vels = np.empty((num_frames, k, 2))
    bounces: list[list[int]] = [[] for _ in range(k)]
    cents[0], vels[0] = pos, vel
    for t in range(1, num_frames):
        pos = pos + vel
        bounced = np.zeros(k, dtype=bool)
        if collisions:
            for i in range(k):
                for j in range(i + 1, k):
                    d = pos[j] - pos[i]
                    dist = float(np.hypot(*d))
                    approach = float((vel[i] - vel[j]) @ d)  # > 0: moving towards each other
                    if dist < r[i] + r[j] and approach > 0 and dist > 0:
                        n = d / dist
                        rel = (vel[i] - vel[j]) @ n
                        vel[i] -= 2 * mass[j] / (mass[i] + mass[j]) * rel * n
                        vel[j] += 2 * mass[i] / (mass[i] + mass[j]) * rel * n
                        bounced[[i, j]] = True
        below, above = pos < lo, pos > hi
        pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
        vel = np.where(below, np.abs(vel), np.where(above, -np.abs(vel), vel))
        bounced |= (below | above).any(axis=1)
        cents[t], vels[t] = pos, vel
        for i in np.flatnonzero(bounced):
            bounces[i].append(t)
    return cents, vels, bounces


@dataclass(eq=False)
class BouncingBalls(SyntheticClips):
    """Procedural bouncing-ball clips with exact trajectories (see the module docstring).

    Items are ``{"video": (3, T, S, S) float32 in [0, 1], "caption": "two balls bouncing", "gt": dict}``
    with ``gt["objects"]`` per ball: ``colour``, ``rgb``, ``radius``, ``velocity`` (at frame 0),
    ``velocities (T, 2)``, ``centroids (T, 2)``, ``boxes (T, 4)``, ``masks (T, H, W)`` (coverage > 0.5),
    ``bounce_frames`` (see :func:`simulate_balls`). Balls start without overlapping. ``split`` only
    selects an independent random stream (``heldout`` for test clips).
    """

    min_balls: int = 1
    max_balls: int = 3
    collisions: bool = False
    supersample: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.min_balls, self.max_balls
        if not 1 <= lo <= hi <= len(COLOURS):
            raise ValueError(f"need 1 <= min_balls <= max_balls <= {len(COLOURS)}, got {lo}, {hi}")

    def _initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        k = int(rng.integers(self.min_balls, self.max_balls + 1))
        names = list(COLOURS)
        colours = [names[i] for i in rng.permutation(len(names))[:k]]
        radii = rng.uniform(*RADIUS_RANGE, size=k) * self.scale
        speeds = rng.uniform(*SPEED_RANGE, size=k) * self.scale
        angles = rng.uniform(0, 2 * np.pi, size=k)
        vel = np.stack([np.cos(angles), np.sin(angles)], -1) * speeds[:, None]
        pos = np.zeros((k, 2))
        for i in range(k):  # rejection sampling for non-overlapping starts (a few tries suffice)
            for _ in range(100):
                p = rng.uniform(radii[i], self.size - radii[i], size=2)
                if all(np.hypot(*(p - pos[j])) > radii[i] + radii[j] + 1 for j in range(i)):
                    break
            pos[i] = p
        return colours, radii, pos, vel

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        colours, radii, pos, vel = self._initial_state(rng)
        t, s = self.num_frames, self.size
        cents, vels, bounces = simulate_balls(pos, vel, radii, s, t, self.collisions)
        frames = np.zeros((3, t, s, s), dtype=np.float32)  # (C, T, H, W)
        objects = []
        for i, (name, r) in enumerate(zip(colours, radii)):
            cx, cy = cents[:, i, 0], cents[:, i, 1]
            cov = coverage("circle", cx, cy, r, s, self.supersample)
            composite(frames, cov, COLOURS[name])
            objects.append(
                {
                    "shape": "circle",
                    "colour": name,
                    "rgb": COLOURS[name],
                    "radius": float(r),
                    "velocity": tuple(float(v) for v in vel[i]),
                    "velocities": torch.from_numpy(vels[:, i].astype(np.float32)),
                    "centroids": torch.from_numpy(cents[:, i].astype(np.float32)),
                    "boxes": torch.from_numpy(
                        np.stack([cx - r, cy - r, cx + r, cy + r], -1).astype(np.float32)
                    ),
                    "masks": torch.from_numpy(cov > 0.5),
                    "bounce_frames": bounces[i],
                }
            )
        k = len(objects)
        caption = f"{NUMBER_WORDS[k]} ball{'s' if k > 1 else ''} bouncing"
        gt = {
            "objects": objects,
            "collisions": self.collisions,
            "split": self.split,
            "index": index,
            "size": s,
            "num_frames": t,
        }
        return {"video": torch.from_numpy(frames), "caption": caption, "gt": gt}
