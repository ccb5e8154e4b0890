"""Stable-Diffusion-layout U-Net, optionally a video U-Net with AnimateDiff motion modules.

Papers: High-Resolution Image Synthesis with Latent Diffusion Models (Rombach et al., 2022) -- the
image U-Net of Stable Diffusion 1.x/2.x; AnimateDiff (Guo et al., 2023) -- temporal transformers
("motion modules") after every spatial stage of a frozen image U-Net, zero-initialised so the video
network starts as the image network applied to each frame (also Make-A-Video, Tune-A-Video).

This is vidiff's own implementation with diffusers' parameter names, so a ``UNet2DConditionModel``
folder and an AnimateDiff ``MotionAdapter`` folder load by name (:mod:`vidiff.interop.diffusers`); the
blocks live in :mod:`vidiff.models.sd_blocks`, the motion module in :mod:`vidiff.nn.motion`.

The network keeps vidiff's contract (docs/architecture.md): ``net(x_in (B, C, T, H, W), c_noise (B,),
context=..., context_mask=...)`` returns the raw output. For a Stable Diffusion UNet ``c_noise`` is the
DDPM timestep it was trained with (what :class:`~vidiff.diffusion.precond.EpsPrecond` passes), and
the prompt is shared by all frames of a clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.models.sd_blocks import MidBlock, Stage
from vidiff.nn.conditioning import ConditionedNet, network_conditions
from vidiff.nn.norms import GroupNorm32

DOWN_TYPES = ("CrossAttnDownBlock2D", "DownBlock2D")
UP_TYPES = ("CrossAttnUpBlock2D", "UpBlock2D")


def _per_block(value: int | tuple[int, ...], n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries for {n} blocks")
    return value


@dataclass
class SDUNetConfig:
    """Hyper-parameters of :class:`SDUNet`, named as in diffusers' ``UNet2DConditionModel`` config.

    ``attention_heads`` is the number of heads per block (what SD 1.x configs call
    ``attention_head_dim``). ``context_dim`` is the text encoder's width (``cross_attention_dim``).
    ``motion`` adds an AnimateDiff motion module after every ResNet (and transformer) of every stage,
    and one in the middle block when ``motion_mid_block``; the ``motion_*`` fields mirror a
    ``MotionAdapter`` config. ``gradient_checkpointing`` recomputes each stage layer (and the middle
    block) in the backward pass. ``frame_conditioning``, ``guidance_embed`` and ``pooled_context``
    are vidiff options this architecture does not have (must stay False): its only conditioning is
    the prompt (``context``).
    """

    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    layers_per_block: int = 2
    attention_heads: int | tuple[int, ...] = 8
    transformer_layers_per_block: int = 1
    use_linear_projection: bool = False
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    context_dim: int | None = 768
    motion: bool = False
    motion_num_attention_heads: int | tuple[int, ...] = 8
    motion_transformer_layers: int = 1
    motion_mid_block: bool = True
    motion_mid_transformer_layers: int = 1
    motion_max_seq_length: int = 32
    frame_conditioning: bool = False
    guidance_embed: bool = False
    pooled_context: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.down_block_types = tuple(self.down_block_types)
        self.up_block_types = tuple(self.up_block_types)
        n = len(self.block_out_channels)
        if not isinstance(self.attention_heads, int):
            self.attention_heads = _per_block(self.attention_heads, n, "attention_heads")
        if not isinstance(self.motion_num_attention_heads, int):
            self.motion_num_attention_heads = _per_block(
                self.motion_num_attention_heads, n, "motion_num_attention_heads"
            )
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError(
                f"{n} block_out_channels need {n} down and up block types, got "
                f"{len(self.down_block_types)} and {len(self.up_block_types)}"
            )
        for kind, allowed in ((self.down_block_types, DOWN_TYPES), (self.up_block_types, UP_TYPES)):
            bad = sorted(set(kind) - set(allowed))
            if bad:
                raise ValueError(f"unsupported U-Net block type(s) {bad}; supported: {allowed}")
        for name in ("frame_conditioning", "guidance_embed", "pooled_context"):
            if getattr(self, name):
                raise ValueError(
                    f"the sd_unet architecture has no {name}; set it false (model.{name}: false "
                    "for frame_conditioning)"
                )

        if self.context_dim is None and "CrossAttnDownBlock2D" in self.down_block_types:
            raise ValueError("a U-Net with cross-attention blocks needs context_dim")
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(
                    f"block width {c} does not split into {self.norm_num_groups} groups"
                )

    def heads(self, level: int) -> int:
        h = self.attention_heads
        return h if isinstance(h, int) else h[level]

    def motion_spec(self, level: int, mid: bool = False) -> tuple[int, int, int, int] | None:
        """``MotionModule`` arguments (heads, layers, groups, max_length) at ``level``, or None."""
        if not self.motion or (mid and not self.motion_mid_block):
            return None
        h = self.motion_num_attention_heads
        heads = h if isinstance(h, int) else h[level]
        layers = self.motion_mid_transformer_layers if mid else self.motion_transformer_layers
        # GroupNorm of the U-Net's norm_num_groups, as AnimateDiff's UNetMotionModel builds it
        return heads, layers, self.norm_num_groups, self.motion_max_seq_length

    @classmethod
    def from_dict(cls, d: dict) -> SDUNetConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown SDUNetConfig keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of the timestep (width ``block_out_channels[0]``) -> 2-layer MLP."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


def sinusoid(t: torch.Tensor, dim: int, flip: bool, shift: float) -> torch.Tensor:
    """DDPM's timestep features: ``sin(t w_i), cos(t w_i)`` with ``w_i = 10000^(-i / (dim/2 - shift))``
    (``[cos, sin]`` when ``flip``, as SD was trained). float32, ``(B, dim)``."""
    half = dim // 2
    i = torch.arange(half, device=t.device, dtype=torch.float32)
    args = t.float()[:, None] * torch.exp(-math.log(10000.0) * i / (half - shift))[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return F.pad(emb, (0, dim % 2))


class SDUNet(ConditionedNet):
    """SD-layout U-Net on clips: ``forward(x_in, c_noise, context=None, context_mask=None)``.


    ``x_in`` (B, C, T, H, W); ``c_noise`` (B,) the DDPM timestep; ``context`` (B, L, context_dim) is
    shared by the T frames. ``context_mask`` is accepted and ignored: Stable Diffusion was trained
    attending to CLIP's padding tokens too, so masking them would change its outputs. Without motion
    modules every frame is denoised independently (an image model); with them, frames see each other.
    """

    def __init__(self, config: SDUNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        # Declared, not embedded by ConditionedNet: SD's timestep MLP has its own names.
        self.conditions = network_conditions(cfg)
        ch = cfg.block_out_channels
        emb_dim = 4 * ch[0]
        n, lpb = len(ch), cfg.layers_per_block
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], emb_dim)

        self.down_blocks = nn.ModuleList()
        skips = [ch[0]]
        for i, kind in enumerate(cfg.down_block_types):
            last = i == n - 1
            stage = Stage(
                ch[max(i - 1, 0)],
                ch[i],
                lpb,
                emb_dim,
                cfg,
                cfg.heads(i),
                attn=kind.startswith("CrossAttn"),
                motion=cfg.motion_spec(i),
                resample=None if last else "down",
            )
            self.down_blocks.append(stage)
            skips += [ch[i]] * (lpb + (0 if last else 1))

        self.mid_block = MidBlock(
            ch[-1], emb_dim, cfg, cfg.heads(n - 1), cfg.motion_spec(n - 1, True)
        )

        self.up_blocks = nn.ModuleList()
        prev = ch[-1]
        for j, kind in enumerate(cfg.up_block_types):
            level = n - 1 - j
            mine = [skips.pop() for _ in range(lpb + 1)]
            self.up_blocks.append(
                Stage(
                    prev,
                    ch[level],
                    lpb + 1,
                    emb_dim,
                    cfg,
                    cfg.heads(level),
                    attn=kind.startswith("CrossAttn"),
                    motion=cfg.motion_spec(level),
                    resample=None if level == 0 else "up",
                    skip_channels=mine,
                )
            )
            prev = ch[level]

        self.conv_norm_out = GroupNorm32(cfg.norm_num_groups, ch[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(ch[0], cfg.out_channels, 3, padding=1)

    def forward(
        self,
        x_in: torch.Tensor,
        c_noise: torch.Tensor,
        **cond,
    ) -> torch.Tensor:
        cfg = self.config
        c_noise, cond = self.check_conditions(x_in, c_noise, cond)
        context = cond.get("context")
        b, _, t = x_in.shape[:3]
        features = sinusoid(c_noise, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        emb = self.time_embedding(features.to(x_in.dtype)).repeat_interleave(t, dim=0)  # ((B T), D)
        if context is not None:
            context = context.to(x_in.dtype).repeat_interleave(t, dim=0)  # every frame, one prompt

        # contiguous frames: a strided view here made the CPU conv backward crash (torch 2.13)
        h = self.conv_in(rearrange(x_in, "b c t h w -> (b t) c h w").contiguous())
        skips = [h]
        for stage in self.down_blocks:
            h, outs = stage.down(h, emb, context, t)
            skips += outs
        h = self.mid_block(h, emb, context, t)
        for stage in self.up_blocks:
            h = stage.up(h, skips, emb, context, t)
        out = self.conv_out(F.silu(self.conv_norm_out(h)))
        return rearrange(out, "(b t) c h w -> b c t h w", b=b)


def is_motion_key(name: str) -> bool:
    """Whether a parameter of :class:`SDUNet` belongs to a motion module (the temporal layers)."""
    return ".motion_modules." in f".{name}"


# --------------------------------------------------------------------------------------------------
# Presets. ``context_dim`` is set by the pipeline from its text encoder.

SD_UNET_PRESETS: dict[str, SDUNetConfig] = {
    # Stable Diffusion 1.x (860M parameters; weights come from a diffusers folder, `vidiff inflate`).
    "sd15": SDUNetConfig(),
    # A few hundred thousand parameters: tests.
    "sd-tiny": SDUNetConfig(
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        attention_heads=2,
        norm_num_groups=8,
        context_dim=32,
        motion_num_attention_heads=2,
    ),
}


__all__ = ["SDUNet", "SDUNetConfig", "SD_UNET_PRESETS", "is_motion_key", "sinusoid"]
