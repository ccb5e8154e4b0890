"""Weight files: written atomically and readable like any other file; refused when not finite.

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


def first_nonfinite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None.

    One device sync for all tensors (the per-tensor flags are stacked before they are read)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return None
    device = tensors[names[0]].device  # flags gathered there, read back once
    flags = torch.stack([tensors[k].isfinite().all().to(device) for k in names]).cpu()
    return None if bool(flags.all()) else names[int(flags.int().argmin())]


class NonFiniteWeightsError(ValueError):
    """A weight file holds NaN or infinite values (a diverged run): using it would make black videos."""


def check_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``source`` and the first non-finite tensor."""
    name = first_nonfinite(tensors)
    if name is not None:
        raise NonFiniteWeightsError(
            f"{source} holds non-finite weights (NaN or inf), first in tensor {name!r}: it was "
            "written by a diverged run; export an earlier checkpoint instead"
        )
