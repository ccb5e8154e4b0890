"""Writing weight files: atomically, and readable like any other file.

``safetensors`` creates its files with mode 0600. A model folder is meant to be shared (copied into
the package as the default model, installed for other users), so :func:`save_safetensors` gives the
file the mode an ordinary ``open(..., "w")`` would (0666 minus the umask) and writes it through a
temporary name and a rename, so an interrupted save never leaves a truncated file under the real name.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` to ``path`` (atomic rename; mode 0666 & ~umask). Returns ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.chmod(0o666 & ~_umask())
    tmp.replace(path)
    return path
