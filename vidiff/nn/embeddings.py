"""Noise-level (timestep) embeddings, and the pooled prompt embedding added to them.

The network receives ``c_noise`` as one float per sample on a 0..1000-ish scale (the preconditioning
wrapper maps sigma to it; see docs/architecture.md), so the classic sinusoidal embedding of DDPM /
"Attention is all you need" serves every parameterisation: eps/v (discrete t), EDM (``1000 * ln(sigma)/4``
style) and flow (``1000 * t``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidiff.nn.init import zero_module


def timestep_embedding(
    c_noise: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(c * f_i), sin(c * f_i)]`` with ``f_i = max_period^(-i / (dim/2))``.

    ``c_noise``: (B,) float. Returns (B, dim) float32. The highest frequency is 1 rad per unit of
    ``c_noise``, the lowest ``1 / max_period``, which resolves a 0..1000 range (Ho et al., 2020; ADM).
    Computed in float32 whatever the input dtype (the phase of ``1000 * f`` needs the precision).
    """
    if c_noise.ndim != 1:
        raise ValueError(f"c_noise must be a (B,) tensor, got shape {tuple(c_noise.shape)}")
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, device=c_noise.device, dtype=torch.float32)
        / half
    )
    args = c_noise.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of ``c_noise`` followed by a 2-layer SiLU MLP (ADM / DiT ``TimestepEmbedder``).

    ``zero_init`` zeroes the last layer: an embedding added to an existing one (guidance weight,
    frame position) then starts as "no change", so a model grown from another starts as it.
    """

    def __init__(
        self, freq_dim: int, out_dim: int, max_period: float = 10000.0, zero_init: bool = False
    ) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim)
        )
        if zero_init:
            zero_module(self.mlp[2])

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(c_noise, self.freq_dim, self.max_period)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


def masked_mean(context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real tokens of ``context`` (B, L, D) -> (B, D); ``mask`` (B, L) bool."""
    if mask is None:
        return context.mean(dim=1)
    w = mask.to(context.dtype).unsqueeze(-1)
    return (context * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
