"""Resumable training checkpoints, written atomically.

A checkpoint is a directory ``<out_dir>/checkpoints/ckpt-<step:07d>/`` holding

* ``state.pt`` -- everything the main process owns: model, EMA, optimiser and LR-schedule state, step,
  data position and the resolved config (a dict), all plain tensors/containers so that it loads with
  ``torch.load(weights_only=True)`` -- no pickled code is ever executed;
* ``rng-<rank>.pt`` -- each process's RNG states (Python, NumPy, torch CPU and CUDA).

Atomicity (a crash at any moment leaves either the old or the new checkpoint, never a partial one): all
files are written into a hidden temporary directory next to the final one, flushed, and then the
directory is renamed with ``os.replace`` -- an atomic operation on POSIX file systems. ``latest``
discovery only ever looks at complete, renamed directories; leftovers of a crash are removed by the next
save. After a save the oldest checkpoints beyond ``keep_last`` are deleted; the trainer never saves
non-finite weights (see :mod:`vidiff.train.loop`), so every checkpoint kept is a good one.

A run starts from :func:`start_point`; a resume uses :func:`readable_checkpoint`: the newest
checkpoint whose files all load and whose weights are finite, naming each newer one it skipped and
why (a disk that filled up, a copy that was cut short, a checkpoint written by an older vidiff from
a diverged run).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidiff.files import first_nonfinite

STATE_NAME = "state.pt"
CKPT_DIR = "checkpoints"
_CKPT_RE = re.compile(r"^ckpt-(\d+)$")
_TMP_PREFIX = ".tmp-ckpt-"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / CKPT_DIR


def list_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir``, as ``(step, path)`` sorted by step."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and (p / STATE_NAME).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None."""
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (-> its latest checkpoint), a ``checkpoints/`` folder, a checkpoint directory or
    its ``state.pt``; FileNotFoundError naming ``path`` if none of these is there."""
    p = Path(path)
    if p.is_file() and p.name == STATE_NAME:
        return p.parent
    if (p / STATE_NAME).is_file():
        return p
    run_dir = p.parent if p.name == CKPT_DIR else p
    if run_dir.is_dir() and (latest := latest_checkpoint(run_dir)) is not None:
        return latest
    raise FileNotFoundError(
        f"no vidiff training checkpoint at {path} (expected a run directory with {CKPT_DIR}/ckpt-*/"
        f"{STATE_NAME}, or a checkpoint directory)"
    )


def load_state(checkpoint: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint's ``state.pt`` safely (``weights_only=True``: tensors and containers only)."""
    path = resolve_checkpoint(checkpoint) / STATE_NAME
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: name it instead of a pickle traceback
        raise ValueError(f"cannot read checkpoint {path}: {e}") from e


def readable_checkpoint(
    out_dir: str | Path,
) -> tuple[Path | None, dict[str, Any] | None, list[tuple[Path, str]]]:
    """``(path, state, skipped)``: the newest checkpoint of a run whose ``state.pt`` and every
    process's ``rng-<rank>.pt`` load and whose model and EMA weights are finite, its state, and the
    newer checkpoint directories passed over with the reason. Every process reads the same files, so
    all of them choose the same checkpoint."""
    root = checkpoint_dir(out_dir)
    found = sorted(
        (int(m.group(1)), p)
        for p in (root.iterdir() if root.is_dir() else ())
        if (m := _CKPT_RE.match(p.name)) and p.is_dir()
    )
    skipped: list[tuple[Path, str]] = []
    for _, path in reversed(found):
        state, why = _check_checkpoint(path)
        if why is None:
            return path, state, skipped
        skipped.append((path, why))
    return None, None, skipped


def _check_checkpoint(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(state, None)`` for a usable checkpoint directory, else ``(None, why not)``."""
    unreadable = "is unreadable (truncated or corrupt)"
    if not (path / STATE_NAME).is_file():
        return None, f"{STATE_NAME} is missing"
    try:
        state = load_state(path)
    except ValueError:
        return None, f"{STATE_NAME} {unreadable}"
    for rank in range(int(state.get("num_processes", 1))):
        try:
            if load_rng(path, rank) is None:
                return None, f"rng-{rank}.pt is missing"
        except ValueError:
            return None, f"rng-{rank}.pt {unreadable}"
    for key in ("model", "ema"):
        if key not in state:
            return None, f"{STATE_NAME} has no {key!r} entry"
    for key, weights in (("model", state["model"]), ("EMA", state["ema"]["module"])):
        if (bad := first_nonfinite(weights)) is not None:
            return None, f"non-finite {key} weights (first in {bad!r})"
    return state, None


def start_point(
    out_dir: Path, resume: bool, log: Callable[[str], None]
) -> tuple[Path | None, dict | None]:
    """The checkpoint a run starts from and its state, ``(None, None)`` for a fresh run: with
    ``resume``, the newest readable one (naming those skipped); without, a run directory that holds
    checkpoints is refused rather than overwritten."""
    if not resume:
        if (found := latest_checkpoint(out_dir)) is not None:
            raise ValueError(
                f"{out_dir} already holds checkpoints (latest: {found.name}); pass --resume to "
                "continue it, or choose another train.out_dir"
            )
        return None, None
    ckpt, state, skipped = readable_checkpoint(out_dir)
    for path, why in skipped:
        log(f"vidiff: skipping checkpoint {path.name}: {why}")
    if ckpt is None and skipped:
        raise ValueError(
            f"no readable checkpoint in {out_dir} (skipped {len(skipped)}, see above); move them "
            "away to start the run afresh"
        )
    if ckpt is None:
        log(f"vidiff: no checkpoint in {out_dir}; starting from step 0")
    return ckpt, state


# --------------------------------------------------------------------------------------------------
# RNG states as plain tensors / lists, so that they survive weights_only loading


def rng_state() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------------
# writing


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_file(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


class CheckpointWriter:
    """Writes checkpoints of one run, atomically, keeping the newest ``keep_last``.

    Multi-process protocol (``barrier`` is the accelerator's ``wait_for_everyone``): the main process
    creates the temporary directory, every process writes its RNG state into it, the main process writes
    ``state.pt`` and renames the directory into place.
    """

    def __init__(self, out_dir: str | Path, keep_last: int = 2):
        if keep_last < 1:
            raise ValueError(f"train.keep_last must be >= 1, got {keep_last}")
        self.root = checkpoint_dir(out_dir)
        self.keep_last = keep_last

    def _tmp_dir(self, step: int) -> Path:
        # Deterministic per step so all processes agree on it without communicating.
        return self.root / f"{_TMP_PREFIX}{step:07d}"

    def save(
        self,
        step: int,
        state: dict[str, Any] | None,
        *,
        rank: int = 0,
        is_main: bool = True,
        barrier=lambda: None,
    ) -> Path:
        """Write checkpoint ``step``; ``state`` is only needed on the main process."""
        final = self.root / f"ckpt-{step:07d}"
        tmp = self._tmp_dir(step)
        if is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
        barrier()
        _save_file(rng_state(), tmp / f"rng-{rank}.pt")
        barrier()
        if is_main:
            if state is None:
                raise ValueError("the main process must pass the training state to save")
            _save_file(state, tmp / STATE_NAME)
            _fsync_dir(tmp)
            if final.exists():  # re-saving a step (e.g. after a resume): swap old out atomically
                old = self.root / f"{_TMP_PREFIX}old-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            _fsync_dir(self.root)
            self._prune()
        barrier()
        return final

    def _remove_leftovers(self) -> None:
        """Temporary directories of a save that crashed before its rename."""
        for p in self.root.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)

    def _prune(self) -> None:
        for _, path in list_checkpoints(self.root.parent)[: -self.keep_last]:
            shutil.rmtree(path, ignore_errors=True)


def load_rng(checkpoint: str | Path, rank: int) -> dict[str, Any] | None:
    """This process's RNG state from a checkpoint, or None if it was written by fewer processes."""
    path = resolve_checkpoint(checkpoint) / f"rng-{rank}.pt"
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign: name the file
        raise ValueError(f"cannot read {path}: {e}") from e
