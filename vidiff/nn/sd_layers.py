"""Attention and feed-forward layers in the Stable-Diffusion weight layout.

Latent Diffusion (Rombach et al., 2022) and AnimateDiff (Guo et al., 2023) ship their weights with
fixed parameter names: an attention is ``to_q``, ``to_k``, ``to_v`` (no bias) and ``to_out.0``; a
feed-forward is a GEGLU (Shazeer, 2020) ``ff.net.0.proj`` followed by ``ff.net.2``. These modules keep
those names so such checkpoints load into vidiff by name, with no conversion table. The maths is the
shared op of :mod:`vidiff.nn.attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.nn.attention import attention


class SDAttention(nn.Module):
    """Multi-head attention ``to_out(softmax(q k^T / sqrt(d)) v)`` on tokens ``(B, L, dim)``.

    Self-attention when ``context_dim`` is None (or no ``context`` is passed), else cross-attention
    on ``context`` ``(B, L_c, context_dim)``. ``zero_init`` zeroes the output projection, so a residual
    block built on it starts as the identity.
    """

    def __init__(
        self, dim: int, heads: int, context_dim: int | None = None, zero_init: bool = False
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        if zero_init:
            nn.init.zeros_(self.to_out[0].weight)
            nn.init.zeros_(self.to_out[0].bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        source = x if context is None else context
        q, k, v = (
            rearrange(p(s), "b l (h d) -> b h l d", h=self.heads)
            for p, s in ((self.to_q, x), (self.to_k, source), (self.to_v, source))
        )
        out = rearrange(attention(q, k, v), "b h l d -> b l (h d)")
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """``a * GELU(b)`` where ``[a, b] = proj(x)`` (Shazeer, 2020)."""

    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(b)


class GEGLUFeedForward(nn.Module):
    """The transformer MLP of Stable Diffusion: GEGLU to ``mult * dim``, then back to ``dim``."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


__all__ = ["GEGLU", "GEGLUFeedForward", "SDAttention"]
