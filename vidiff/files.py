"""Reading and writing vidiff's files: weights, JSON and YAML configs.

Readers turn a damaged or malformed file into a :class:`~vidiff.errors.UserError` that names the file
(not a parser's ``<unicode string>`` or a bare ``Expecting value``); weights that hold NaN or
infinity are refused (:func:`check_finite`).

``safetensors`` creates its files with mode 0600. A model folder is meant to be shared (copied into
the package as the default model, installed for other users), so :func:`save_safetensors` gives the
file the mode an ordinary ``open(..., "w")`` would (0666 minus the umask) and writes it through a
temporary name and a rename, so an interrupted save never leaves a truncated file under the real name.

A **model folder** (every export: diffusion pipelines, the other model families, VAEs) is
:data:`CONFIG_NAME` + :data:`WEIGHTS_NAME`; :func:`write_model_folder`, :func:`model_folder` and
:func:`read_weights` are the one way each kind writes and reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from vidiff.errors import UserError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EVAL_FILE = "eval.json"  # the measured figures a model folder may carry (`vidiff eval --record`)


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


class NonFiniteWeightsError(UserError):
    """A weight file holds NaN or infinite values (a diverged run): using it would make black videos."""


def check_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``source`` and the first non-finite tensor."""
    name = first_nonfinite(tensors)
    if name is not None:
        raise NonFiniteWeightsError(
            f"{source} holds non-finite weights (NaN or inf), first in tensor {name!r}: it was "
            "written by a diverged run; export an earlier checkpoint instead"
        )


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (on the CPU); a damaged file is a UserError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:  # random bytes, a truncated copy, a bad header
        raise UserError(
            f"{path} is not a readable safetensors file (damaged or truncated?): {e}"
        ) from e


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; an empty or malformed file is a UserError naming it."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.strip():
        raise UserError(f"{path} is empty (expected JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from e


def read_yaml(path: str | Path) -> Any:
    """The YAML value in ``path`` (``None`` for an empty file); malformed YAML is a UserError naming it."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path} is not valid YAML: {problem}{at}") from e


def load_strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path
) -> None:
    """Load a full state dict into ``module`` (strict), or raise one UserError naming ``source`` and
    the first mismatch instead of PyTorch's key dump."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = (str(e).splitlines()[1:] or [str(e)])[0].strip()
        raise UserError(
            f"the weights in {source} do not fit the model built from its config (was it written "
            f"by another vidiff version, or did the model code change?): {detail}"
        ) from e


def export_tensors(
    state: dict[str, torch.Tensor], dtype: torch.dtype | None = None, cast: Any = None
) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU copies of ``state`` for a weights file, the floating-point tensors at
    ``dtype`` (None: as they are); ``cast(name)``, when given, picks which of them are cast."""
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point() and (cast is None or cast(k)):
            v = v.to(dtype)
        out[k] = v.contiguous().clone()  # clone: tensors sharing storage cannot be saved
    return out


def write_model_folder(
    directory: str | Path,
    tensors: dict[str, torch.Tensor],
    config: dict,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a model folder: ``tensors`` as :data:`WEIGHTS_NAME`, ``config`` as :data:`CONFIG_NAME`
    (indented JSON). Creates the folder; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_safetensors(tensors, directory / WEIGHTS_NAME, metadata=metadata)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def model_folder(directory: str | Path, what: str = "an exported vidiff model") -> Path:
    """``directory`` as a path, checked to hold both files of a model folder; a missing one is a
    ``FileNotFoundError`` saying the folder is not ``what`` and naming the file."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not {what}: missing {name}")
    return directory


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a model folder's :data:`WEIGHTS_NAME`, as stored; a damaged file or one holding
    NaN or infinity is a :class:`~vidiff.errors.UserError` naming it."""
    path = Path(directory) / WEIGHTS_NAME
    state = load_safetensors(path)
    check_finite(state, path)
    return state


def write_arch_folder(
    directory: str | Path,
    arch: str,
    config: dict,
    module: torch.nn.Module,
    dtype: torch.dtype | None = None,
    cast: Any = None,
) -> Path:
    """A model folder of one network outside the pipelines (a VAE, a VQ-VAE): its config file is
    ``{"arch": arch, arch: config}``, its weights ``module``'s (see :func:`export_tensors` for
    ``dtype`` and ``cast``)."""
    tensors = export_tensors(module.state_dict(), dtype, cast)
    return write_model_folder(directory, tensors, {"arch": arch, arch: config})


def load_arch_folder(
    directory: str | Path, arch: str, what: str, model_cls: type, config_cls: type
) -> Any:
    """The network of a folder :func:`write_arch_folder` wrote for ``arch``:
    ``model_cls(config_cls(**config))`` with the weights loaded strictly (floating point as float32). A folder of another kind is a
    ``ValueError`` saying it is not a ``what``."""
    directory = model_folder(directory, f"an exported {what} folder")
    meta = read_json(directory / CONFIG_NAME)
    found = meta.get("arch") if isinstance(meta, dict) else None
    if found != arch:
        raise ValueError(f"{directory} holds arch {found!r}, not a {what}")
    module = model_cls(config_cls(**meta[arch]))
    state = read_weights(directory)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    load_strict(module, state, directory / WEIGHTS_NAME)
    return module
