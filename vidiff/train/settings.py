"""What a run's config decides before the loop starts: validation, the LR schedule, the optimiser,
and whether a checkpoint may be resumed under the current config.

Resuming checks two things. :func:`check_resumable`: the model-shaping config (everything outside
``train``, bar :data:`RESUME_MUTABLE`) must equal the checkpoint's. :func:`check_exact_resume`: what
makes a resume bit-exact -- the global batch, gradient accumulation and process count -- must equal
the checkpoint's, unless the user allows the change (``vidiff train CONFIG --resume
--allow-changes``), which continues the run but not exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from vidiff.config import Config, to_dict

MIXED_PRECISION = ("no", "bf16", "fp16", "auto")
# Keys that may change when a run is resumed (everything else that shapes the model must not).
RESUME_MUTABLE = {
    "data.num_workers",
    "model.net.gradient_checkpointing",
    "model.net.temporal_checkpointing",
}


def validate(tc) -> None:
    """Check a :class:`~vidiff.config.TrainConfig` up front, naming the bad key."""
    if tc.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"train.mixed_precision must be one of {MIXED_PRECISION}, got {tc.mixed_precision!r}"
        )
    for name in ("steps", "batch_size", "grad_accum", "log_every", "ckpt_every"):
        if getattr(tc, name) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {getattr(tc, name)}")
    if tc.lr <= 0:
        raise ValueError(f"train.lr must be > 0, got {tc.lr}")


def mixed_precision(setting: str) -> str:
    """``auto`` -> bf16 on a GPU that has it, else no mixed precision."""
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def lr_lambda(
    warmup_steps: int, total_steps: int = 0, decay_steps: int = 0
) -> Callable[[int], float]:
    """Linear warmup from ~0 to the base LR over ``warmup_steps``, then constant (as in EDM: diffusion
    models are sampled from the EMA, which does the averaging a decay schedule would), then, with
    ``decay_steps > 0``, a linear cool-down to 0 over the last ``decay_steps`` of ``total_steps``
    (warmup-stable-decay, Hägele et al. 2024; all of them in a shorter run): a run can be cooled
    down from any constant-LR checkpoint by resuming it with ``train.steps`` and
    ``train.decay_steps`` set."""
    if decay_steps < 0:
        raise ValueError(f"train.decay_steps must be >= 0, got {decay_steps}")
    decay_steps = min(decay_steps, total_steps)
    start = total_steps - decay_steps

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        if decay_steps and step >= start:
            return warm * max(0.0, (total_steps - step) / decay_steps)
        return warm

    return factor


def build_optimizer(params: list[nn.Parameter], tc) -> torch.optim.AdamW:
    """AdamW over ``params``; weight decay only on matrices/kernels, not on biases, norms and
    embeddings' 1-d params."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": tc.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=tc.lr, betas=tuple(tc.betas))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resumable(config: Config, stored: dict[str, Any]) -> None:
    """The model-shaping part of the config must match the checkpoint's; name what differs. A field
    the checkpoint's config lacks (one added to vidiff since) counts as its default value."""
    now = _flatten({k: v for k, v in to_dict(config).items() if k != "train"})
    then = _flatten({k: v for k, v in stored.items() if k != "train"})
    defaults = _flatten(to_dict(Config()))
    then.update({k: defaults[k] for k in now if k not in then and k in defaults})
    diff = sorted(
        k for k in set(now) | set(then) if now.get(k) != then.get(k) and k not in RESUME_MUTABLE
    )
    if diff:
        shown = ", ".join(f"{k} ({then.get(k)!r} -> {now.get(k)!r})" for k in diff[:6])
        raise ValueError(f"cannot resume: the config differs from the checkpoint's in {shown}")


def check_exact_resume(
    config: Config, state: dict[str, Any], num_processes: int, allow_changes: bool
) -> None:
    """Refuse a resume that changes the global batch size, gradient accumulation or number of
    processes (the data order, the per-sample seeds or the RNG streams would no longer continue the
    run exactly), unless ``allow_changes``."""
    then_train = state["config"].get("train", {})
    changes = [
        (name, then, now)
        for name, then, now in (
            ("train.batch_size", then_train.get("batch_size"), config.train.batch_size),
            ("train.grad_accum", then_train.get("grad_accum"), config.train.grad_accum),
            ("number of processes", state.get("num_processes", 1), num_processes),
        )
        if then is not None and then != now
    ]
    if changes and not allow_changes:
        shown = ", ".join(f"{name} {then} -> {now}" for name, then, now in changes)
        raise ValueError(
            f"cannot resume exactly: {shown} since the checkpoint; restore the old value, or pass "
            "--allow-changes to continue with the change (the run is then not bit-exact)"
        )


def resolved_net(model: nn.Module) -> dict | None:
    """The complete config of the model's network (preset values included), or None for a model
    without one (the VAE): checkpoints keep it so a later preset edit never changes a run."""
    net = getattr(model, "net", None)
    cfg = getattr(net, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None


def with_stored_net(config: Config, state: dict | None) -> Config:
    """``config`` with the network a checkpoint was written with (``state["net"]``, complete, so no
    preset is consulted), or ``config`` itself for a fresh run or an older checkpoint."""
    if state is None or state.get("net") is None:
        return config
    model = dataclasses.replace(config.model, preset=None, net=dict(state["net"]))
    return dataclasses.replace(config, model=model)


def write_config(config: Config, path: Path) -> None:
    """The resolved config as YAML, atomically (``<run>/config.yaml``)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    tmp.replace(path)
