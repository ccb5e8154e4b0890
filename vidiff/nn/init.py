"""Initialisation helpers shared by every architecture."""

from __future__ import annotations

from torch import nn


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` in place and return it: a residual branch ending in it
    starts as the identity (STYLE: new pieces start as identity or zero)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module
