"""Temporal layers that turn an image network into a video network (factorized space-time).

Video Diffusion Models (Ho et al., 2022), Make-A-Video (Singer et al., 2022), Imagen Video (Ho et al.,
2022) and AnimateDiff factorize a 3D network into per-frame spatial layers plus layers that mix
information only along time. Every layer here

* is a residual ``x + f(x)`` whose last projection is zero-initialised, so a freshly inserted layer
  is the identity and an inflated image model equals its image model at step 0;
* is skipped entirely (exact identity, no arithmetic) when T == 1, so image batches (joint image +
  video training) and 1-frame models never touch temporal weights;
* accepts either a video ``(B, C, T, H, W)`` or per-frame activations ``((B T), C, H, W)`` together with
  ``num_frames`` -- the latter is the layout of an image U-Net's activations, which is what
  inflating a Stable-Diffusion-layout UNet with temporal layers needs;
* can recompute its inside in the backward pass (``checkpointing = True``, activation
  checkpointing): only its input is kept, not the ``((B H W), C, T)`` copies, norms and attention
  outputs it makes, whose memory grows with T. The owner sets the flag (``UNet3DConfig.
  temporal_checkpointing``); it acts only while training with gradients enabled.

Lumiere-style (Bar-Tal et al., 2024) temporal down/up-sampling lives here too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.nn.attention import SelfAttention, resolve_heads
from vidiff.nn.init import zero_module
from vidiff.nn.norms import LayerNorm32, group_norm
from vidiff.nn.rope import RoPE


def _frames(x: torch.Tensor, num_frames: int | None) -> int:
    """Number of frames of a 5D video, or of 4D per-frame activations given ``num_frames``."""
    if x.ndim == 5:
        if num_frames is not None and num_frames != x.shape[2]:
            raise ValueError(f"num_frames={num_frames} does not match the video's T={x.shape[2]}")
        return x.shape[2]
    if x.ndim == 4:
        if num_frames is None:
            raise ValueError("per-frame activations ((B T), C, H, W) need num_frames")
        if num_frames < 1 or x.shape[0] % num_frames:
            raise ValueError(f"batch {x.shape[0]} is not a multiple of num_frames={num_frames}")
        return num_frames
    raise ValueError(f"expected (B, C, T, H, W) or ((B T), C, H, W), got shape {tuple(x.shape)}")


def _to_seq(x: torch.Tensor, t: int) -> tuple[torch.Tensor, dict]:
    """(B, C, T, H, W) or ((B T), C, H, W) -> ((B H W), C, T) plus what is needed to undo it."""
    if x.ndim == 5:
        b, _, _, h, w = x.shape
        return rearrange(x, "b c t h w -> (b h w) c t"), dict(five=True, b=b, h=h, w=w)
    b, h, w = x.shape[0] // t, x.shape[2], x.shape[3]
    return rearrange(x, "(b t) c h w -> (b h w) c t", t=t), dict(five=False, b=b, h=h, w=w)


def _residual(module: nn.Module, x: torch.Tensor, t: int) -> torch.Tensor:
    """``module._residual(x, t)``, recomputed in the backward pass when ``module.checkpointing``
    is set and autograd is recording (training); the output is the same either way."""
    if module.checkpointing and module.training and torch.is_grad_enabled():
        return checkpoint(module._residual, x, t, use_reentrant=False)
    return module._residual(x, t)


def _from_seq(x: torch.Tensor, info: dict) -> torch.Tensor:
    b, h, w = info["b"], info["h"], info["w"]
    if info["five"]:
        return rearrange(x, "(b h w) c t -> b c t h w", b=b, h=h, w=w)
    return rearrange(x, "(b h w) c t -> (b t) c h w", b=b, h=h, w=w)


class _TemporalResidual(nn.Module):
    """A residual layer along time: identity on images (T = 1), else ``x + f(x)`` with ``f`` its
    ``_residual`` (recomputed in the backward pass when ``checkpointing``)."""

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        t = _frames(x, num_frames)
        if t == 1:
            return x
        return _residual(self, x, t)


class TemporalConv(_TemporalResidual):
    """Residual temporal 1D convolution ``x + Conv1d_t(SiLU(GroupNorm(x)))`` over frames.

    The conv is zero-initialised (VDM / Imagen Video factorized conv; Make-A-Video's pseudo-3D conv
    starts as identity the same way), so the layer starts as identity. Zero padding in time.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal kernel_size must be odd, got {kernel_size}")
        self.norm = group_norm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        zero_module(self.conv)
        self.checkpointing = False  # recompute in the backward pass (module docstring)

    def _residual(self, x: torch.Tensor, t: int) -> torch.Tensor:
        seq, info = _to_seq(x, t)  # ((b h w), c, t)
        return x + _from_seq(self.conv(F.silu(self.norm(seq))), info)


def relative_position_bucket(
    rel: torch.Tensor, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """T5's bidirectional relative-position buckets (Raffel et al., 2020): exact for small offsets,
    logarithmic up to ``max_distance``, clamped beyond -- so long videos reuse the far buckets."""
    half = num_buckets // 2
    bucket = (rel > 0).long() * half
    n = rel.abs()
    max_exact = half // 2
    large = (
        max_exact
        + (
            torch.log(n.float().clamp(min=1) / max_exact)
            / math.log(max_distance / max_exact)
            * (half - max_exact)
        ).long()
    )
    large = large.clamp(max=half - 1)
    return bucket + torch.where(n < max_exact, n, large)


class RelativePositionBias(nn.Module):
    """Learned per-head bias over bucketed frame offsets (T5; used for temporal attention in VDM)."""

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.embedding = nn.Embedding(num_buckets, num_heads)
        nn.init.zeros_(self.embedding.weight)  # start as "no positional preference"

    def forward(self, length: int, device: torch.device | None = None) -> torch.Tensor:
        pos = torch.arange(length, device=device)
        rel = pos[None, :] - pos[:, None]  # (Lq, Lk): key - query
        buckets = relative_position_bucket(rel, self.num_buckets, self.max_distance)
        return rearrange(self.embedding(buckets), "q k h -> h q k")


class TemporalAttention(_TemporalResidual):
    """Residual self-attention across frames at each spatial position (VDM's temporal attention).

    ``position``: ``"rope"`` (rotary over frame index) or ``"relative_bias"`` (T5 buckets). Pre-norm
    (LayerNorm), zero-initialised output projection: starts as identity.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int | None = None,
        head_dim: int | None = None,
        position: str = "rope",
        dropout: float = 0.0,
        qk_norm: bool = False,
    ) -> None:
        super().__init__()
        if position not in ("rope", "relative_bias"):
            raise ValueError(
                f"temporal position must be 'rope' or 'relative_bias', got {position!r}"
            )
        self.position = position
        heads = resolve_heads(channels, num_heads, head_dim)
        self.norm = LayerNorm32(channels)
        self.attn = SelfAttention(
            channels, num_heads=heads, qk_norm=qk_norm, dropout=dropout, zero_init=True
        )
        if position == "rope":
            self.rope = RoPE((channels // heads,))
        else:
            self.rel_bias = RelativePositionBias(heads)
        self.checkpointing = False  # recompute in the backward pass (module docstring)

    def _residual(self, x: torch.Tensor, t: int) -> torch.Tensor:
        seq, info = _to_seq(x, t)
        tokens = rearrange(seq, "n c t -> n t c")
        rope = bias = None
        if self.position == "rope":
            rope = self.rope(torch.arange(t, device=x.device))
        else:
            bias = self.rel_bias(t, device=x.device)
        out = self.attn(self.norm(tokens), rope=rope, bias=bias)
        return x + _from_seq(rearrange(out, "n t c -> n c t"), info)


class TemporalDownsample(nn.Module):
    """Halve T (Lumiere's space-time U-Net): average adjacent frame pairs plus a zero-initialised
    strided temporal conv, so it starts as plain 2x frame averaging. T == 1 passes through (images);
    an odd T > 1 is an error."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        zero_module(self.conv)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        t = _frames(x, num_frames)
        if t == 1:
            return x
        if t % 2:
            raise ValueError(f"temporal downsampling needs an even number of frames, got T={t}")
        seq, info = _to_seq(x, t)
        seq = F.avg_pool1d(seq, 2) + self.conv(seq)
        return _from_seq(seq, info)


class TemporalUpsample(nn.Module):
    """Double T back (Lumiere): repeat each frame twice plus a zero-initialised temporal conv.
    ``forward(x, frames_out)`` is the identity when ``frames_out`` equals the current T (an image,
    or a level at which the down path did not halve T)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)
        zero_module(self.conv)

    def forward(
        self, x: torch.Tensor, frames_out: int, num_frames: int | None = None
    ) -> torch.Tensor:
        t = _frames(x, num_frames)
        if frames_out == t:
            return x
        if frames_out != 2 * t:
            raise ValueError(f"temporal upsampling goes from T={t} to 2T, not to {frames_out}")
        seq, info = _to_seq(x, t)
        seq = seq.repeat_interleave(2, dim=-1)
        return _from_seq(seq + self.conv(seq), info)
