"""Rotary position embedding (RoPE; Su et al., 2021, "RoFormer") over one or more axes.

The head dimension is split into contiguous chunks, one per axis (``axes_dims``): 1D RoPE over frames
for the U-Net's temporal attention is ``RoPE((head_dim,))``; the DiT's 3D RoPE over (t, h, w) is e.g.
``RoPE((16, 24, 24))`` (as in Open-Sora / Wan / Flux's ``EmbedND``). Within the head the "rotate half"
convention (GPT-NeoX) pairs feature ``i`` with ``i + head_dim/2``; the per-pair angles of all axes are
concatenated, so one :func:`apply_rope` serves any number of axes.
"""

from __future__ import annotations

import torch
from torch import nn


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., L, head_dim) by angles given as ``cos``/``sin`` of shape (L, head_dim).

    Computed in float32 and cast back, so bf16 activations keep accurate phases.
    """
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    out = xf * cos.to(xf.dtype) + _rotate_half(xf) * sin.to(xf.dtype)
    return out.to(x.dtype)


class RoPE(nn.Module):
    """Multi-axis rotary embedding.

    ``axes_dims``: head-dim chunk per axis, each even, summing to the head dim. ``forward(positions)``
    takes positions (L,) for one axis or (L, n_axes) and returns ``(cos, sin)``, each (L, head_dim)
    float32, for :func:`apply_rope`. Positions may be fractional (e.g. frame times after temporal
    down-sampling).
    """

    def __init__(self, axes_dims: tuple[int, ...] | list[int], theta: float = 10000.0) -> None:
        super().__init__()
        axes_dims = tuple(int(d) for d in axes_dims)
        if not axes_dims or any(d <= 0 or d % 2 for d in axes_dims):
            raise ValueError(f"RoPE axes_dims must be positive even numbers, got {axes_dims}")
        self.axes_dims = axes_dims
        self.head_dim = sum(axes_dims)
        self.theta = theta

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if positions.ndim == 1:
            positions = positions[:, None]
        if positions.ndim != 2 or positions.shape[1] != len(self.axes_dims):
            raise ValueError(
                f"positions must be (L, {len(self.axes_dims)}) for axes_dims {self.axes_dims}, "
                f"got {tuple(positions.shape)}"
            )
        # Frequencies are rebuilt per call (a few dozen numbers) rather than kept in a buffer, so
        # a model built on the meta device and materialised later has nothing stale.
        dev = positions.device
        angles = [
            positions[:, i, None].float()
            * self.theta ** (-torch.arange(0, d, 2, device=dev, dtype=torch.float32) / d)
            for i, d in enumerate(self.axes_dims)
        ]  # per axis (L, d/2): position along that axis * the pair's frequency
        angles = torch.cat(angles, dim=-1)  # (L, head_dim/2)
        angles = torch.cat([angles, angles], dim=-1)  # rotate-half: pair i <-> i + head_dim/2
        return angles.cos(), angles.sin()
