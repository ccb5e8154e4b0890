"""Where vidiff runs and what it runs by default: device resolution and the shipped model's folder."""

from __future__ import annotations

from pathlib import Path

import torch

# The model shipped inside the package (``make default-model``): ``vidiff generate`` and ``vidiff demo``
# use it when no ``--model`` is given.
DEFAULT_MODEL = Path(__file__).resolve().parent / "assets" / "default-model"


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the GPU when there is one, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
