"""MovingShapes: the text-to-video benchmark with exact ground truth and a compositional hold-out.

One (or two) anti-aliased coloured shapes move in a straight line at constant speed on a black
background; the caption names colour, shape and direction (``a red circle moving right``). All lengths
are given at frame size S = 32 and scale with S:

* shape in {circle (radius r), square (axis-aligned, side 2r), triangle (isosceles, apex up,
  base = height = 2r)}, r ~ U[4, 6] px;
* colour in :data:`COLOURS`; direction in {left, right, up, down}; speed ~ U[0.6, 1.0] px/frame;
* the start is drawn so that the object's box stays inside the frame in every frame.

With ``walls=True`` (long video) the frame border is a wall: the object starts anywhere inside, at
any speed in the range, and its direction reverses when its box reaches the border (the box is
reflected about the wall, the exact continuous motion sampled at integer frames), so a clip may have
any length and the object never leaves the frame. The caption names the direction of frame 0.
``strides`` (with walls) makes keyframe clips: each item draws a temporal stride ``k`` from the list,
frame ``t`` of the clip is frame ``t k`` of the bouncing video, and the item carries
``cond = {"stride": k}`` (the ``stride`` conditioning of a keyframe model, docs/long-video.md).

Frames may be non-square: ``size=(H, W)`` draws on an H x W frame, with lengths scaled by the
shorter side (so a 32 x 48 clip has the objects and speeds of a 32 x 32 one on a wider stage); an
object moving along the long side may start anywhere that keeps its path inside. ``gt["size"]`` is
``S`` for square clips, else ``(H, W)``.

The (colour, shape) pairs in :data:`HELDOUT_PAIRS` never occur in the ``train`` split; the ``heldout``
split uses only them (with all four directions) — the compositional generalisation test of e.g.
"Compositional Visual Generation with Composable Diffusion Models" (Liu et al., 2022). With
``num_objects=2`` both objects follow the split's rule and have different colours, so that colour
identifies each object. ``num_objects=[1, 2]`` draws each item's count from the list (a LoRA run
that teaches two-object clips keeps one-object clips beside them, docs/lora.md).

An item is a pure function of ``(seed, split, index)``. Ground truth per object: ``shape``, ``colour``,
``rgb``, ``direction``, ``velocity`` (px/frame at frame 0, x right, y down), ``speed``, ``radius``,
``velocities (T, 2)`` (the velocity carrying frame t to t+1), ``bounce_frames`` (the frames t whose
velocity differs from frame t-1's: a bounce between t-1 and t; empty without walls), per-frame
``centroids (T, 2)`` — the area centroid (for a triangle r/3 below its box centre), ``boxes (T, 4)`` —
the shape's geometric box (x0, y0, x1, y1), and ``masks (T, H, W)`` — coverage > 0.5. Masks are amodal:
with two objects, the one drawn second (listed second) is on top and may hide part of the first.

Motion control (docs/control.md): ``trajectory=True`` adds ``cond["trajectory"]``, the ground-truth
centroids as a per-frame heat map ``(1, T, S, S)``; ``caption_direction_dropout`` drops the
direction words (``a red circle``) with that probability, since a path needs no direction word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .render import composite, coverage
from .synthetic import SyntheticClips
from .trajectory import trajectory_heatmap

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


def bounce_path(
    start: float, velocity: float, steps: np.ndarray, r: float, size: float
) -> tuple[np.ndarray, np.ndarray]:
    """One axis of motion between walls at ``r`` and ``size - r`` (the box centre's range).

    Returns ``(position (T,), sign (T,))``: the unfolded path ``start + velocity * t`` folded into the
    range (a triangle wave of period ``2 (size - 2r)``: the exact elastic bounce), and per frame +1
    where the object moves as ``velocity`` just after frame t, -1 where a wall has reversed it (a
    bounce exactly at frame t counts as reversed from t on, as :func:`~vidiff.data.balls.simulate_balls`).
    """
    span = size - 2 * r
    u = (start - r) + velocity * np.asarray(
        steps, dtype=np.float64
    )  # unfolded offset from the wall
    m = np.mod(u, 2 * span)
    pos = r + np.where(m <= span, m, 2 * span - m)
    # On the rising half of the wave (m in [0, span)) the object moves with the unfolded motion.
    just_after = np.mod(u + velocity * 1e-6, 2 * span)
    return pos, np.where(just_after < span, 1.0, -1.0)


@dataclass(eq=False)
class MovingShapes(SyntheticClips):
    """Procedural text-to-video clips of moving coloured shapes (see the module docstring).

    Items are ``{"video": (3, T, H, W) float32 in [0, 1], "caption": str, "gt": dict}``.
    """

    rectangular = True

    num_objects: int | list[int] = 1
    supersample: int = 4
    trajectory: bool = False
    caption_direction_dropout: float = 0.0
    walls: bool = False
    strides: list[int] | None = None
    # Colours beyond COLOURS ({name: [r, g, b]}, e.g. a LoRA's new concept), drawn for a share of
    # the objects (with any shape) and named by their own word in the caption.
    new_colours: dict[str, list[float]] | None = None
    new_colour_share: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.palette = dict(COLOURS)
        self.new_pairs: tuple[tuple[str, str], ...] = ()
        for name, rgb in (self.new_colours or {}).items():
            rgb = tuple(float(c) for c in rgb)
            if not re.fullmatch(r"[a-z]+", name) or name in COLOURS:
                raise ValueError(
                    f"new colour {name!r}: give a lower-case word not in {list(COLOURS)}"
                )
            if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
                raise ValueError(f"new colour {name!r}: give [r, g, b] in [0, 1], got {list(rgb)}")
            self.palette[name] = rgb
            self.new_pairs += tuple((name, shape) for shape in SHAPES)
        if not 0.0 <= self.new_colour_share <= 1.0:
            raise ValueError(f"new_colour_share must lie in [0, 1], got {self.new_colour_share}")
        n = self.num_objects
        counts = n if isinstance(n, (list, tuple)) else [n]
        if not counts or any(c not in (1, 2) for c in counts):
            raise ValueError(f"num_objects must be 1 or 2 (or a list of them), got {n}")
        if not 0.0 <= self.caption_direction_dropout <= 1.0:
            raise ValueError(
                f"caption_direction_dropout must lie in [0, 1], got {self.caption_direction_dropout}"
            )
        self.walls = bool(self.walls)
        self.strides = None if self.strides is None else tuple(int(k) for k in self.strides)
        if self.strides is not None and (not self.walls or not self.strides):
            raise ValueError("strides (keyframe clips) need walls=True and at least one stride")
        if self.strides is not None and min(self.strides) < 1:
            raise ValueError(f"strides must be >= 1, got {list(self.strides)}")
        self.pairs = TRAIN_PAIRS if self.split == "train" else HELDOUT_PAIRS
        if self.walls:
            return  # any length: the object bounces off the border
        # The largest object must be able to travel the slowest speed for T-1 frames inside the frame.
        # Motion may be along either axis, so the shorter side must hold the path.
        r_max, v_min = RADIUS_RANGE[1] * self.scale, SPEED_RANGE[0] * self.scale
        num_frames = self.num_frames
        side = min(self.height, self.width)
        if (num_frames - 1) * v_min > side - 2 * r_max:
            longest = int((side - 2 * r_max) / v_min) + 1
            shown = f"{side}px" if self.height == self.width else f"{self.height}x{self.width}"
            raise ValueError(
                f"MovingShapes: {num_frames} frames do not fit in a {shown} frame at the minimum speed "
                f"{v_min:.2f} px/frame; use num_frames <= {longest} or a larger size, "
                "or walls=True (the object bounces off the border)"
            )

    def _sample_object(self, rng: np.random.Generator, used_colours: set[str]) -> dict:
        pairs = self.pairs
        if self.new_pairs and rng.random() < self.new_colour_share:  # drawn only with new colours
            pairs = self.new_pairs
        pairs = [p for p in pairs if p[0] not in used_colours]
        colour, shape = pairs[rng.integers(len(pairs))]
        direction = DIRECTIONS[rng.integers(len(DIRECTIONS))]
        h, w, t = self.height, self.width, self.num_frames
        r = rng.uniform(*RADIUS_RANGE) * self.scale
        ux, uy = DIRECTION_VECTORS[direction]
        if self.walls:  # any start inside, any speed: the border reflects the object
            speed = rng.uniform(*SPEED_RANGE) * self.scale
            x0, y0 = rng.uniform(r, np.array([w - r, h - r]))  # as size=2 when square
            start_xy = (float(x0), float(y0))
        else:
            s, s_across = (w, h) if ux != 0 else (h, w)  # the frame along and across the motion
            # Speed is capped so that the path fits (only binds for long clips).
            v_hi = min(SPEED_RANGE[1] * self.scale, (s - 2 * r) / max(t - 1, 1))
            speed = rng.uniform(SPEED_RANGE[0] * self.scale, v_hi)
            travel = speed * (t - 1)
            # Along the motion: start anywhere that keeps the end inside; across it: anywhere inside.
            along = rng.uniform(r, s - r - travel)
            across = rng.uniform(r, s_across - r)
            sign = ux + uy  # +1 for right/down, -1 for left/up
            start = along if sign > 0 else s - along
            start_xy = (start, across) if ux != 0 else (across, start)
        return {
            "shape": shape,
            "colour": colour,
            "rgb": self.palette[colour],
            "direction": direction,
            "velocity": (ux * speed, uy * speed),
            "speed": speed,
            "radius": r,
            "start": start_xy,
        }

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        count = self.num_objects
        if isinstance(count, (list, tuple)):  # drawn only for a list: other items are unchanged
            count = count[rng.integers(len(count))]
        objects: list[dict] = []
        for _ in range(count):
            objects.append(self._sample_object(rng, {o["colour"] for o in objects}))
        t, s, h, w = self.num_frames, self.size, self.height, self.width
        frames = np.zeros((3, t, h, w), dtype=np.float32)  # (C, T, H, W)
        stride = 1 if self.strides is None else self.strides[rng.integers(len(self.strides))]
        steps = np.arange(t, dtype=np.float64) * stride  # video frame of each clip frame
        for o in objects:
            (x0, y0), (vx, vy), r = o.pop("start"), o["velocity"], o["radius"]
            if self.walls:
                cx, sx = bounce_path(x0, vx, steps, r, w)  # box centres (T,), signs (T,)
                cy, sy = bounce_path(y0, vy, steps, r, h)
            else:
                cx, cy, sx, sy = x0 + vx * steps, y0 + vy * steps, np.ones(t), np.ones(t)
            vel = np.stack([vx * sx, vy * sy], -1)  # (T, 2): the velocity leaving frame t
            o["velocities"] = torch.from_numpy(vel.astype(np.float32))
            o["bounce_frames"] = [int(i) + 1 for i in np.flatnonzero((vel[1:] != vel[:-1]).any(1))]
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
        caption = caption_for(objects)
        # Drawn after everything else: items without these options are unchanged.
        if self.caption_direction_dropout > 0 and rng.random() < self.caption_direction_dropout:
            caption = " and ".join(f"a {o['colour']} {o['shape']}" for o in objects)
        item = {"video": video, "caption": caption, "gt": gt}
        cond = {}
        if self.strides is not None:
            gt["stride"] = int(stride)
            cond["stride"] = float(stride)
        if self.trajectory:
            centroids = torch.stack([o["centroids"] for o in objects])  # (N, T, 2)
            cond["trajectory"] = trajectory_heatmap(centroids, s)  # (1, T, H, W)
        if cond:
            item["cond"] = cond
        return item
