"""Normalisation primitives shared by every architecture.

* :class:`GroupNorm32` -- GroupNorm computed in float32 (ADM / Stable Diffusion do the same: group
  statistics in bf16 are too coarse), for the convolutional U-Net.
* :class:`RMSNorm` -- root-mean-square norm (Zhang & Sennrich, 2019) over the *last* axis (features of
  a token), used for query/key normalisation in attention (as in SD3 / Flux) and by the DiT.
* :class:`ChannelRMSNorm` -- the same norm over the *channel* axis of a ``(B, C, T, H, W)`` video, per
  pixel and frame (the Wan-VAE's): no statistic mixes frames or pixels, so a causal conv net stays
  causal and exactly tileable.
* :func:`modulate` -- the adaLN shift/scale of DiT (Peebles & Xie, 2023).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32; float32/float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _in_float32(norm, x: torch.Tensor, size, weight, bias, eps: float) -> torch.Tensor:
    """``norm(x, size, weight, bias, eps)`` (``F.group_norm``, ``F.layer_norm``) computed in (at
    least) float32, the affine parameters cast along; the output keeps ``x``'s dtype."""
    xf = _upcast(x)
    weight = None if weight is None else weight.to(xf.dtype)
    bias = None if bias is None else bias.to(xf.dtype)
    return norm(xf, size, weight, bias, eps).to(x.dtype)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm whose statistics are computed in (at least) float32; output keeps the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _in_float32(F.group_norm, x, self.num_groups, self.weight, self.bias, self.eps)


def group_norm(channels: int, max_groups: int = 32, eps: float = 1e-6) -> GroupNorm32:
    """GroupNorm with the largest group count <= ``max_groups`` that divides ``channels``.

    ADM uses 32 groups; small CPU models have e.g. 24 or 48 channels, so we fall back to a divisor
    instead of failing.
    """
    return GroupNorm32(num_groups(channels, max_groups), channels, eps=eps)


def num_groups(channels: int, max_groups: int = 32) -> int:
    """The largest group count <= ``max_groups`` that divides ``channels``."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class RMSNorm(nn.Module):
    """RMSNorm over the last dimension, computed in float32, with a learned gain (init 1)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = _upcast(x)
        return F.rms_norm(xf, (x.shape[-1],), self.weight.to(xf.dtype), self.eps).to(x.dtype)


class ChannelRMSNorm(RMSNorm):
    """:class:`RMSNorm` over the channels (dim 1) of ``(B, C, T, H, W)``, per pixel and frame, with
    the same learned gain (init 1, one per channel: ``ChannelRMSNorm(channels)``). Computed in the
    input dtype, as the causal VAE was trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)
        return x * self.weight.view(1, -1, *([1] * (x.ndim - 2)))


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in (at least) float32; the output keeps the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _in_float32(F.layer_norm, x, self.normalized_shape, self.weight, self.bias, self.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation ``x * (1 + scale) + shift`` (DiT); ``x`` (B, L, D), ``shift``/``scale`` (B, D)
    for the whole sample or (B, L, D) per token (per-frame conditionings)."""
    if shift.ndim == 2:
        shift, scale = shift.unsqueeze(1), scale.unsqueeze(1)
    return x * (1 + scale) + shift
