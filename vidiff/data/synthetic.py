"""What the procedural datasets (MovingShapes, BouncingBalls, MovingDigits) have in common.

An item is a pure function of ``(seed, split, index)``: :meth:`SyntheticClips.rng` is its generator.
Sizes and speeds are given at :data:`REFERENCE_SIZE` pixels and scale with the frame size.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

SPLITS = ("train", "heldout")
REFERENCE_SIZE = 32  # px: the frame size at which the sets' radii and speeds are stated


class SyntheticClips(Dataset):
    """Base class: checks and keeps ``num_items, split, num_frames, size, seed`` and ``scale``."""

    min_size = 8  # px: the smallest frame a subclass can draw in

    def __init__(self, num_items: int, split: str, num_frames: int, size: int, seed: int) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if num_items < 1 or num_frames < 1 or size < self.min_size:
            raise ValueError(
                f"need num_items >= 1, num_frames >= 1, size >= {self.min_size}; "
                f"got {num_items}, {num_frames}, {size}"
            )
        self.num_items, self.split, self.num_frames, self.size = num_items, split, num_frames, size
        self.seed = seed
        self.scale = size / REFERENCE_SIZE

    def __len__(self) -> int:
        return self.num_items

    def rng(self, index: int) -> np.random.Generator:
        """Item ``index``'s generator: seeded by ``(seed, split, index)`` alone."""
        if not 0 <= index < self.num_items:
            raise IndexError(
                f"index {index} out of range for {type(self).__name__} of length {self.num_items}"
            )
        return np.random.default_rng([self.seed, SPLITS.index(self.split), index])
