"""Stable Diffusion's image VAE as a video VAE of the pipeline: each frame encoded on its own.

Latent Diffusion (Rombach et al., 2022) trains its U-Net on the scaled posterior means of an
``AutoencoderKL`` (``z = (mean - shift_factor) * scaling_factor``). An inflated SD model keeps that
latent space: this wrapper gives diffusers' ``AutoencoderKL`` (the ``hf`` extra; built from its config,
weights from the vidiff export's ``vae.model.*``) the interface :class:`~vidiff.pipeline.VideoPipeline`
uses for latent models -- ``encode_latents`` / ``decode_latents`` on ``(B, C, T, H, W)`` in model
space ``[-1, 1]``, no temporal compression, any frame count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn


@dataclass
class SDVAEConfig:
    """The ``AutoencoderKL`` config (``diffusers``) and the latent scaling the U-Net was trained with."""

    diffusers: dict[str, Any] = field(default_factory=dict)
    scaling_factor: float = 0.18215
    shift_factor: float = 0.0


class SDVAE(nn.Module):
    """Per-frame ``AutoencoderKL``: ``(B, 3, T, H, W)`` <-> ``(B, latent_channels, T, H/f, W/f)``."""

    temporal_compression = 1

    def __init__(self, config: SDVAEConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKL  # optional dependency (extra "hf")

        self.config = config
        self.model = AutoencoderKL.from_config(config.diffusers)

    @property
    def latent_channels(self) -> int:
        return int(self.config.diffusers.get("latent_channels", 4))

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.config.diffusers.get("block_out_channels", (0,) * 4)) - 1)

    def latent_shape(self, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        f = self.spatial_compression
        if h % f or w % f:
            raise ValueError(f"frame size {h}x{w} is not a multiple of the VAE's {f}x compression")
        return (self.latent_channels, t, h // f, w // f)

    def pad_frames(self, video: torch.Tensor) -> torch.Tensor:
        return video  # frames are encoded one by one: any T

    def padded_frames(self, t: int) -> int:
        return t

    @torch.no_grad()
    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        b = video.shape[0]
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        mean = self.model.encode(frames.to(self.model.dtype)).latent_dist.mode()
        z = (mean.float() - self.config.shift_factor) * self.config.scaling_factor
        # contiguous: the (b t) -> b c t layout is channels-last-like strides otherwise, which the
        # CPU conv backward of the network downstream crashed on (torch 2.13)
        return rearrange(z, "(b t) c h w -> b c t h w", b=b).contiguous()

    @torch.no_grad()
    def decode_latents(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        b = z.shape[0]
        z = rearrange(z, "b c t h w -> (b t) c h w") / self.config.scaling_factor
        x = self.model.decode((z + self.config.shift_factor).to(self.model.dtype)).sample
        x = rearrange(x.float(), "(b t) c h w -> b c t h w", b=b).contiguous()
        return x if num_frames is None else x[:, :, :num_frames]


def read_vae(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(SDVAEConfig as a dict, state dict keyed ``model.*``) of a diffusers ``AutoencoderKL`` folder."""
    from vidiff.interop.diffusers import read_config, read_weights

    cfg = read_config(folder, "AutoencoderKL")
    config = {
        "diffusers": json.loads(json.dumps(cfg)),
        "scaling_factor": float(cfg.get("scaling_factor", 0.18215)),
        "shift_factor": float(cfg.get("shift_factor") or 0.0),
    }
    return config, {"model." + k: v for k, v in read_weights(folder).items()}


__all__ = ["SDVAE", "SDVAEConfig", "read_vae"]
