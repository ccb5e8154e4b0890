"""MovingShapes: the text-to-video benchmark with exact ground truth and a compositional hold-out.

One (or two) anti-aliased coloured shapes move in a straight line at constant speed on a black
background; the caption names colour, shape and direction (``a red circle moving right``). All lengths
are given at frame size S = 32 and scale with S:

* shape in {circle (radius r), square (axis-aligned, side 2r), triangle (isosceles, apex up,
  base = height = 2r)}, r ~ U[4, 6] px;
* colour in :data:`COLOURS`; direction in {left, right, up, down}; speed ~ U[0.6, 1.0] px/frame;
* the start is drawn so that the object's box stays inside the frame in every frame.

The (colour, shape) pairs in :data:`HELDOUT_PAIRS` never occur in the ``train`` split; the ``heldout``
split uses only them (with all four directions) — the compositional generalisation test of e.g.
"Compositional Visual Generation with Composable Diffusion Models" (Liu et al., 2022). With
``num_objects=2`` both objects follow the split's rule and have different colours, so that colour
identifies each object.

An item is a pure function of ``(seed, split, index)``. Ground truth per object: ``shape``, ``colour``,
``rgb``, ``direction``, ``velocity`` (px/frame, x right, y down), ``speed``, ``radius``, per-frame
``centroids (T, 2)`` — the area centroid (for a triangle r/3 below its box centre), ``boxes (T, 4)`` —
the shape's geometric box (x0, y0, x1, y1), and ``masks (T, H, W)`` — coverage > 0.5. Masks are amodal:
with two objects, the one drawn second (listed second) is on top and may hide part of the first.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from .render import composite, coverage
from .synthetic import SyntheticClips

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
# Unit velocity per direction: x right, y down (image coordinates).
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("yellow", "triangle"),
    ("blue", "circle"),
    ("white", "square"),
    ("magenta", "triangle"),
)
TRAIN_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELDOUT_PAIRS
)

# Ranges at S = 32; multiplied by S / 32.
RADIUS_RANGE = (4.0, 6.0)
SPEED_RANGE = (0.6, 1.0)


def vocabulary() -> list[str]:
    """Every word that can appear in a MovingShapes caption (for word-level tokenizers)."""
    return ["a", "moving", "and", *COLOURS, *SHAPES, *DIRECTIONS]


def caption_for(objects: list[dict]) -> str:
    """``[{colour, shape, direction}, ...]`` -> ``a red circle moving right and a ...``."""
    return " and ".join(f"a {o['colour']} {o['shape']} moving {o['direction']}" for o in objects)


_PART = re.compile(r"^a (\w+) (\w+) moving (\w+)$")


def parse_caption(caption: str) -> list[dict]:
    """Inverse of the caption template -> ``[{"colour", "shape", "direction"}, ...]``.

    Raises ``ValueError`` naming the caption when it does not follow
    ``a {colour} {shape} moving {direction}[ and a ...]`` with words from the vocabulary.
    """
    if not isinstance(caption, str):
        raise ValueError(f"caption must be a string, got {type(caption).__name__}")
    text = " ".join(caption.strip().lower().split())
    objects = []
    for part in text.split(" and "):
        m = _PART.match(part)
        if not m or m[1] not in COLOURS or m[2] not in SHAPES or m[3] not in DIRECTIONS:
            raise ValueError(
                f"cannot parse MovingShapes caption {caption!r}: expected "
                f"'a {{colour}} {{shape}} moving {{direction}}' with colour in {list(COLOURS)}, "
                f"shape in {list(SHAPES)}, direction in {list(DIRECTIONS)}"
            )
        objects.append({"colour": m[1], "shape": m[2], "direction": m[3]})
    return objects


def centroid_offset(shape: str, r: float) -> tuple[float, float]:
    """Area centroid minus box centre: (0, r/3) for the apex-up triangle, else (0, 0)."""
    return (0.0, r / 3.0) if shape == "triangle" else (0.0, 0.0)


def render_shape(
    shape: str,
    rgb: tuple[float, float, float],
    cx: float,
    cy: float,
    r: float,
    size: int | tuple[int, int],
    supersample: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render one shape on black -> ``(image (3, H, W) float32 in [0, 1], mask (H, W) bool)``.

    ``(cx, cy)`` is the centre of the shape's box (pixel coordinates, pixel centres at +0.5), ``r`` its
    half-extent; the mask is coverage > 0.5. This is exactly what :class:`MovingShapes` draws per frame.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    cov = coverage(shape, np.array([cx]), np.array([cy]), r, size, supersample)  # (1, H, W)
    frames = composite(np.zeros((3, *cov.shape), dtype=np.float32), cov, rgb)
    image = torch.from_numpy(np.ascontiguousarray(frames[:, 0]))
    return image, torch.from_numpy(cov[0] > 0.5)


class MovingShapes(SyntheticClips):
    """Procedural text-to-video clips of moving coloured shapes (see the module docstring).

    Items are ``{"video": (3, T, S, S) float32 in [0, 1], "caption": str, "gt": dict}``.
    """

    def __init__(
        self,
        num_items: int = 10000,
        split: str = "train",
        num_frames: int = 16,
        size: int = 32,
        seed: int = 0,
        num_objects: int = 1,
        supersample: int = 4,
    ) -> None:
        super().__init__(num_items, split, num_frames, size, seed)
        if num_objects not in (1, 2):
            raise ValueError(f"num_objects must be 1 or 2, got {num_objects}")
        self.num_objects, self.supersample = num_objects, supersample
        # The largest object must be able to travel the slowest speed for T-1 frames inside the frame.
        r_max, v_min = RADIUS_RANGE[1] * self.scale, SPEED_RANGE[0] * self.scale
        if (num_frames - 1) * v_min > size - 2 * r_max:
            longest = int((size - 2 * r_max) / v_min) + 1
            raise ValueError(
                f"MovingShapes: {num_frames} frames do not fit in a {size}px frame at the minimum speed "
                f"{v_min:.2f} px/frame; use num_frames <= {longest} or a larger size"
            )
        self.pairs = TRAIN_PAIRS if split == "train" else HELDOUT_PAIRS

    def _sample_object(self, rng: np.random.Generator, used_colours: set[str]) -> dict:
        pairs = [p for p in self.pairs if p[0] not in used_colours]
        colour, shape = pairs[rng.integers(len(pairs))]
        direction = DIRECTIONS[rng.integers(len(DIRECTIONS))]
        s, t = self.size, self.num_frames
        r = rng.uniform(*RADIUS_RANGE) * self.scale
        # Speed is capped so that the path fits (only binds for long clips).
        v_hi = min(SPEED_RANGE[1] * self.scale, (s - 2 * r) / max(t - 1, 1))
        speed = rng.uniform(SPEED_RANGE[0] * self.scale, v_hi)
        ux, uy = DIRECTION_VECTORS[direction]
        travel = speed * (t - 1)
        # Along the motion: start anywhere that keeps the end inside; across it: anywhere inside.
        along = rng.uniform(r, s - r - travel)
        across = rng.uniform(r, s - r)
        sign = ux + uy  # +1 for right/down, -1 for left/up
        start = along if sign > 0 else s - along
        x0, y0 = (start, across) if ux != 0 else (across, start)
        return {
            "shape": shape,
            "colour": colour,
            "rgb": COLOURS[colour],
            "direction": direction,
            "velocity": (ux * speed, uy * speed),
            "speed": speed,
            "radius": r,
            "start": (x0, y0),
        }

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        objects: list[dict] = []
        for _ in range(self.num_objects):
            objects.append(self._sample_object(rng, {o["colour"] for o in objects}))
        t, s = self.num_frames, self.size
        frames = np.zeros((3, t, s, s), dtype=np.float32)  # (C, T, H, W)
        steps = np.arange(t, dtype=np.float64)
        for o in objects:
            (x0, y0), (vx, vy), r = o.pop("start"), o["velocity"], o["radius"]
            cx, cy = x0 + vx * steps, y0 + vy * steps  # box centres, (T,)
            cov = coverage(o["shape"], cx, cy, r, s, self.supersample)
            composite(frames, cov, o["rgb"])
            ox, oy = centroid_offset(o["shape"], r)
            o["centroids"] = torch.from_numpy(np.stack([cx + ox, cy + oy], -1).astype(np.float32))
            o["boxes"] = torch.from_numpy(
                np.stack([cx - r, cy - r, cx + r, cy + r], -1).astype(np.float32)
            )
            o["masks"] = torch.from_numpy(cov > 0.5)
        video = torch.from_numpy(frames)
        gt = {"objects": objects, "split": self.split, "index": index, "size": s, "num_frames": t}
        return {"video": video, "caption": caption_for(objects), "gt": gt}
