"""The objective protocol's parts: the required method, extra steps (second players) and hooks.

Kept apart from :mod:`vidiff.train.objectives` (which builds objectives from configs and imports the
concrete ones) so that concrete objectives import these without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Objective(Protocol):
    """The one required method of a trainable objective (see the module docstring for the rest)."""

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor: ...


@dataclass
class ExtraStep:
    """A second player trained after the main step on the same micro-batches, with its own AdamW at
    ``train.lr * lr_mult``. ``loss(video, captions, seeds) -> (B,) | None`` (``None``: not active this
    step). ``name`` keys its optimiser in checkpoints (``<name>_optimizer``) and its logged mean loss
    (``<name>_loss``)."""

    name: str
    parameters: list[nn.Parameter]
    loss: Callable[[torch.Tensor, list[str], list[int]], torch.Tensor | None]
    lr_mult: float = 1.0


def extra_steps(objective: nn.Module) -> list[ExtraStep]:
    """The objective's extra steps (none by default), each with its trainable parameters only."""
    get = getattr(objective, "extra_steps", None)
    steps = list(get()) if get is not None else []
    for s in steps:
        s.parameters = [p for p in s.parameters if p.requires_grad]
    return steps


def trainable_parameters(objective: nn.Module, extras: list[ExtraStep]) -> list[nn.Parameter]:
    """What the main optimiser steps: the objective's choice, or every trainable parameter that no
    extra step owns."""
    get = getattr(objective, "trainable_parameters", None)
    params = list(get()) if get is not None else list(objective.parameters())
    owned = {id(p) for s in extras for p in s.parameters}
    return [p for p in params if p.requires_grad and id(p) not in owned]


def call_hook(objective: nn.Module, name: str, step: int) -> None:
    """Call ``objective.<name>(step)`` if the objective has that hook."""
    hook = getattr(objective, name, None)
    if hook is not None:
        hook(step)
