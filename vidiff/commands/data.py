"""``vidiff data preview`` and ``vidiff data export``: look at a dataset, or hand it to other tools."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from vidiff.commands import checks
from vidiff.errors import UserError

SYNTHETIC = ("shapes", "balls", "digits")
FOLDERS = ("folder", "images")
EXPORT_FORMATS = ("mp4", "gif", "png", "webm")


def _build(name: str, n: int, seed: int, split: str, root: str | None, num_frames: int, size: int):
    from vidiff.data import DATASETS, build_dataset

    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    if n < 1:
        raise UserError(f"n must be >= 1, got {n}")
    if name in SYNTHETIC:
        if root is not None:
            raise UserError(
                f"--root is only for folder datasets ({', '.join(FOLDERS)}), not {name!r}"
            )
        return build_dataset(
            name, num_items=n, split=split, seed=seed, num_frames=num_frames, size=size
        )
    if root is None:
        raise UserError(f"dataset {name!r} needs --root FOLDER")
    if split != "train":
        raise UserError(
            f"--split applies to synthetic datasets ({', '.join(SYNTHETIC)}), not {name!r}"
        )
    if name == "images":
        return build_dataset(name, root=root, size=size, seed=seed)
    return build_dataset(
        name, root=root, num_frames=num_frames, size=size, seed=seed, random_start=False
    )


def preview(
    name: str,
    *,
    n: int = 16,
    seed: int = 0,
    split: str = "train",
    out: str = "preview.mp4",
    root: str | None = None,
    num_frames: int = 16,
    size: int = 32,
) -> None:
    """Write a captioned grid of the first N clips of a dataset (.mp4, .gif, .webm or .png filmstrip).

    Args:
        name: the dataset: shapes, balls, digits, folder or images (the last two need --root).
        n: clips in the grid.
        seed: the dataset's seed.
        split: train or heldout (synthetic datasets; heldout has the compositions no run trains on).
        out: the sheet to write (.mp4, .gif, .webm or .png filmstrip).
        root: the folder of a folder or images dataset.
        num_frames: frames per clip.
        size: frame height and width in pixels.
    """
    from vidiff.data.sheet import make_sheet
    from vidiff.data.video_io import write_video

    checks.video_file("--out", out)
    data = _build(name, n, seed, split, root, num_frames, size)
    if callable(getattr(data, "report", None)):  # a folder: what was used and skipped, once
        print(f"vidiff: data: {data.report()}")
    items = [data[i] for i in range(min(n, len(data)))]
    sheet = make_sheet([it["video"] for it in items], [it["caption"] for it in items])
    write_video(sheet, out, fps=8)
    print(
        f"wrote {out}: {len(items)} clips of {name} ({sheet.shape[1]} frames, {sheet.shape[3]}x{sheet.shape[2]})"
    )


def to_jsonable(value, decimals: int = 4):
    """Ground truth -> JSON types: tensors/arrays to nested lists (floats rounded), masks dropped."""
    if isinstance(value, dict):
        return {k: to_jsonable(v, decimals) for k, v in value.items() if k != "masks"}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, decimals) for v in value]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return np.round(value.astype(np.float64), decimals).tolist()
        return value.tolist()
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return round(value, decimals) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def export(
    name: str,
    *,
    n: int = 256,
    split: str = "train",
    seed: int = 0,
    out: str = "export",
    root: str | None = None,
    num_frames: int = 16,
    size: int = 32,
    fmt: str = "mp4",
) -> None:
    """Write N clips as one video file each plus manifest.jsonl (path, caption, ground truth).

    Every manifest line holds ``path`` (relative to OUT), ``caption``, ``index``, ``dataset``, ``split``,
    ``seed`` and ``gt`` (per-object attributes, centroids, boxes, velocities; masks are left out).

    Args:
        name: the dataset: shapes, balls, digits, folder or images (the last two need --root).
        n: clips to write (at most the dataset's size).
        split: train or heldout (synthetic datasets).
        seed: the dataset's seed.
        out: the folder to write the clips and manifest.jsonl into.
        root: the folder of a folder or images dataset.
        num_frames: frames per clip.
        size: frame height and width in pixels.
        fmt: the clips' format: mp4, gif, png (filmstrip) or webm.
    """
    from vidiff.data.video_io import write_video

    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown --fmt {fmt!r}; expected one of {EXPORT_FORMATS}")
    checks.folder("--out", out)
    data = _build(name, n, seed, split, root, num_frames, size)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    count = min(n, len(data))
    digits = max(5, len(str(count - 1)))
    manifest = directory / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(count):
            item = data[i]
            rel = f"{i:0{digits}d}.{fmt}"
            write_video(item["video"], directory / rel, fps=8)
            row = {
                "path": rel,
                "caption": item["caption"],
                "index": i,
                "dataset": name,
                "split": split,
                "seed": seed,
                "gt": to_jsonable(item["gt"]),
            }
            if "path" in item:  # folder datasets: where the clip came from
                row["source"] = item["path"]
            f.write(json.dumps(row) + "\n")
    tmp.replace(manifest)  # a manifest only appears once every clip is written
    print(f"wrote {count} clips and {manifest}")
