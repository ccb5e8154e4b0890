"""What the procedural datasets (MovingShapes, BouncingBalls, MovingDigits) have in common.

An item is a pure function of ``(seed, split, index)``: :meth:`SyntheticClips.rng` is its generator.
The sets are dataclasses: the five parameters every set takes are declared here once, a set adds its
own fields and checks them in ``__post_init__`` (after ``super().__post_init__()``). Sizes and speeds are given at :data:`REFERENCE_SIZE` pixels and scale with the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

SPLITS = ("train", "heldout")
REFERENCE_SIZE = 32  # px: the frame size at which the sets' radii and speeds are stated


@dataclass(eq=False)  # eq=False: a dataset compares and hashes by identity
class SyntheticClips(Dataset):
    """Base class: the parameters every set takes (checked), and ``scale``."""

    num_items: int = 10000
    split: str = "train"  # "train" or "heldout": an independent random stream (and hold-outs)
    num_frames: int = 16
    size: int = 32  # px, frames are size x size
    seed: int = 0

    min_size = 8  # px: the smallest frame a subclass can draw in (a class constant, not a field)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        if self.num_items < 1 or self.num_frames < 1 or self.size < self.min_size:
            raise ValueError(
                f"need num_items >= 1, num_frames >= 1, size >= {self.min_size}; "
                f"got {self.num_items}, {self.num_frames}, {self.size}"
            )
        self.scale = self.size / REFERENCE_SIZE

    def __len__(self) -> int:
        return self.num_items

    def rng(self, index: int) -> np.random.Generator:
        """Item ``index``'s generator: seeded by ``(seed, split, index)`` alone."""
        if not 0 <= index < self.num_items:
            raise IndexError(
                f"index {index} out of range for {type(self).__name__} of length {self.num_items}"
            )
        return np.random.default_rng([self.seed, SPLITS.index(self.split), index])
