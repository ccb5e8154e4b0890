"""Your own data: a folder of videos (and images as 1-frame clips) with captions.

:class:`VideoFolder` walks ``root`` recursively for ``.mp4 .webm .mov .mkv .gif .avi .m4v`` (and, with
``include_images``, ``.png .jpg .jpeg .bmp .webp`` as 1-frame clips, for joint image–video training as
in Video Diffusion Models, Ho et al. 2022). Captions, first match wins:

1. a sidecar ``.txt`` with the same stem next to the file (``clip.mp4`` -> ``clip.txt``);
2. a row in a ``metadata.csv`` (header with a path column ``path``/``file_name``/``file`` and a caption
   column ``caption``/``text``/``prompt``) or ``metadata.jsonl`` (one object per line with the same
   keys) anywhere in the tree; paths are relative to the metadata file's folder;
3. ``""`` (unconditional).

Every file is probed once at construction from its container headers (cheap; GIF frames are counted by
demuxing packets without decoding). A corrupt, empty or too-short file is skipped with one warning
naming it and recorded in ``dataset.skipped`` as ``(path, reason)``; if a file fails later while being
decoded, ``__getitem__`` warns once, records it and deterministically returns the next good item, so an
epoch never stops. A folder with no media, or with nothing decodable, is a ``ValueError`` naming it.
(With DataLoader workers, a failure found inside a worker is recorded in that worker's copy only.)

Clip sampling: ``num_frames`` frames at ``fps`` (frame stride ``round(native_fps / fps)``, at least 1;
``None`` keeps every frame), from a random start (seeded by ``(seed, epoch, index)``; see
:meth:`VideoFolder.set_epoch`) or from frame 0; then an antialiased resize that covers ``size`` and a
centre (or random) crop. Clips shorter than needed but with at least ``min_frames`` frames hold their
last frame; by default ``min_frames = num_frames`` (no padding). Images always give ``T = 1``, so a
batch mixing images and videos needs a length-grouping sampler (see :attr:`VideoFolder.lengths`).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from .video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, _decode, from_uint8, probe_video

PATH_KEYS = ("path", "file_name", "file")
CAPTION_KEYS = ("caption", "text", "prompt")


@dataclass
class _Entry:
    path: Path
    is_image: bool
    num_frames: int  # frames in the file
    stride: int
    fps: float  # the clip's effective frame rate (native / stride); 0 for images
    caption: str


def _read_metadata(file: Path) -> dict[Path, str]:
    """``metadata.csv``/``.jsonl`` -> {absolute path: caption}; a bad header is an error naming it."""
    if file.suffix == ".csv":
        with open(file, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = []
        with open(file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{file}, line {n}: not valid JSON ({e})") from e
    out = {}
    for row in rows:
        pk = next((k for k in PATH_KEYS if k in row), None)
        ck = next((k for k in CAPTION_KEYS if k in row), None)
        if pk is None or ck is None:
            raise ValueError(
                f"{file}: each row needs a path column ({'/'.join(PATH_KEYS)}) and a caption column "
                f"({'/'.join(CAPTION_KEYS)}); got {sorted(row)}"
            )
        out[(file.parent / str(row[pk])).resolve()] = str(row[ck] or "").strip()
    return out


def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()  # reads the whole file: catches truncated/corrupt images
    except Exception as e:  # PIL raises many exception types for bad files
        raise ValueError(f"cannot decode image {path}: {e}") from e


def resize_crop(
    video: torch.Tensor, size: tuple[int, int], offset: tuple[float, float] | None = None
) -> torch.Tensor:
    """Resize ``(C, T, h, w)`` so it covers ``size = (H, W)`` (aspect kept, antialiased), then crop.

    ``offset`` = (fy, fx) in [0, 1] places the crop (0.5, 0.5 = centre, the default).
    """
    _, _, h, w = video.shape
    oh, ow = size
    scale = max(oh / h, ow / w)
    nh, nw = max(oh, round(h * scale)), max(ow, round(w * scale))
    if (nh, nw) != (h, w):
        frames = video.permute(1, 0, 2, 3)  # "c t h w -> t c h w" for 2D resampling
        frames = F.interpolate(
            frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
        )
        video = frames.permute(1, 0, 2, 3).clamp_(0, 1)
    fy, fx = offset or (0.5, 0.5)
    y0, x0 = round((nh - oh) * fy), round((nw - ow) * fx)
    return video[:, :, y0 : y0 + oh, x0 : x0 + ow].contiguous()


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """An image file as a 1-frame video ``(3, 1, H, W)`` in [0, 1]; with ``size``, resized to cover it
    (aspect kept, antialiased) and centre-cropped. Missing file: ``FileNotFoundError``; undecodable:
    ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as im:
            video = from_uint8(np.asarray(im.convert("RGB"))[None])
    except Exception as e:  # PIL raises many exception types for bad files
        raise ValueError(f"cannot decode image {path}: {e}") from e
    if size is None:
        return video
    return resize_crop(video, (size, size) if isinstance(size, int) else tuple(size))


class VideoFolder(Dataset):
    """Videos (and images as 1-frame clips) from a folder tree, with captions (see the module docstring).

    Items are ``{"video": (3, T, H, W) float32 in [0, 1], "caption": str, "gt": None, "path": str}``
    (``path`` relative to ``root``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        num_frames: int = 16,
        size: int | tuple[int, int] = 32,
        fps: float | None = None,
        random_start: bool = True,
        random_crop: bool = False,
        seed: int = 0,
        include_images: bool = True,
        min_frames: int | None = None,
        include_videos: bool = True,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.root}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be an int or (H, W) of positive ints, got {size!r}")
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive or None, got {fps}")
        self.min_frames = num_frames if min_frames is None else min_frames
        if not 1 <= self.min_frames <= num_frames:
            raise ValueError(
                f"min_frames must be in [1, num_frames={num_frames}], got {min_frames}"
            )
        self.num_frames, self.fps, self.seed, self.epoch = num_frames, fps, seed, 0
        self.random_start, self.random_crop = random_start, random_crop
        self.skipped: list[tuple[str, str]] = []
        self._bad: set[int] = set()

        suffixes = (VIDEO_SUFFIXES if include_videos else ()) + (
            IMAGE_SUFFIXES if include_images else ()
        )
        files = sorted(
            p
            for p in self.root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and not any(s.startswith(".") for s in p.relative_to(self.root).parts)
        )
        kinds = " ".join(suffixes)
        if not files:
            raise ValueError(f"no media files in {self.root} (looked recursively for {kinds})")
        captions: dict[Path, str] = {}
        for name in ("metadata.csv", "metadata.jsonl"):
            for meta in sorted(self.root.rglob(name)):
                captions.update(_read_metadata(meta))

        self.entries: list[_Entry] = []
        for path in files:
            entry = self._probe(path, captions)
            if entry is not None:
                self.entries.append(entry)
        if not self.entries:
            reasons = "; ".join(f"{p}: {r}" for p, r in self.skipped[:3])
            raise ValueError(
                f"nothing usable in {self.root}: all {len(files)} media files were skipped ({reasons}"
                f"{' ...' if len(self.skipped) > 3 else ''})"
            )

    # -- construction ---------------------------------------------------------------------------
    def _skip(self, path: Path, reason: str) -> None:
        """Warn once per file and record it."""
        name = str(path)
        if any(p == name for p, _ in self.skipped):
            return
        self.skipped.append((name, reason))
        warnings.warn(f"VideoFolder: skipping {name}: {reason}", stacklevel=3)

    def _caption(self, path: Path, captions: dict[Path, str]) -> str:
        sidecar = path.with_suffix(".txt")
        if sidecar.is_file():
            return sidecar.read_text(encoding="utf-8").strip()
        return captions.get(path.resolve(), "")

    def _probe(self, path: Path, captions: dict[Path, str]) -> _Entry | None:
        if path.stat().st_size == 0:
            self._skip(path, "empty file")
            return None
        try:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                _check_image(path)
                return _Entry(path, True, 1, 1, 0.0, self._caption(path, captions))
            n, native_fps, _ = probe_video(path)
        except ValueError as e:
            self._skip(path, str(e))
            return None
        stride = 1
        if self.fps is not None and native_fps > 0:
            stride = max(1, round(native_fps / self.fps))
        need = (self.min_frames - 1) * stride + 1
        if n < need:
            self._skip(
                path, f"too short: {n} frames, need {need} ({self.min_frames} at stride {stride})"
            )
            return None
        fps = native_fps / stride if native_fps > 0 else 0.0
        return _Entry(path, False, n, stride, fps, self._caption(path, captions))

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def lengths(self) -> list[int]:
        """Frames per item (1 for images, ``num_frames`` for videos), for length-grouped batching."""
        return [1 if e.is_image else self.num_frames for e in self.entries]

    def captions(self) -> list[str]:
        """Every item's caption, known without decoding (e.g. to build a text vocabulary)."""
        return [e.caption for e in self.entries]

    def set_epoch(self, epoch: int) -> None:
        """Change the random starts/crops for a new epoch (items stay deterministic given the epoch)."""
        self.epoch = int(epoch)

    def _load(self, index: int) -> dict:
        e = self.entries[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if e.is_image:
            video = load_image(e.path)
        else:
            span = (self.num_frames - 1) * e.stride + 1
            start = (
                int(rng.integers(0, e.num_frames - span + 1))
                if self.random_start and e.num_frames > span
                else 0
            )
            # Past the end (allowed down to min_frames): hold the last frame.
            wanted = np.minimum(start + e.stride * np.arange(self.num_frames), e.num_frames - 1)
            unique = sorted(set(wanted.tolist()))
            frames, _ = _decode(e.path, unique)
            frames = frames[np.searchsorted(unique, wanted)]
            video = from_uint8(frames)
        offset = tuple(rng.uniform(0, 1, size=2)) if self.random_crop else None
        video = resize_crop(video, self.size, offset)
        rel = e.path.relative_to(self.root).as_posix()
        return {"video": video, "caption": e.caption, "gt": None, "path": rel}

    def __getitem__(self, index: int) -> dict:
        n = len(self.entries)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for VideoFolder of length {n}")
        for k in range(n):  # the item itself, else the next good one (deterministic)
            j = (index + k) % n
            if j in self._bad:
                continue
            try:
                return self._load(j)
            except (ValueError, OSError, RuntimeError) as err:
                self._bad.add(j)
                self._skip(self.entries[j].path, f"failed to decode: {err}")
        raise ValueError(
            f"nothing decodable in {self.root}: every file failed ({len(self.skipped)} skipped)"
        )


class ImageFolder(VideoFolder):
    """Images from a folder tree as 1-frame videos ``(3, 1, H, W)`` (image pre-training of inflated models).

    Same captions, skipping and cropping rules as :class:`VideoFolder`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int | tuple[int, int] = 32,
        random_crop: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            root,
            num_frames=1,
            size=size,
            random_crop=random_crop,
            seed=seed,
            include_images=True,
            include_videos=False,
        )
