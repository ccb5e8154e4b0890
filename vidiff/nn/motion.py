"""AnimateDiff motion modules: temporal transformers inserted into an image U-Net.

AnimateDiff (Guo et al., 2023) turns a frozen text-to-image U-Net into a video model by adding, after
every spatial stage, a transformer that attends only along time at each pixel. A module is::

    x + proj_out(blocks(proj_in(GroupNorm(x))))        tokens: one sequence of T frames per pixel

where GroupNorm takes its statistics over the whole clip (channels of a group x frames x pixels) and
each block is two frame self-attentions and a GEGLU MLP, pre-LayerNorm, with a fixed sinusoidal
position of the frame index added to the normalised tokens before each attention. The output
projection starts at zero here (AnimateDiff's ``zero_initialize``), so an inflated network equals its
image network frame by frame until the module is trained (STYLE 10).

Parameter names follow AnimateDiff's ``MotionAdapter`` files (``norm``, ``proj_in``,
``transformer_blocks.{i}.attn1.to_q``, ``...pos_embed.pe``, ``proj_out``) so adapters load and export
by name (:mod:`vidiff.interop.diffusers`). Unlike :mod:`vidiff.nn.temporal`'s layers, a module is
*not* skipped at T == 1: a trained adapter changes single frames too, and parity with AnimateDiff
requires applying it.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from vidiff.nn.init import zero_module
from vidiff.nn.norms import GroupNorm32, LayerNorm32
from vidiff.nn.sd_layers import GEGLUFeedForward, SDAttention


class SinusoidalFramePosition(nn.Module):
    """Adds ``pe[:T]`` to ``(N, T, dim)`` tokens: ``pe[t, 2i] = sin(t w_i)``, ``pe[t, 2i+1] = cos(t w_i)``,
    ``w_i = 10000^(-2i/dim)`` (Vaswani et al., 2017). Stored as the persistent buffer ``pe`` (1, L, dim)
    because adapter files carry it."""

    def __init__(self, dim: int, max_length: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal positions need an even width, got {dim}")
        t = torch.arange(max_length, dtype=torch.float32)[:, None]
        w = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(1, max_length, dim)
        pe[0, :, 0::2] = torch.sin(t * w)
        pe[0, :, 1::2] = torch.cos(t * w)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.pe.shape[1]:
            raise ValueError(
                f"{t} frames exceed this motion module's max_seq_length={self.pe.shape[1]}"
            )
        return x + self.pe[:, :t].to(x.dtype)


class TemporalTransformerBlock(nn.Module):
    """Pre-LayerNorm block on frame sequences: self-attention, self-attention, GEGLU MLP; each
    attention sees the normalised tokens plus the frame positions."""

    def __init__(self, dim: int, heads: int, max_length: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(dim)
        self.pos_embed = SinusoidalFramePosition(dim, max_length)
        self.attn1 = SDAttention(dim, heads)
        self.norm2 = LayerNorm32(dim)
        self.attn2 = SDAttention(dim, heads)
        self.norm3 = LayerNorm32(dim)
        self.ff = GEGLUFeedForward(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.pos_embed(self.norm1(x)))
        x = x + self.attn2(self.pos_embed(self.norm2(x)))
        return x + self.ff(self.norm3(x))


class MotionModule(nn.Module):
    """One AnimateDiff motion module on per-frame activations ``((B T), C, H, W)`` of a ``num_frames``
    clip; returns the same shape. ``channels`` must split into ``heads`` and ``norm_groups``."""

    def __init__(
        self,
        channels: int,
        heads: int = 8,
        num_layers: int = 1,
        norm_groups: int = 32,
        max_length: int = 32,
    ) -> None:
        super().__init__()
        if channels % norm_groups:
            raise ValueError(f"{channels} channels do not split into {norm_groups} norm groups")
        self.norm = GroupNorm32(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(channels, heads, max_length) for _ in range(num_layers)]
        )
        self.proj_out = zero_module(nn.Linear(channels, channels))  # identity at init

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if x.shape[0] % num_frames:
            raise ValueError(f"batch {x.shape[0]} is not a multiple of num_frames={num_frames}")
        h, w = x.shape[-2:]
        clip = rearrange(x, "(b t) c h w -> b c t h w", t=num_frames)
        tokens = rearrange(self.norm(clip), "b c t h w -> (b h w) t c")  # one sequence per pixel
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens)
        out = rearrange(self.proj_out(tokens), "(b h w) t c -> (b t) c h w", h=h, w=w)
        return x + out


__all__ = ["MotionModule", "SinusoidalFramePosition", "TemporalTransformerBlock"]
