"""Checks every command runs on its options before any work: each failure is a one-line UserError
naming the option, so that a bad value never costs a model load or an hour of sampling."""

from __future__ import annotations

from pathlib import Path

from vidiff.errors import UserError

# What write_video can write (vidiff.data.video_io): the suffix picks the container.
WRITABLE_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".m4v", ".gif", ".png")
SEED_LIMIT = 2**63  # seeds are non-negative int64s: torch would wrap a negative or larger one


def positive(option: str, value: int | float | None) -> None:
    """``value`` (when given) is > 0 (an int: >= 1)."""
    if value is not None and value <= 0:
        least = ">= 1" if isinstance(value, int) else "> 0"
        raise UserError(f"{option} must be {least}, got {value}")


def non_negative(option: str, value: int | float | None) -> None:
    """``value`` (when given) is >= 0."""
    if value is not None and value < 0:
        raise UserError(f"{option} must be >= 0, got {value}")


def seed_range(option: str, seed: int, count: int = 1) -> None:
    """Seeds ``seed .. seed + count - 1`` are all in ``[0, 2**63)``."""
    if seed < 0 or seed + count - 1 >= SEED_LIMIT:
        last = f" (and {seed + count - 1} for the last video)" if count > 1 else ""
        raise UserError(f"{option} must be in [0, 2**63), got {seed}{last}")


def fraction(
    option: str, value: float | None, low: float, high: float, closed: bool = False
) -> None:
    """``value`` (when given) is in ``[low, high)`` (``[low, high]`` when ``closed``)."""
    if value is not None and not (low <= value < high or (closed and value == high)):
        end = "]" if closed else ")"
        raise UserError(f"{option} must be in [{low:g}, {high:g}{end}, got {value}")


def sampler_name(sampler: str | None) -> None:
    """``--sampler`` (when given) is one vidiff has."""
    from vidiff.sampling import SAMPLERS

    if sampler is not None and sampler not in SAMPLERS:
        raise UserError(f"unknown --sampler {sampler!r}; choose from {', '.join(sorted(SAMPLERS))}")


def input_file(option: str, path: str | None) -> None:
    """``path`` (when given) is an existing file."""
    if path is not None and not Path(path).is_file():
        raise UserError(f"{option}: file not found: {path}")


def video_suffix(option: str, path: str | Path) -> None:
    """``path`` ends in a suffix :func:`~vidiff.data.video_io.write_video` can write."""
    suffix = Path(path).suffix
    if suffix.lower() not in WRITABLE_SUFFIXES:
        raise UserError(
            f"{option} {path}: cannot write a video with suffix {suffix or '(none)'!r}; "
            f"use {', '.join(WRITABLE_SUFFIXES)}"
        )


def video_file(option: str, path: str | Path) -> Path:
    """``path`` can receive a video: a writable suffix, not a folder, under a folder (or a place one
    can be made)."""
    path = Path(path)
    video_suffix(option, path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / 'video.mp4'}")
    folder(f"{option} {path}: its folder", path.parent)
    return path


def folder(option: str, path: str | Path) -> Path:
    """``path`` is a folder or can become one (no file stands in its way)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{option} {path}: {p} is a file, not a folder")
            break
    return path


def video_size(option: str, text: str | None) -> tuple[int, int] | None:
    """``HxW`` (or ``N`` for N x N) as ``(H, W)``, both >= 1; None when not given."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(p.strip().isdigit() for p in parts):
        raise UserError(f"{option} must be HxW (e.g. 32x48) or N, got {text!r}")
    h, w = (int(parts[0]), int(parts[-1]))
    if min(h, w) < 1:
        raise UserError(f"{option} must be at least 1x1, got {text!r}")
    return h, w
