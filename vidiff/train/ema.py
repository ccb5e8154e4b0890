"""Exponential moving average of model weights, with a warmup of the decay.

Sampling from an EMA of the weights instead of the raw weights is standard for diffusion models (DDPM,
Ho et al. 2020; Karras et al. 2022). A fixed decay close to 1 makes the average remember the random
initialisation for thousands of steps, which ruins short runs, so the decay is ramped up: with warmup,
``decay(n) = min(max_decay, 1 - (1 + n) ** -power)`` after ``n`` updates -- the ``EMAWarmup`` rule of
k-diffusion (Crowson), a smooth relative of the ``(1 + n) / (10 + n)`` ramp of Hoogeboom et al. The
power ``2/3`` suits runs of up to a few hundred thousand steps (at 1,000 steps the decay is 0.99, so
the average spans the last ~100 updates); ``3/4`` suits longer ones.

The average is a full copy of the module (like k-diffusion's ``model_ema``), so the sampling hook and
the export read it exactly like the live model: ``ema.module.generate(...)``, ``ema.module.state_dict()``.
Under FSDP (:mod:`vidiff.train.fsdp`) the copy is sharded like the model and every process averages
its own shards.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from vidiff.train.fsdp import local


class EMA:
    """An EMA copy of ``model``; call :meth:`update` after every optimiser step."""

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.999,
        *,
        warmup: bool = True,
        power: float = 2 / 3,
        module: nn.Module | None = None,
    ):
        """``module``: the copy to hold the average in (default: a deep copy of ``model``); FSDP passes
        a copy sharded like ``model``."""
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if power <= 0:
            raise ValueError(f"EMA warmup power must be > 0, got {power}")
        self.max_decay = decay
        self.warmup = warmup
        self.power = power
        self.num_updates = 0
        self.module = (copy.deepcopy(model) if module is None else module).eval()
        self.module.requires_grad_(False)
        # Pair tensors once: the copy keeps the same (deduplicated) parameter and buffer order, and
        # placement (accelerate moves parameters in place) does not replace the tensors themselves.
        # Frozen parameters (e.g. a Hugging Face text encoder) never change: leave them out.
        self._pairs = [
            (e, p)
            for e, p in zip(self.module.parameters(), model.parameters(), strict=True)
            if p.requires_grad
        ]
        self._buffer_pairs = list(zip(self.module.buffers(), model.buffers(), strict=True))

    def decay(self, num_updates: int | None = None) -> float:
        """The decay used for update number ``num_updates`` (0-based; defaults to the next one)."""
        n = self.num_updates if num_updates is None else num_updates
        if not self.warmup:
            return self.max_decay
        return min(self.max_decay, max(0.0, 1.0 - (1.0 + n) ** -self.power))

    @torch.no_grad()
    def update(self) -> float:
        """``ema <- decay * ema + (1 - decay) * weights`` for the module the EMA was made from;
        buffers are copied. Returns the decay used."""
        d = self.decay()
        # Sharded (DTensor) weights are averaged shard by shard, in place on this process's views.
        ema_params = [local(e) for e, _ in self._pairs]
        params = [local(p.detach()).to(e.dtype) for e, p in self._pairs]
        # lerp(ema, p, 1 - d) == d * ema + (1 - d) * p, fused over all tensors.
        torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for e, b in self._buffer_pairs:
            e.copy_(b)
        self.num_updates += 1
        return d

    def to(self, device: torch.device | str) -> EMA:
        self.module.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "num_updates": self.num_updates,
            "max_decay": self.max_decay,
            "warmup": self.warmup,
            "power": self.power,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"], strict=True)
        self.num_updates = int(state["num_updates"])
