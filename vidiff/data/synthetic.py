"""What the procedural datasets (MovingShapes, BouncingBalls, MovingDigits) have in common.

An item is a pure function of ``(seed, split, index)``: :meth:`SyntheticClips.rng` is its generator.
The sets are dataclasses: the five parameters every set takes are declared here once, a set adds its
own fields and checks them in ``__post_init__`` (after ``super().__post_init__()``). Sizes and
speeds are given at :data:`REFERENCE_SIZE` pixels and scale with the frame size (with the
shorter side of a non-square frame, for the sets that draw one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

SPLITS = ("train", "heldout")
REFERENCE_SIZE = 32  # px: the frame size at which the sets' radii and speeds are stated


def frame_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``S`` or ``(H, W)`` -> ``(H, W)``."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    if isinstance(size, (tuple, list)):
        raise ValueError(f"size must be S or (H, W), got {list(size)}")
    return int(size), int(size)


@dataclass(eq=False)  # eq=False: a dataset compares and hashes by identity
class SyntheticClips(Dataset):
    """Base class: the parameters every set takes (checked), ``height``, ``width`` and ``scale``.

    ``size`` is ``S`` (square frames) or ``(H, W)`` for the subclasses with ``rectangular = True``;
    ``self.size`` stays the int ``S`` for a square frame, so square items are what they always were,
    and ``self.height``, ``self.width`` hold the frame either way.
    """

    num_items: int = 10000
    split: str = "train"  # "train" or "heldout": an independent random stream (and hold-outs)
    num_frames: int = 16
    size: int | tuple[int, int] = 32  # px: S (S x S frames) or (H, W)
    seed: int = 0

    min_size = (
        8  # px: the smallest frame side a subclass can draw in (a class constant, not a field)
    )
    rectangular = False  # whether the subclass draws non-square frames (a class constant)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        h, w = frame_size(self.size)
        if h != w and not self.rectangular:
            raise ValueError(f"{type(self).__name__} draws square frames only; got size {h}x{w}")
        if self.num_items < 1 or self.num_frames < 1 or min(h, w) < self.min_size:
            raise ValueError(
                f"need num_items >= 1, num_frames >= 1, size >= {self.min_size}; "
                f"got {self.num_items}, {self.num_frames}, {h if h == w else f'{h}x{w}'}"
            )
        self.height, self.width = h, w
        self.size = h if h == w else (h, w)
        self.scale = min(h, w) / REFERENCE_SIZE

    def __len__(self) -> int:
        return self.num_items

    def rng(self, index: int) -> np.random.Generator:
        """Item ``index``'s generator: seeded by ``(seed, split, index)`` alone."""
        if not 0 <= index < self.num_items:
            raise IndexError(
                f"index {index} out of range for {type(self).__name__} of length {self.num_items}"
            )
        return np.random.default_rng([self.seed, SPLITS.index(self.split), index])
