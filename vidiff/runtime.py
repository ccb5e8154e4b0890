"""Where vidiff runs and what it runs by default: device resolution and the shipped model's folder."""

from __future__ import annotations

from pathlib import Path

import torch

from vidiff.errors import UserError
from vidiff.registry import ASSETS

# The model shipped inside the package (``make default-model``): ``vidiff generate`` and ``vidiff demo``
# use it when no ``--model`` is given. Other shipped models: vidiff.registry.
DEFAULT_MODEL: Path = ASSETS / "default-model"


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the GPU when there is one, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` as
    given, once checked to exist here (a UserError names the device otherwise)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(
            f"unknown --device {device!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise UserError(
                f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(
                f"--device {device}: Apple's MPS is not available here; use --device cpu"
            )
    elif dev.type != "cpu":
        raise UserError(f"--device {device}: vidiff runs on auto, cpu, cuda, cuda:N or mps")
    return dev
