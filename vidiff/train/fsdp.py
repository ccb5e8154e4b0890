"""Fully sharded data parallelism (FSDP) for the trainer, with torch's own ``fully_shard`` (FSDP2).

With ``train.fsdp: true`` -- or when the run is started by ``accelerate launch --use_fsdp``, which
sets ``ACCELERATE_USE_FSDP`` -- every process keeps only its 1 / P share of each weight, gradient,
optimiser state and EMA weight (``torch.distributed.fsdp.fully_shard``: parameters become
``DTensor`` shards along dim 0; a unit's full weights are all-gathered for its forward and backward
and its gradients reduce-scattered after). vidiff applies the sharding itself rather than through
accelerate's FSDP plugin, so the same code runs on GPUs and on CPU processes (gloo), where
accelerate 1.x cannot shard: ``Accelerator(cpu=True)`` makes the run MULTI_CPU (DDP) and its plugin
rejects the launcher's default ``sync_module_states`` on CPU. The launcher's FSDP variables are
therefore hidden from accelerate while the ``Accelerator`` is built (:func:`accelerate_env`), and
accelerate only places data, runs the optimiser wrapper and mixed precision.

Units (:func:`shard`): every child of the outermost ``nn.ModuleList`` s (U-Net levels, DiT blocks,
text-encoder blocks) is one unit; what is left (embeddings, the middle of a U-Net, output layers)
belongs to the root unit, the module whose ``forward`` the trainer calls.

The trainer's files stay what they are without FSDP: a checkpoint holds *full* tensors
(:func:`gather_full` all-gathers one tensor at a time and only the main process keeps it, on CPU),
so exports, ``--resume`` with another process count or without FSDP, and ``vidiff export`` all
work unchanged; :func:`shard_like` cuts a full state back into this process's shards (every process
reads the checkpoint, so no broadcast is needed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

from vidiff.files import first_nonfinite

FSDP_FLAG = "ACCELERATE_USE_FSDP"  # set by `accelerate launch --use_fsdp` (and its config file)


def fsdp_requested(setting: bool) -> bool:
    """``train.fsdp``, or an FSDP launch (``accelerate launch --use_fsdp``)."""
    return setting or os.environ.get(FSDP_FLAG, "false").lower() in ("true", "1")


@contextmanager
def accelerate_env() -> Iterator[None]:
    """Hide ``ACCELERATE_USE_FSDP`` and the launcher's ``FSDP_*`` settings while an ``Accelerator``
    is built, so that accelerate sets up plain data parallelism (on CPU its FSDP plugin raises) and
    vidiff shards the model itself; the variables are restored afterwards."""
    hidden = {k: v for k, v in os.environ.items() if k == FSDP_FLAG or k.startswith("FSDP_")}
    for k in hidden:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(hidden)


def check_fsdp(num_processes: int, precision: str, objective: str, extra_steps: list) -> None:
    """Refuse, with one line, what FSDP here does not do: one process (nothing to shard over), fp16
    (its loss scaler does not take sharded gradients; bf16 needs none) and objectives with extra steps
    (a discriminator's loss runs outside the sharded forward)."""
    if num_processes < 2:
        raise ValueError(
            "FSDP (train.fsdp or accelerate launch --use_fsdp) shards over several processes, but "
            "this run has one: launch it with --num_processes N > 1, or set train.fsdp=false"
        )
    if precision == "fp16":
        raise ValueError("train.mixed_precision=fp16 does not work with FSDP here; use bf16 or no")
    if extra_steps:
        raise ValueError(
            f"FSDP cannot train {objective} (it has extra steps: a discriminator); launch it "
            "without --use_fsdp / train.fsdp for data parallelism (DDP)"
        )


def units(module: nn.Module) -> list[nn.Module]:
    """The modules :func:`shard` makes FSDP units of: the children of every ``nn.ModuleList`` that
    is not itself inside one, in registration order."""
    found: list[nn.Module] = []

    def visit(m: nn.Module) -> None:
        for child in m.children():
            if isinstance(child, nn.ModuleList):
                found.extend(child)
            else:
                visit(child)

    visit(module)
    return found


def shard(root: nn.Module) -> nn.Module:
    """Apply ``fully_shard`` to every unit of ``root`` and then to ``root`` (in place; the module keeps
    its class, names and state-dict keys, its parameters become ``DTensor`` shards on the default
    device mesh over all processes). Returns ``root``."""
    for unit in units(root):
        fully_shard(unit)
    fully_shard(root)
    return root


def local(t: torch.Tensor) -> torch.Tensor:
    """This process's shard of a ``DTensor`` (a view: in-place updates change the parameter), or
    ``t`` itself."""
    return t.to_local() if isinstance(t, DTensor) else t


def gather_full(tree: Any, keep: bool) -> Any:
    """``tree`` (a state dict: dicts, lists, tensors, numbers) with every ``DTensor`` all-gathered to a
    full CPU tensor. A collective: every process calls it with the same structure (dicts keep their
    order); with ``keep=False`` (not the main process) the gathered tensors are dropped at once and
    ``None`` is returned."""
    if isinstance(tree, dict):
        out = {k: gather_full(v, keep) for k, v in tree.items()}
    elif isinstance(tree, (list, tuple)):
        out = type(tree)(gather_full(v, keep) for v in tree)
    elif isinstance(tree, DTensor):
        out = tree.full_tensor().cpu()
    else:
        out = tree
    return out if keep else None


def _shard_one(full: torch.Tensor, like: DTensor) -> DTensor:
    # Every process holds the full tensor: each keeps its own slice, no communication.
    return distribute_tensor(
        full.to(like.device, like.dtype), like.device_mesh, like.placements, src_data_rank=None
    )


def shard_like(module: nn.Module, full: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A full state dict of ``module`` (as in a checkpoint) cut into this process's shards, ready for
    ``module.load_state_dict``; keys it does not know are passed on for the strict load to name."""
    mine = module.state_dict()
    return {
        k: _shard_one(v, mine[k]) if isinstance(mine.get(k), DTensor) else v
        for k, v in full.items()
    }


def shard_optimizer_state(optimizer: torch.optim.Optimizer, full: dict[str, Any]) -> dict[str, Any]:
    """An optimiser state dict with full tensors (parameters numbered in ``param_groups`` order, as
    ``Optimizer.state_dict`` does) cut into shards shaped like this process's sharded parameters."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for idx, entry in full["state"].items():
        p = params[int(idx)] if int(idx) < len(params) else None
        state[idx] = {
            k: _shard_one(v, p)
            if isinstance(p, DTensor) and torch.is_tensor(v) and v.shape == p.shape
            else v
            for k, v in entry.items()
        }
    return {**full, "state": state}


def first_nonfinite_sharded(module: nn.Module, device: torch.device) -> str | None:
    """The name of the first parameter of a sharded ``module`` that holds a NaN or an infinity on any
    process, or None: each process checks its shards and the first bad index is all-reduced (a
    collective), so every process gets the same answer."""
    named = list(module.named_parameters())
    bad = first_nonfinite({n: local(p) for n, p in named})
    names = [n for n, _ in named]
    index = torch.tensor(names.index(bad) if bad is not None else len(names), device=device)
    dist.all_reduce(index, op=dist.ReduceOp.MIN)
    return names[int(index)] if int(index) < len(names) else None
