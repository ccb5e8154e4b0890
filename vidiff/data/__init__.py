"""Data: video I/O, synthetic datasets with exact ground truth, video/image folders, preview/export.

Items are dicts ``{"video": (C, T, H, W) float32 in [0, 1], "caption": str, "gt": dict | None}``
(``docs/architecture.md``). Dataset modules are imported lazily by :func:`build_dataset`, so
``import vidiff.data`` stays light.
"""

from __future__ import annotations

import importlib

import torch
from torch.utils.data import Dataset

from vidiff.config import check_fields

from .sheet import make_sheet
from .video_io import read_video, write_video

# name -> "module:class"; the single table of dataset names.
DATASETS: dict[str, str] = {
    "shapes": "vidiff.data.shapes:MovingShapes",
    "balls": "vidiff.data.balls:BouncingBalls",
    "digits": "vidiff.data.digits:MovingDigits",
    "folder": "vidiff.data.folder:VideoFolder",
    "images": "vidiff.data.folder:ImageFolder",
}


def dataset_class(name: str) -> type[Dataset]:
    """The class behind a dataset name; an unknown name is a ``ValueError`` listing the names."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    module, cls = DATASETS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_dataset(name: str, **kwargs) -> Dataset:
    """Build a dataset by name (``shapes``, ``balls``, ``digits``, ``folder``, ``images``).

    Keyword arguments go to the class; an unknown keyword is a ``ValueError`` naming it and the
    accepted ones.
    """
    import inspect

    cls = dataset_class(name)
    params = inspect.signature(cls.__init__).parameters
    check_fields(kwargs, [p for p in params if p != "self"], f"dataset {name!r}", "option")
    return cls(**kwargs)


def collate(items: list[dict]) -> dict:
    """Batch items: ``video`` stacked to ``(B, C, T, H, W)``; ``caption``, ``gt`` (and any other
    keys) kept as lists, since ground truth differs in size between clips."""
    if not items:
        raise ValueError("collate needs at least one item")
    shapes = {tuple(it["video"].shape) for it in items}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot batch videos of different shapes {sorted(shapes)}; group items by length "
            "(e.g. images (T=1) apart from videos) or use one size and num_frames"
        )
    batch = {"video": torch.stack([it["video"] for it in items])}
    for key in items[0]:
        if key != "video":
            batch[key] = [it.get(key) for it in items]
    return batch


__all__ = [
    "DATASETS",
    "build_dataset",
    "collate",
    "dataset_class",
    "make_sheet",
    "read_video",
    "write_video",
]
