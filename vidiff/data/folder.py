"""Your own data: a folder of videos (and images as 1-frame clips) with captions.

:class:`VideoFolder` walks ``root`` recursively (following symlinked folders, skipping hidden names)
for ``.mp4 .webm .mov .mkv .gif .avi .m4v`` (and, with ``include_images``, ``.png .jpg .jpeg .bmp
.webp`` as 1-frame clips, for joint image–video training as in Video Diffusion Models, Ho et al.
2022). A folder named like a video (``x.mp4/``) is searched as a folder. Captions come from a sidecar
``clip.txt``, a ``metadata.csv``/``metadata.jsonl``, or the ``manifest.jsonl`` that ``vidiff data
export`` writes (:mod:`vidiff.data.captions` has the rules); a clip with none gets ``""``
(unconditional).

Every file is checked once at construction, from its container headers only (cheap: no pixel is
decoded; GIF frames are counted by demuxing packets). A file is skipped, with one warning naming it
and a line in ``dataset.skipped`` as ``(path, reason)``, when it is

* **unreadable**: empty, not a media file, truncated headers, no video stream, no frames;
* **not a video**: a still image wearing a video suffix (a PNG named ``.mp4``);
* **not a file**: a broken symlink, a pipe or device;
* **too small**: its short side is under ``min_side`` pixels (default 8);
* **extreme aspect**: long side / short side above ``max_aspect`` (default 4): a 2x8000 clip would be
  stretched to 32x128000 to cover a 32x32 crop, gigabytes for a sliver of picture;
* **too short**: fewer than ``min_frames`` frames at the sampling stride (default ``num_frames``, so
  short clips are skipped, never looped; with a smaller ``min_frames`` a short clip holds its last
  frame); an image always has its one frame;
* **bad caption**: its sidecar ``.txt`` is not UTF-8 (an encoding is never guessed).

A file that passes the check but fails while decoding (e.g. truncated after its headers) is warned
about once and recorded; ``__getitem__`` then returns the next good item (``index + 1``, ``index +
2``, ...), a choice that depends only on the files, so a resumed run or a DataLoader worker makes the
same one and an epoch never stops. (A failure found inside a worker is recorded in that worker's copy
only.) :attr:`VideoFolder.summary` and :meth:`VideoFolder.report` give the counts (used, skipped by
reason, without caption); a folder with no media, or with nothing usable, is a ``ValueError`` naming it.

Clip sampling: ``num_frames`` frames at ``fps`` (frame stride ``round(native_fps / fps)``, at least 1;
``None`` keeps every frame), from a random start (seeded by ``(seed, epoch, index)``; see
:meth:`VideoFolder.set_epoch`) or from frame 0; then an antialiased resize that covers ``size`` and a
centre (or random) crop, done to each frame as soon as it is decoded, so a clip of huge frames
costs one full-size frame of memory, not ``T``. Images always give
``T = 1``, so a batch mixing images and videos needs a length-grouping sampler (see
:attr:`VideoFolder.lengths`).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from .captions import TABLE_FILES, WHERE_CAPTIONS_GO, read_sidecar, table_captions
from .video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, _decode, from_uint8, probe_video


@dataclass
class _Entry:
    path: Path
    is_image: bool
    num_frames: int  # frames in the file
    stride: int
    fps: float  # the clip's effective frame rate (native / stride); 0 for images
    caption: str


def _walk(root: Path, suffixes: tuple[str, ...]) -> tuple[list[Path], list[Path], list[Path]]:
    """``(media paths, caption tables, media-named entries that are not regular files)``, sorted.

    Follows symlinked folders once each (a symlink loop is not walked twice); hidden names skipped.
    """
    media, tables, odd = [], [], []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if name in TABLE_FILES:
                if path.is_file():
                    tables.append(path)
            elif path.suffix.lower() in suffixes:
                (media if path.is_file() else odd).append(path)
    return sorted(media), tables, sorted(odd)


def _image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, after reading it whole (catches truncated/corrupt images)."""
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
    except Exception as e:  # PIL raises many exception types for bad files
        raise ValueError(f"cannot decode image {path}: {e}") from e
    return size[1], size[0]


def _read_image(path: Path) -> torch.Tensor:
    """An image file as ``(3, 1, H, W)``; undecodable: ``ValueError`` naming it."""
    try:
        with Image.open(path) as im:
            return from_uint8(np.asarray(im.convert("RGB"))[None])
    except Exception as e:  # PIL raises many exception types for bad files
        raise ValueError(f"cannot decode image {path}: {e}") from e


def resize_crop(
    video: torch.Tensor, size: tuple[int, int], offset: tuple[float, float] | None = None
) -> torch.Tensor:
    """Resize ``(C, T, h, w)`` so it covers ``size = (H, W)`` (aspect kept, antialiased), then crop.

    ``offset`` = (fy, fx) in [0, 1] places the crop (0.5, 0.5 = centre, the default). When the
    covering size would be over 4x the crop's area (a sliver-shaped clip), the source is cropped to
    the target's aspect first and then resized, so memory stays that of the source.
    """
    _, _, h, w = video.shape
    oh, ow = size
    fy, fx = offset or (0.5, 0.5)
    scale = max(oh / h, ow / w)
    nh, nw = max(oh, round(h * scale)), max(ow, round(w * scale))
    if nh * nw > 4 * oh * ow:
        ch, cw = min(h, max(1, round(w * oh / ow))), min(w, max(1, round(h * ow / oh)))
        y0, x0 = round((h - ch) * fy), round((w - cw) * fx)
        video, h, w, nh, nw = video[:, :, y0 : y0 + ch, x0 : x0 + cw], ch, cw, oh, ow
    if (nh, nw) != (h, w):
        frames = video.permute(1, 0, 2, 3)  # "c t h w -> t c h w" for 2D resampling
        frames = F.interpolate(
            frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
        )
        video = frames.permute(1, 0, 2, 3).clamp_(0, 1)
    y0, x0 = round((nh - oh) * fy), round((nw - ow) * fx)
    return video[:, :, y0 : y0 + oh, x0 : x0 + ow].contiguous()


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """An image file as a 1-frame video ``(3, 1, H, W)`` in [0, 1]; with ``size``, resized to cover it
    (aspect kept, antialiased) and centre-cropped. Missing file: ``FileNotFoundError``; undecodable:
    ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    if size is None:
        return _read_image(path)
    return resize_crop(_read_image(path), (size, size) if isinstance(size, int) else tuple(size))


class VideoFolder(Dataset):
    """Videos (and images as 1-frame clips) from a folder tree, with captions (see the module docstring).

    Items are ``{"video": (3, T, H, W) float32 in [0, 1], "caption": str, "gt": None, "path": str}``
    (``path`` relative to ``root``). ``min_side`` and ``max_aspect`` are the skipping rules for tiny
    and sliver-shaped files.
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
        min_side: int = 8,
        max_aspect: float = 4.0,
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
        if min_side < 1 or max_aspect < 1:
            raise ValueError(
                f"min_side must be >= 1 and max_aspect >= 1, got {min_side} and {max_aspect}"
            )
        self.num_frames, self.fps, self.seed, self.epoch = num_frames, fps, seed, 0
        self.random_start, self.random_crop = random_start, random_crop
        self.min_side, self.max_aspect = min_side, float(max_aspect)
        self.skipped: list[tuple[str, str]] = []
        self.skip_counts: Counter[str] = Counter()
        self._named: set[str] = set()  # files already warned about
        self.caption_warnings = 0

        suffixes = (VIDEO_SUFFIXES if include_videos else ()) + (
            IMAGE_SUFFIXES if include_images else ()
        )
        files, tables, odd = _walk(self.root, suffixes)
        kinds = " ".join(suffixes)
        if not files and not odd:
            raise ValueError(f"no media files in {self.root} (looked recursively for {kinds})")
        for path in odd:
            if path.is_symlink() and not path.exists():
                self._skip(path, "not a file", f"broken symlink to {os.readlink(path)}")
            else:
                self._skip(path, "not a file", "not a regular file (a pipe, socket or device)")
        captions = table_captions(tables, self._caption_warning)

        self.entries: list[_Entry] = []
        for path in files:
            entry = self._probe(path, captions)
            if entry is not None:
                self.entries.append(entry)
        if not self.entries:
            reasons = "; ".join(f"{p}: {r}" for p, r in self.skipped[:3])
            raise ValueError(
                f"nothing usable in {self.root}: all {len(files) + len(odd)} media files were "
                f"skipped ({reasons}{' ...' if len(self.skipped) > 3 else ''})"
            )
        stray = sorted(str(p) for p in captions if not p.exists())
        if stray:
            self._caption_warning(
                f"{len(stray)} caption rows name files that do not exist (first: {stray[0]}); "
                "a path in a table is relative to the table's own folder"
            )

    # -- construction ---------------------------------------------------------------------------
    def _skip(self, path: Path, kind: str, detail: str) -> None:
        """Warn once per file and record it, counted under ``kind``."""
        name = str(path)
        if name in self._named:
            return
        self._named.add(name)
        self.skipped.append((name, f"{kind}: {detail}"))
        self.skip_counts[kind] += 1
        warnings.warn(f"VideoFolder: skipping {name}: {kind}: {detail}", stacklevel=3)

    def _caption_warning(self, message: str) -> None:
        self.caption_warnings += 1
        warnings.warn(f"VideoFolder: {message}", stacklevel=3)

    def _probe(self, path: Path, captions: dict[Path, str]) -> _Entry | None:
        try:
            empty = path.stat().st_size == 0
        except OSError as e:  # vanished or unreadable since the walk
            self._skip(path, "unreadable", str(e))
            return None
        if empty:
            self._skip(path, "unreadable", "empty file")
            return None
        is_image = path.suffix.lower() in IMAGE_SUFFIXES
        try:
            if is_image:
                n, native_fps, (h, w) = 1, 0.0, _image_size(path)
            else:
                n, native_fps, (h, w) = probe_video(path)
        except ValueError as e:
            detail = str(e).replace(f"cannot read video {path}: ", "")  # the path is named already
            self._skip(path, "not a video" if "not a video" in detail else "unreadable", detail)
            return None
        if min(h, w) < self.min_side:
            self._skip(
                path, "too small", f"{w}x{h} pixels, the short side is under {self.min_side}"
            )
            return None
        if max(h, w) / min(h, w) > self.max_aspect:
            self._skip(
                path,
                "extreme aspect",
                f"{w}x{h} pixels is {max(h, w) / min(h, w):.3g}:1, over max_aspect="
                f"{self.max_aspect:g}",
            )
            return None
        stride = 1
        if self.fps is not None and native_fps > 0 and not is_image:
            stride = max(1, round(native_fps / self.fps))
        need = 1 if is_image else (self.min_frames - 1) * stride + 1
        if n < need:
            detail = f"{n} frames, needs {need} ({self.min_frames} at stride {stride})"
            self._skip(path, "too short", detail)
            return None
        sidecar = path.with_suffix(".txt")
        try:
            caption = read_sidecar(sidecar) if sidecar.is_file() else None
        except (ValueError, OSError) as e:
            self._skip(path, "bad caption", str(e))
            return None
        if caption is None:
            caption = captions.get(path.resolve(), "")
        fps = native_fps / stride if native_fps > 0 else 0.0
        return _Entry(path, is_image, n, stride, fps, caption)

    # -- what was found ---------------------------------------------------------------------------
    @property
    def summary(self) -> dict:
        """``{"used": n, "skipped": {reason: n}, "uncaptioned": n, "caption_warnings": n}``.

        A file that "failed to decode" after passing the check stays among the ``used`` ones: the
        clip windows of it that decode are still trained on.
        """
        return {
            "used": len(self.entries),
            "skipped": dict(sorted(self.skip_counts.items())),
            "uncaptioned": sum(not e.caption for e in self.entries),
            "caption_warnings": self.caption_warnings,
        }

    def report(self) -> str:
        """One line on what was found: files used, skipped by reason, clips without a caption."""
        s = self.summary
        line = f"{self.root}: {s['used']} files used"
        if s["skipped"]:
            reasons = ", ".join(f"{n} {kind}" for kind, n in s["skipped"].items())
            line += f", {sum(s['skipped'].values())} skipped ({reasons})"
        if s["uncaptioned"] == s["used"]:
            line += f"; no captions found ({WHERE_CAPTIONS_GO})"
        elif s["uncaptioned"]:
            line += f"; {s['uncaptioned']} without a caption (trained unconditionally)"
        if s["caption_warnings"]:
            line += f"; {s['caption_warnings']} caption-table warnings"
        return line

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
            video = _read_image(e.path)
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
        offset = tuple(rng.uniform(0, 1, size=2)) if self.random_crop else None
        if e.is_image:
            video = resize_crop(video, self.size, offset)
        else:
            # Each frame is resized and cropped as soon as it is decoded (the same numbers as
            # doing it to the whole clip): memory holds one full-size frame, never the clip.
            frames, _ = _decode(
                e.path, unique, lambda a: resize_crop(from_uint8(a[None]), self.size, offset)
            )
            video = torch.cat(frames, dim=1)[:, np.searchsorted(unique, wanted)]
        rel = e.path.relative_to(self.root).as_posix()
        return {"video": video, "caption": e.caption, "gt": None, "path": rel}

    def __getitem__(self, index: int) -> dict:
        n = len(self.entries)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for VideoFolder of length {n}")
        # The item itself, else the next one that decodes. Every file is tried afresh each time (no
        # cache of failures), so the choice depends only on the files: resumes and workers agree.
        for k in range(n):
            j = (index + k) % n
            try:
                return self._load(j)
            except (ValueError, OSError, RuntimeError) as err:
                self._skip(self.entries[j].path, "failed to decode", str(err))
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
        min_side: int = 8,
        max_aspect: float = 4.0,
    ) -> None:
        super().__init__(
            root,
            num_frames=1,
            size=size,
            random_crop=random_crop,
            seed=seed,
            include_images=True,
            include_videos=False,
            min_side=min_side,
            max_aspect=max_aspect,
        )
