"""MovingDigits: Moving-MNIST-style clips (Srivastava et al., 2015) from scikit-learn's bundled digits.

The 8x8 ``sklearn.datasets.load_digits`` images (1797 of them, shipped with scikit-learn, so no
download) are upscaled bilinearly to 12x12 at S = 32 (24x24 at S = 64, i.e. ``round(12 * S / 32)``)
and bounce inside the frame like the balls of :mod:`vidiff.data.balls` (same simulator, a digit's
half-size as its radius). As in Moving MNIST, sprites sit at integer pixel positions (the sub-pixel
trajectory is rounded) and overlapping digits combine by maximum. Grayscale, repeated to 3 channels.

Splits use disjoint digit images: ``heldout`` takes every fifth image of ``load_digits``, ``train`` the
rest. Caption: ``the digit 7 bouncing`` or ``the digits 3 and 5 bouncing``. Ground truth per digit:
``label``, ``sample`` (index into ``load_digits``), ``velocity``, ``centroids (T, 2)`` (intensity
centroid of the sprite as drawn), ``boxes (T, 4)`` (tight box of the mask), ``masks (T, H, W)``
(sprite intensity > 0.5), ``bounce_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .balls import simulate_balls
from .render import mask_boxes
from .synthetic import SyntheticClips

SPEED_RANGE = (1.0, 2.0)  # px/frame at S = 32
DIGIT_WORDS = [str(d) for d in range(10)]


def vocabulary() -> list[str]:
    """Every word that can appear in a MovingDigits caption."""
    return ["the", "digit", "digits", "and", "bouncing", *DIGIT_WORDS]


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # lazy: scikit-learn is slow to import

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


@lru_cache(maxsize=4)
def digit_sprites(digit_size: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits upscaled to ``digit_size`` -> ``(sprites (N, d, d) float32 in [0, 1], labels (N,))``."""
    images, labels = _load_digits()
    x = torch.from_numpy(images)[:, None]
    up = F.interpolate(x, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    return up[:, 0].clamp(0, 1).numpy(), labels


def caption_for(labels: list[int]) -> str:
    if len(labels) == 1:
        return f"the digit {labels[0]} bouncing"
    return "the digits " + " and ".join(str(x) for x in labels) + " bouncing"


@dataclass(eq=False)
class MovingDigits(SyntheticClips):
    """Procedural Moving-digits clips (see the module docstring).

    Items are ``{"video": (3, T, S, S) float32 in [0, 1], "caption": str, "gt": dict}``.
    """

    min_size = 16  # px: room for a 4 px digit to move

    num_digits: int = 1
    digit_size: int | None = None  # px; None: 12 px at 32 px frames, scaled

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_digits not in (1, 2):
            raise ValueError(f"num_digits must be 1 or 2, got {self.num_digits}")
        self.digit_size = self.digit_size or round(12 * self.scale)
        if not 4 <= self.digit_size < self.size:
            raise ValueError(f"digit_size must be in [4, {self.size}), got {self.digit_size}")
        self.sprites, self.labels = digit_sprites(self.digit_size)
        every = np.arange(len(self.labels))
        self.pool = every[every % 5 == 0] if self.split == "heldout" else every[every % 5 != 0]

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        k, d, s, t = self.num_digits, self.digit_size, self.size, self.num_frames
        samples = self.pool[rng.integers(len(self.pool), size=k)]
        half = d / 2
        pos = rng.uniform(half, s - half, size=(k, 2))
        angles = rng.uniform(0, 2 * np.pi, size=k)
        speeds = rng.uniform(*SPEED_RANGE, size=k) * self.scale
        vel = np.stack([np.cos(angles), np.sin(angles)], -1) * speeds[:, None]
        cents, _, bounces = simulate_balls(pos, vel, np.full(k, half), s, t)
        # Integer top-left corners, as in Moving MNIST; always inside since centres stay in [d/2, S-d/2].
        corners = np.clip(np.round(cents - half).astype(np.int64), 0, s - d)  # (T, K, 2) as (x, y)
        frame = np.zeros((t, s, s), dtype=np.float32)
        ys, xs = np.arange(d), np.arange(d)
        tt = np.arange(t)[:, None, None]
        objects = []
        for i, sample in enumerate(samples):
            sprite = self.sprites[sample]  # (d, d)
            layer = np.zeros((t, s, s), dtype=np.float32)
            rows = corners[:, i, 1][:, None, None] + ys[None, :, None]  # (T, d, 1)
            cols = corners[:, i, 0][:, None, None] + xs[None, None, :]  # (T, 1, d)
            layer[tt, rows, cols] = sprite
            np.maximum(frame, layer, out=frame)
            mass = sprite.sum()
            sy = (sprite.sum(1) * (ys + 0.5)).sum() / mass  # sprite's own intensity centroid
            sx = (sprite.sum(0) * (xs + 0.5)).sum() / mass
            centroids = corners[:, i].astype(np.float32) + np.array([sx, sy], dtype=np.float32)
            masks = layer > 0.5
            objects.append(
                {
                    "label": int(self.labels[sample]),
                    "sample": int(sample),
                    "velocity": tuple(float(v) for v in vel[i]),
                    "centroids": torch.from_numpy(centroids),
                    "boxes": torch.from_numpy(mask_boxes(masks)),
                    "masks": torch.from_numpy(masks),
                    "bounce_frames": bounces[i],
                }
            )
        video = torch.from_numpy(np.repeat(frame[None], 3, axis=0))  # gray -> (3, T, H, W)
        gt = {"objects": objects, "split": self.split, "index": index, "size": s, "num_frames": t}
        return {"video": video, "caption": caption_for([o["label"] for o in objects]), "gt": gt}
