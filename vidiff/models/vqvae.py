"""VideoGPT's first stage: a 3D-conv VQ-VAE with an EMA codebook and dead-code restarts.

VideoGPT (Yan et al., 2021, "VideoGPT: Video generation using VQ-VAE and transformers") compresses a
clip with a 3D-convolutional VQ-VAE (van den Oord et al., 2017, "Neural discrete representation
learning") into a grid of discrete codes, then models the codes with a causal transformer
(:mod:`vidiff.models.videogpt`). This file is the autoencoder:

* **Encoder / decoder** are vidiff's causal conv stacks (:class:`vidiff.models.vae.Encoder` /
  :class:`~vidiff.models.vae.Decoder`), configured like the causal VAE: the preset ``vqvae-tiny``
  is built as the shipped ``vae-shapes`` is (per-frame convs but for two causal 3-frame
  downsampling convs, x4 space, no time compression, MSE), so a 16-frame 32x32 clip is 16 x 8 x 8
  codes. With time compression (``vqvae-tiny-t4``: x4) a ``T = 1 + 4k`` clip maps to ``1 + k`` code
  frames; other lengths are padded with their last frame (:meth:`VQVAE.pad_frames`) and cropped
  after decoding.
* **EMA codebook** (van den Oord et al. 2017, appendix A.1; VideoGPT): codes are not trained by
  gradients but are the exponential moving average of the encoder outputs assigned to them
  (cluster sizes with Laplace smoothing). The encoder is pulled to its code by the commitment loss
  ``beta |z - sg(e)|^2``; the decoder sees ``z + sg(e - z)`` (straight-through gradients).
* **Dead-code restarts** (Dhariwal et al., 2020, Jukebox; VideoGPT): a code whose EMA cluster size
  drops below ``dead_threshold`` is moved onto an encoder output of the current batch, so the
  codebook cannot collapse onto a few entries unnoticed. :func:`codebook_usage` measures what is
  left (codes used, perplexity) on real clips.

The statistics of a step are gathered by every training forward (:meth:`VectorQuantizer.forward`)
and applied once per optimiser step by :meth:`VectorQuantizer.update` -- the objective's
``end_step`` hook -- so gradient accumulation sees one EMA step. (With several processes the
statistics are not all-reduced: train the VQ-VAE on one process.) Values are model space
``[-1, 1]``, layout ``(B, C, T, H, W)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.config import preset_config
from vidiff.files import load_arch_folder, write_arch_folder
from vidiff.models.vae import Decoder, Encoder, VAEConfig


@dataclass
class VQVAEConfig:
    """Hyper-parameters of :class:`VQVAE` (presets in :data:`VQVAE_PRESETS`)."""

    in_channels: int = 3
    code_dim: int = 16  # width of a code vector (even)
    codebook_size: int = 256
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 2)
    temporal_downsample: tuple[bool, ...] = (True, True)
    time_kernel: tuple[int, ...] | None = None  # per level; 1: per-frame convs (VAEConfig's)
    num_res_blocks: int = 1
    norm: str = "group"
    ema_decay: float = 0.99  # codebook EMA
    # EMA cluster size (vectors per step) below which a code is restarted (0: never). Jukebox's 1.0:
    # a code must win about one vector per step to stay; a fresh codebook (sizes 0) is entirely
    # restarted on encoder outputs at the first step (a data-dependent initialisation).
    dead_threshold: float = 1.0
    # Training loss (read by vidiff.train.objectives.videogpt.VQVAEObjective).
    commitment: float = 0.25
    l1_weight: float = 1.0
    l2_weight: float = 1.0

    def __post_init__(self) -> None:
        self.channel_mult = tuple(self.channel_mult)
        self.temporal_downsample = tuple(bool(t) for t in self.temporal_downsample)
        if self.time_kernel is not None:
            self.time_kernel = tuple(int(k) for k in self.time_kernel)
        if self.code_dim < 2 or self.code_dim % 2:
            raise ValueError(f"code_dim must be an even number >= 2, got {self.code_dim}")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    def conv_config(self, latent_channels: int) -> VAEConfig:
        """The causal VAE config whose conv stacks this VQ-VAE reuses."""
        return VAEConfig(
            in_channels=self.in_channels,
            latent_channels=latent_channels,
            base_channels=self.base_channels,
            channel_mult=self.channel_mult,
            temporal_downsample=self.temporal_downsample,
            time_kernel=self.time_kernel,
            num_res_blocks=self.num_res_blocks,
            norm=self.norm,
        )


VQVAE_PRESETS: dict[str, VQVAEConfig] = {
    # CPU: the shipped causal VAE's lesson (vae-shapes, docs/latent-dit.md): x4 space, no time
    # compression, per-frame convs (but two causal 3-frame downsampling convs), MSE -- 16 frames at
    # 32x32 -> 16 x 8 x 8 = 1024 codes of 16 dims.
    "vqvae-tiny": VQVAEConfig(
        base_channels=32,
        temporal_downsample=(False, False),
        time_kernel=(1, 1, 1),
        l1_weight=0.0,
        l2_weight=1.0,
    ),
    # The first design (docs/leaderboard.md's early rows): 3D convs, x4 space and x4 time
    # (16 frames -> 5 x 8 x 8 = 320 codes); its codebook stayed on the background.
    "vqvae-tiny-t4": VQVAEConfig(),
    # tests
    "vqvae-test": VQVAEConfig(code_dim=4, codebook_size=16, base_channels=8),
}


def vqvae_config(preset: str | None, **overrides: Any) -> VQVAEConfig:
    """A preset with ``overrides``; ``preset=None``: ``overrides`` is the complete config."""
    return preset_config(VQVAEConfig, VQVAE_PRESETS, preset, "VQ-VAE", **overrides)


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with an EMA codebook and dead-code restarts (see module docstring).

    Buffers: ``embedding (K, D)``, the EMA ``cluster_size (K)`` and ``embed_sum (K, D)``, the
    running count of ``restarts``; the current step's ``pending_*`` sums (zero between steps)."""

    def __init__(self, num_codes: int, dim: int, decay: float, dead_threshold: float):
        super().__init__()
        self.decay, self.dead_threshold = decay, dead_threshold
        embedding = torch.randn(num_codes, dim) * 0.1
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.zeros(num_codes))  # dead until assigned
        self.register_buffer("embed_sum", embedding.clone())
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self.register_buffer("pending_count", torch.zeros(num_codes))
        self.register_buffer("pending_sum", torch.zeros(num_codes, dim))
        self._candidates: list[torch.Tensor] = []  # this step's encoder outputs, for restarts

    @property
    def num_codes(self) -> int:
        return self.embedding.shape[0]

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each vector of ``z (B, D, t, h, w)`` -> ``(B, t, h, w)``."""
        flat = rearrange(z, "b d t h w -> (b t h w) d").float()
        dist = (
            flat.square().sum(1, keepdim=True)
            - 2 * flat @ self.embedding.t()
            + self.embedding.square().sum(1)[None]
        )
        b, _, t, h, w = z.shape
        return dist.argmin(1).view(b, t, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``codes (B, t, h, w)`` -> ``(B, D, t, h, w)``."""
        return rearrange(self.embedding[codes], "b t h w d -> b d t h w")

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z (B, D, t, h, w)`` -> straight-through quantised ``z``, codes ``(B, t, h, w)`` and the
        per-sample commitment term ``|z - sg(e)|^2`` ``(B,)``. In training mode with gradients on,
        the step's codebook statistics are gathered for :meth:`update`."""
        codes = self.codes(z)
        q = self.lookup(codes).to(z.dtype)
        commit = (z - q.detach()).square().mean(dim=(1, 2, 3, 4))
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                flat = rearrange(z, "b d t h w -> (b t h w) d").float()
                onehot = F.one_hot(codes.flatten(), self.num_codes).float()
                self.pending_count += onehot.sum(0)
                self.pending_sum += onehot.t() @ flat
                self._candidates.append(flat)
        return z + (q - z).detach(), codes, commit

    @torch.no_grad()
    def update(self, step: int) -> int:
        """Apply the step's EMA codebook update, then restart dead codes on encoder outputs of this
        step chosen by a generator seeded with ``step`` (so a resumed run restarts the same way).
        Returns the number of codes restarted."""
        if not self._candidates:
            return 0
        d = self.decay
        self.cluster_size.mul_(d).add_(self.pending_count, alpha=1 - d)
        self.embed_sum.mul_(d).add_(self.pending_sum, alpha=1 - d)
        n = self.cluster_size.sum()
        k = self.num_codes
        smoothed = (self.cluster_size + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing
        self.embedding.copy_(self.embed_sum / smoothed[:, None])
        dead = (self.cluster_size < self.dead_threshold).nonzero().flatten()
        if len(dead):
            pool = torch.cat(self._candidates)
            g = torch.Generator().manual_seed(int(step))
            pick = torch.randint(len(pool), (len(dead),), generator=g).to(pool.device)
            self.embedding[dead] = pool[pick]
            self.embed_sum[dead] = pool[pick]
            self.cluster_size[dead] = 1.0
            self.restarts += len(dead)
        self.pending_count.zero_()
        self.pending_sum.zero_()
        self._candidates = []
        return len(dead)


class VQVAE(nn.Module):
    """The VQ-VAE: :class:`~vidiff.models.vae.Encoder` -> :class:`VectorQuantizer` ->
    :class:`~vidiff.models.vae.Decoder`, on model-space clips of ``1 + 4k`` frames."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = c = config
        # The VAE encoder outputs 2 * latent_channels (mean and log-variance there); here all of its
        # output is the vector to quantise, so it is built with half the code width.
        self.encoder = Encoder(c.conv_config(c.code_dim // 2))
        self.quantizer = VectorQuantizer(c.codebook_size, c.code_dim, c.ema_decay, c.dead_threshold)
        self.decoder = Decoder(c.conv_config(c.code_dim))
        self.spatial_compression = 2 ** (len(c.channel_mult) - 1)
        self.temporal_compression = 2 ** sum(c.temporal_downsample)

    def padded_frames(self, t: int) -> int:
        """Frames after :meth:`pad_frames`: the next ``1 + tc k``."""
        tc = self.temporal_compression
        return 1 + tc * math.ceil((t - 1) / tc)

    def pad_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame up to ``1 + tc k`` frames (causal: earlier codes are unchanged)."""
        extra = self.padded_frames(video.shape[2]) - video.shape[2]
        if extra == 0:
            return video
        return torch.cat([video, video[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)

    def code_shape(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """The code grid ``(t', h', w')`` of a ``t``-frame ``h x w`` clip (padded first)."""
        s, tc = self.spatial_compression, self.temporal_compression
        if h % s or w % s:
            raise ValueError(f"VQ-VAE frames must be multiples of {s} pixels, got {h}x{w}")
        return (self.padded_frames(t) - 1) // tc + 1, h // s, w // s

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, t', h', w')`` of a model-space clip of any length (padded first)."""
        return self.quantizer.codes(self.encoder(self.pad_frames(video)))

    def decode(self, codes: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Model-space clip of codes ``(B, t', h', w')``, cropped to ``num_frames``."""
        return self.decode_latents(self.quantizer.lookup(codes), num_frames)

    # The causal VAE's latent interface (vidiff.eval.reconstruction scores either autoencoder).
    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        """Quantised code vectors ``(B, D, t', h', w')`` of a model-space clip (padded first)."""
        return self.quantizer.lookup(self.encode(video))

    def decode_latents(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Model-space clip of code vectors ``z``, cropped to ``num_frames``."""
        x = self.decoder(z)
        return x if num_frames is None else x[:, :, :num_frames]

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction (same frames as ``video``), codes and per-sample commitment ``(B,)``."""
        q, codes, commit = self.quantizer(self.encoder(self.pad_frames(video)))
        return self.decoder(q)[:, :, : video.shape[2]], codes, commit

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """``config.json`` (``{"arch": "vqvae", "vqvae": {...}}``) + ``model.safetensors``."""
        # The codebook's EMA statistics stay float32 whatever ``dtype``: only weights and biases are cast.
        weight = lambda name: name.endswith(("weight", "bias"))
        return write_arch_folder(
            path, "vqvae", dataclasses.asdict(self.config), self, dtype, weight
        )

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> VQVAE:
        """Read a folder written by :meth:`save` / ``vidiff export`` (float32 weights)."""
        model = load_arch_folder(path, "vqvae", "VQ-VAE", cls, VQVAEConfig)
        return model.to(map_location).eval()


@torch.no_grad()
def codebook_usage(vqvae: VQVAE, videos: torch.Tensor, batch_size: int = 16) -> dict[str, float]:
    """How much of the codebook real clips use: ``codes_used`` (distinct codes), ``usage`` (their
    share of the codebook), ``perplexity`` (``exp`` of the code entropy; K when uniform, 1 when
    collapsed) and the EMA ``alive`` share (cluster size above the restart threshold). ``videos``
    are ``[0, 1]`` clips ``(N, C, T, H, W)``."""
    counts = torch.zeros(vqvae.quantizer.num_codes)
    dev = next(vqvae.parameters()).device
    for start in range(0, len(videos), batch_size):
        codes = vqvae.encode(videos[start : start + batch_size].to(dev) * 2 - 1)
        counts += torch.bincount(codes.flatten().cpu(), minlength=len(counts)).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    q = vqvae.quantizer
    return {
        "codes_used": int((counts > 0).sum()),
        "usage": float((counts > 0).float().mean()),
        "perplexity": float(entropy.exp()),
        "alive": float((q.cluster_size >= q.dead_threshold).float().mean()),
        "restarts": int(q.restarts),
    }


__all__ = [
    "VQVAE",
    "VQVAE_PRESETS",
    "VQVAEConfig",
    "VectorQuantizer",
    "codebook_usage",
    "vqvae_config",
]
