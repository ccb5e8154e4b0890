"""The blocks of the Stable-Diffusion-layout U-Net (:mod:`vidiff.models.sd_unet`).

Latent Diffusion (Rombach et al., 2022): ResNet blocks with an additive noise embedding, spatial
transformers (self-attention, text cross-attention, GEGLU MLP) between them, strided-conv
downsampling and nearest-neighbour upsampling. Each stage may also hold AnimateDiff motion modules
(:class:`vidiff.nn.motion.MotionModule`) after its spatial layers, which is what makes the image
network a video network. Module and parameter names are those of diffusers' ``UNet2DConditionModel`` /
``UNetMotionModel`` (``down_blocks.0.resnets.0.conv1``, ``...attentions.0.transformer_blocks.0.attn2``,
``...motion_modules.0``), so Stable Diffusion and AnimateDiff weights load by name.

Spatial layers see per-frame activations ``((B T), C, H, W)``; ``t`` is the number of frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.nn.motion import MotionModule
from vidiff.nn.norms import GroupNorm32, LayerNorm32
from vidiff.nn.sd_layers import GEGLUFeedForward, SDAttention


class ResnetBlock2D(nn.Module):
    """``skip(x) + conv2(SiLU(GN(conv1(SiLU(GN(x))) + proj(emb))))`` per frame (DDPM / LDM)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, eps: float) -> None:
        super().__init__()
        self.norm1 = GroupNorm32(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(emb_dim, out_ch)
        self.norm2 = GroupNorm32(groups, out_ch, eps=eps)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SpatialTransformerBlock(nn.Module):
    """Pre-LayerNorm: self-attention over a frame's pixels, cross-attention to the prompt, GEGLU MLP."""

    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(dim)
        self.attn1 = SDAttention(dim, heads)
        self.norm2 = LayerNorm32(dim)
        self.attn2 = SDAttention(dim, heads, context_dim=context_dim)
        self.norm3 = LayerNorm32(dim)
        self.ff = GEGLUFeedForward(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        if context is not None:  # no prompt: cross-attention is skipped (an unconditional call)
            x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """``x + proj_out(blocks(proj_in(GN(x))))`` on each frame's pixels as tokens. ``linear``: the
    projections are Linear layers on tokens (SD 2.x) instead of 1x1 convolutions (SD 1.x)."""

    def __init__(
        self, ch: int, heads: int, context_dim: int, layers: int, groups: int, linear: bool
    ) -> None:
        super().__init__()
        self.linear = linear
        self.norm = GroupNorm32(groups, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList(
            [SpatialTransformerBlock(ch, heads, context_dim) for _ in range(layers)]
        )
        self.proj_out = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.norm(x)
        if not self.linear:
            y = self.proj_in(y)
        tok = rearrange(y, "n c h w -> n (h w) c")
        if self.linear:
            tok = self.proj_in(tok)
        for block in self.transformer_blocks:
            tok = block(tok, context)
        if self.linear:
            tok = self.proj_out(tok)
        y = rearrange(tok, "n (h w) c -> n c h w", h=h, w=w)
        return x + (y if self.linear else self.proj_out(y))


class Downsample2D(nn.Module):
    """Strided 3x3 convolution."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2D(nn.Module):
    """Nearest-neighbour resize to ``size`` (twice the input, or the skip's odd size), 3x3 conv."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class Stage(nn.Module):
    """A down or up block: ``n`` x (ResNet [-> spatial transformer] [-> motion module]), then an
    optional down/up-sampler. ``skip_channels`` (up blocks) are the widths of the skips each ResNet
    concatenates; ``motion`` holds the motion modules' (heads, layers, groups, max_length) or None."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        n: int,
        emb_dim: int,
        cfg,
        heads: int,
        attn: bool,
        motion: tuple[int, int, int, int] | None,
        resample: str | None,
        skip_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.checkpointing = cfg.gradient_checkpointing
        skips = skip_channels or [0] * n
        ins = [in_ch] + [out_ch] * (n - 1)
        groups, eps = cfg.norm_num_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(i + s, out_ch, emb_dim, groups, eps) for i, s in zip(ins, skips)]
        )
        if attn:
            self.attentions = nn.ModuleList(
                [
                    SpatialTransformer(
                        out_ch,
                        heads,
                        cfg.context_dim,
                        cfg.transformer_layers_per_block,
                        groups,
                        cfg.use_linear_projection,
                    )
                    for _ in range(n)
                ]
            )
        if motion is not None:
            self.motion_modules = nn.ModuleList([MotionModule(out_ch, *motion) for _ in range(n)])
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample2D(out_ch)])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample2D(out_ch)])

    def _layer(self, i, h, emb, context, t):
        if self.checkpointing and self.training and torch.is_grad_enabled():
            # recomputed in the backward pass: activation memory for compute
            return checkpoint(self._run_layer, i, h, emb, context, t, use_reentrant=False)
        return self._run_layer(i, h, emb, context, t)

    def _run_layer(self, i, h, emb, context, t):
        h = self.resnets[i](h, emb)
        if hasattr(self, "attentions"):
            h = self.attentions[i](h, context)
        if hasattr(self, "motion_modules"):
            h = self.motion_modules[i](h, num_frames=t)
        return h

    def down(self, h, emb, context, t) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outs = []
        for i in range(len(self.resnets)):
            h = self._layer(i, h, emb, context, t)
            outs.append(h)
        if hasattr(self, "downsamplers"):
            h = self.downsamplers[0](h)
            outs.append(h)
        return h, outs

    def up(self, h, skips: list[torch.Tensor], emb, context, t) -> torch.Tensor:
        """``skips`` is the shared stack of down-path activations; this stage pops its own."""
        for i in range(len(self.resnets)):
            h = self._layer(i, torch.cat([h, skips.pop()], dim=1), emb, context, t)
        if hasattr(self, "upsamplers"):
            size = skips[-1].shape[-2:] if skips else tuple(2 * s for s in h.shape[-2:])
            h = self.upsamplers[0](h, size)
        return h


class MidBlock(nn.Module):
    """ResNet, then (spatial transformer [-> motion module] -> ResNet)."""

    def __init__(self, ch: int, emb_dim: int, cfg, heads: int, motion) -> None:
        super().__init__()
        groups, eps = cfg.norm_num_groups, cfg.norm_eps
        self.checkpointing = cfg.gradient_checkpointing
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, emb_dim, groups, eps) for _ in "ab"])
        self.attentions = nn.ModuleList(
            [
                SpatialTransformer(
                    ch,
                    heads,
                    cfg.context_dim,
                    cfg.transformer_layers_per_block,
                    groups,
                    cfg.use_linear_projection,
                )
            ]
        )
        if motion is not None:
            self.motion_modules = nn.ModuleList([MotionModule(ch, *motion)])

    def forward(self, h, emb, context, t) -> torch.Tensor:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self._forward, h, emb, context, t, use_reentrant=False)
        return self._forward(h, emb, context, t)

    def _forward(self, h, emb, context, t) -> torch.Tensor:
        h = self.resnets[0](h, emb)
        h = self.attentions[0](h, context)
        if hasattr(self, "motion_modules"):
            h = self.motion_modules[0](h, num_frames=t)
        return self.resnets[1](h, emb)


__all__ = [
    "Downsample2D",
    "MidBlock",
    "ResnetBlock2D",
    "SpatialTransformer",
    "SpatialTransformerBlock",
    "Stage",
    "Upsample2D",
]
