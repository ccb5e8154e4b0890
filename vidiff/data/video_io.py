"""Video I/O with PyAV (FFmpeg): one tensor convention for the whole toolkit.

A video is a float32 tensor ``(C, T, H, W)`` with ``C = 3`` (RGB) and values in ``[0, 1]``
(see ``docs/architecture.md``). :func:`read_video` returns that and the frame rate;
:func:`write_video` accepts it (or ``uint8`` in ``[0, 255]``) and picks the format from the suffix:

* ``.mp4`` / ``.mov`` / ``.mkv`` — H.264 (libx264), ``yuv420p``, ``+faststart`` so browsers play it
  while downloading. 4:2:0 chroma needs even sizes: an odd height/width is padded by one replicated
  edge row/column (so reading it back gives the even size). Lossy: see ``tests/test_video_io.py`` for
  the measured round-trip error.
* ``.webm`` — VP9, ``yuv420p`` (same padding rule).
* ``.gif`` — an exact palette: content with at most 256 distinct colours (all synthetic sets) round-trips
  bit-exactly; richer content is median-cut quantised without dithering. Loops forever. GIF stores
  delays in 1/100 s, so the frame rate read back is only as exact as that.
* ``.png`` — a horizontal filmstrip of all ``T`` frames (``(H, T*W)`` pixels), with the frame count in a
  PNG text chunk so :func:`read_video` splits it back into ``T`` frames: exact round trip. A PNG without
  that chunk (or a ``.jpg``) reads as a 1-frame video.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, PngImagePlugin

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".avi", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_PNG_FRAMES_KEY = "vidiff_frames"
_PNG_FPS_KEY = "vidiff_fps"


def to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(C, T, H, W)`` float in [0, 1] or uint8 -> ``(T, H, W, 3)`` uint8 (what encoders eat).

    One or three channels are accepted (grayscale is repeated to RGB); anything else is an error.
    """
    if isinstance(video, np.ndarray):
        video = torch.from_numpy(video)
    if not isinstance(video, torch.Tensor) or video.ndim != 4:
        shape = tuple(video.shape) if hasattr(video, "shape") else type(video).__name__
        raise ValueError(f"expected a video tensor (C, T, H, W), got {shape}")
    c = video.shape[0]
    if c not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels in a (C, T, H, W) video, got C={c}")
    video = video.detach().cpu()
    if video.dtype == torch.uint8:
        u8 = video
    elif video.is_floating_point():
        # Round (not truncate) so that k/255 survives a float round trip exactly.
        u8 = (video.float().clamp(0, 1) * 255).round().to(torch.uint8)
    else:
        raise ValueError(f"expected a float video in [0, 1] or uint8, got dtype {video.dtype}")
    if c == 1:
        u8 = u8.expand(3, -1, -1, -1)
    return np.ascontiguousarray(u8.permute(1, 2, 3, 0).numpy())


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(C, T, H, W)`` float32 in [0, 1]."""
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        frames = frames.copy()
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Replicate the last row/column when H or W is odd (yuv420p halves chroma resolution)."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def _fps_fraction(fps: float) -> Fraction:
    if not (isinstance(fps, (int, float, Fraction)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def _open_encoder(path: Path, fps: float, codec: str, crf: int, h: int, w: int):
    """An open container and its video stream for ``codec`` at an even ``(h, w)``."""
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    container = av.open(str(path), "w", options=options)
    stream = container.add_stream(codec, rate=_fps_fraction(fps))
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    if codec == "libx264":
        # Main-profile-compatible settings every browser decodes; crf trades size for fidelity.
        stream.options = {"crf": str(crf), "preset": "medium"}
    else:
        stream.options = {"crf": str(crf), "b": "0"}
    return container, stream


def _encode(container, stream, frames: np.ndarray | None) -> None:
    """Encode ``(T, H, W, 3)`` uint8 frames (already even-sized); None flushes the encoder."""
    for frame in [None] if frames is None else frames:
        vf = None if frame is None else av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in stream.encode(vf):
            container.mux(packet)


def _write_encoded(frames: np.ndarray, path: Path, fps: float, codec: str, crf: int) -> None:
    frames = _pad_even(frames)
    _, h, w, _ = frames.shape
    container, stream = _open_encoder(path, fps, codec, crf, h, w)
    with container:
        _encode(container, stream, frames)
        _encode(container, stream, None)


_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".m4v": "libx264"}


class VideoWriter:
    """Write a video chunk by chunk: ``with VideoWriter(path, fps) as out: out.write(chunk)`` with
    ``(C, n, H, W)`` chunks (float in [0, 1] or uint8), for videos made window by window (long video).

    ``.mp4``/``.mov``/``.mkv``/``.webm`` are encoded as chunks arrive, so memory does not grow with the
    length; ``.gif`` (one palette for the whole clip) and ``.png`` (one filmstrip) keep the frames and
    write them on close. Same formats and settings as :func:`write_video`, which equals writing the
    whole video as one chunk. If the block raises, the partial file is removed.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 8, *, crf: int = 12) -> None:
        self.path, self.fps, self.crf = Path(path), fps, crf
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (*_CODECS, ".webm", ".gif", ".png"):
            raise ValueError(
                f"cannot write {self.path}: unknown suffix {self.suffix!r} "
                "(use .mp4, .webm, .gif or .png)"
            )
        _fps_fraction(fps)
        self.frames_written = 0
        self._kept: list[np.ndarray] = []
        self._enc = None
        self._size: tuple[int, int] | None = None

    def write(self, chunk: torch.Tensor | np.ndarray) -> None:
        frames = to_uint8(chunk)
        if self._size is None:
            self._size = frames.shape[1:3]
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif frames.shape[1:3] != self._size:
            raise ValueError(f"chunk of size {frames.shape[1:3]} after chunks of {self._size}")
        self.frames_written += frames.shape[0]
        if self.suffix in (".gif", ".png"):
            self._kept.append(frames)
            return
        frames = _pad_even(frames)
        if self._enc is None:
            codec = _CODECS.get(self.suffix, "libvpx-vp9")
            crf = self.crf if codec == "libx264" else max(self.crf, 4)
            self._enc = _open_encoder(self.path, self.fps, codec, crf, *frames.shape[1:3])
        _encode(*self._enc, frames)

    def close(self) -> None:
        if self.frames_written == 0:
            raise ValueError(f"cannot write an empty video (T=0) to {self.path}")
        if self._enc is not None:
            container, stream = self._enc
            _encode(container, stream, None)
            container.close()
            self._enc = None
        elif self._kept:
            frames, self._kept = np.concatenate(self._kept), []
            (_write_gif if self.suffix == ".gif" else _write_png)(frames, self.path, self.fps)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
            return
        if self._enc is not None:
            self._enc[0].close()
            self._enc = None
        self.path.unlink(missing_ok=True)


def _palette_indices(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact global palette when there are <= 256 colours, else a median-cut quantisation."""
    t, h, w, _ = frames.shape
    flat = frames.reshape(-1, 3).astype(np.uint32)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]  # one int per colour: fast unique
    uniq, inverse = np.unique(keys, return_inverse=True)
    if len(uniq) <= 256:
        colours = np.stack([uniq >> 16, (uniq >> 8) & 255, uniq & 255], -1).astype(np.uint8)
        return inverse.reshape(t, h, w).astype(np.uint8), colours
    montage = Image.fromarray(frames.reshape(t * h, w, 3))
    q = montage.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal = np.array(q.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
    return np.asarray(q, dtype=np.uint8).reshape(t, h, w), pal


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    _fps_fraction(fps)
    index, colours = _palette_indices(frames)
    _, h, w, _ = frames.shape
    palette = np.zeros((256, 4), dtype=np.uint8)  # ARGB, opaque
    palette[:, 0] = 255
    palette[: len(colours), 1:] = colours
    # PyAV, not Pillow: Pillow merges identical consecutive frames, which would change T.
    with av.open(str(path), "w", format="gif", options={"loop": "0"}) as container:
        stream = container.add_stream("gif", rate=_fps_fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "pal8"
        stream.time_base = Fraction(1, 100)  # GIF delays are centiseconds
        for t, idx in enumerate(index):
            frame = av.VideoFrame.from_ndarray((np.ascontiguousarray(idx), palette), format="pal8")
            frame.pts, frame.time_base = round(t * 100 / fps), Fraction(1, 100)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_png(frames: np.ndarray, path: Path, fps: float) -> None:
    t, h, w, _ = frames.shape
    strip = frames.transpose(1, 0, 2, 3).reshape(h, t * w, 3)  # frames side by side
    info = PngImagePlugin.PngInfo()
    info.add_text(_PNG_FRAMES_KEY, str(t))
    info.add_text(_PNG_FPS_KEY, repr(float(fps)))
    Image.fromarray(strip).save(path, pnginfo=info)


def write_video(
    video: torch.Tensor | np.ndarray, path: str | os.PathLike, fps: float = 8, *, crf: int = 12
) -> None:
    """Write a ``(C, T, H, W)`` video (float in [0, 1] or uint8) to ``.mp4``/``.webm``/``.gif``/``.png``.

    The format follows the suffix (see the module docstring); parent folders are created. ``crf`` is
    the H.264/VP9 constant-rate factor (lower = closer to lossless; 12 keeps small synthetic clips
    crisp at a few kB).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    frames = to_uint8(video)
    if frames.shape[0] == 0:
        raise ValueError(f"cannot write an empty video (T=0) to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".mp4", ".mov", ".mkv", ".m4v"):
        _write_encoded(frames, path, fps, "libx264", crf)
    elif suffix == ".webm":
        _write_encoded(frames, path, fps, "libvpx-vp9", max(crf, 4))
    elif suffix == ".gif":
        _write_gif(frames, path, fps)
    elif suffix == ".png":
        _write_png(frames, path, fps)
    else:
        raise ValueError(
            f"cannot write {path}: unknown suffix {suffix!r} (use .mp4, .webm, .gif or .png)"
        )


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image as a 1-frame video ``(3, 1, H, W)`` float32 in [0, 1]."""
    with Image.open(path) as im:
        return from_uint8(np.asarray(im.convert("RGB"))[None])


def read_video(path: str | os.PathLike) -> tuple[torch.Tensor, float]:
    """Read a video (or an image, as one frame) -> ``(video (3, T, H, W) float32 in [0, 1], fps)``.

    Decodes with PyAV. A vidiff ``.png`` filmstrip is split back into its frames; other images are
    1-frame videos with ``fps = 0.0``. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming the file when it cannot be decoded or holds no frames.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such video file: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            with Image.open(path) as im:
                text = dict(getattr(im, "text", {}) or {})
                rgb = np.asarray(im.convert("RGB"))
        except Exception as e:  # PIL raises many types for bad files
            raise ValueError(f"cannot decode image {path}: {e}") from e
        t = int(text.get(_PNG_FRAMES_KEY, 1))
        h, tw, _ = rgb.shape
        if t > 1 and tw % t == 0:
            frames = rgb.reshape(h, t, tw // t, 3).transpose(1, 0, 2, 3)
            return from_uint8(frames), float(text.get(_PNG_FPS_KEY, 0.0))
        return from_uint8(rgb[None]), 0.0
    frames, fps = _decode(path)
    return from_uint8(frames), fps


def _stream_fps(stream) -> float:
    rate = stream.guessed_rate or stream.average_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _decode(
    path: Path, indices: list[int] | None = None, transform: Callable | None = None
) -> tuple[np.ndarray | list, float]:
    """Decode all frames (or only ``indices``, sorted, in decode order) to ``(T, H, W, 3)`` uint8.

    With ``transform``, each wanted ``(H, W, 3)`` frame goes through it as soon as it is decoded and
    the list of results is returned: a caller that shrinks frames never holds a clip of huge frames.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = _stream_fps(stream)
            wanted = None if indices is None else set(indices)
            last = None if indices is None else max(indices)
            frames, count = [], 0
            for i, frame in enumerate(container.decode(stream)):
                count = i + 1
                if wanted is None or i in wanted:
                    array = frame.to_ndarray(format="rgb24")
                    frames.append(array if transform is None else transform(array))
                if last is not None and i >= last:
                    break
    except ValueError as e:
        raise ValueError(f"cannot decode video {path}: {e}") from e
    except (av.FFmpegError, OSError, RuntimeError, IndexError) as e:
        raise ValueError(f"cannot decode video {path}: {e}") from e
    if count == 0:
        raise ValueError(f"cannot decode video {path}: it holds no frames")
    if indices is not None and len(frames) < len(set(indices)):
        raise ValueError(
            f"video {path} ended after {count} frames, needed frame {last} (truncated or corrupt?)"
        )
    return (np.stack(frames) if transform is None else frames), fps


def probe_video(path: str | os.PathLike) -> tuple[int, float, tuple[int, int]]:
    """Cheap metadata probe -> ``(num_frames, fps, (H, W))`` from the container headers.

    When the container does not record a frame count (GIF, some WebM/MKV), the frames are counted by
    demuxing packets, which does not decode pixels. Raises ``ValueError`` naming the file on failure,
    and for a still image in disguise (a PNG or JPEG named ``.mp4``).
    """
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            kind = container.format.name
            if kind.endswith("_pipe") or kind == "image2":  # FFmpeg reads single images too
                raise ValueError(f"it is an image ({kind.split('_')[0]}), not a video")
            stream = container.streams.video[0]
            n = int(stream.frames or 0)
            fps = _stream_fps(stream)
            size = (int(stream.codec_context.height), int(stream.codec_context.width))
            if n <= 0:
                n = sum(1 for p in container.demux(stream) if p.size > 0)
    except (av.FFmpegError, OSError, RuntimeError, ValueError) as e:
        # FFmpeg's own words ("Invalid data found when processing input"), without the path again.
        raise ValueError(f"cannot read video {path}: {getattr(e, 'strerror', None) or e}") from e
    if n <= 0 or size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"cannot read video {path}: it holds no frames")
    return n, fps, size
