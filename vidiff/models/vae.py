"""Causal video autoencoder: a KL-regularised 3D-conv VAE whose first frame is encoded on its own.

The latent space of a latent video diffusion model (Sora, WALT, Kling, Wan) comes from an autoencoder
that compresses space *and* time. This one follows MAGVIT-v2 (Yu et al., 2024, "Language model beats
diffusion"), WALT (Gupta et al., 2023) and the Wan-VAE (Wan team, 2025):

* **Causal 3D convolutions**: temporal padding only on the past, by replicating the first frame, so
  latent frame ``j`` depends on input frames ``<= 4 j`` only and latent frame 0 on frame 0 alone.
  A clip of ``T = 1 + 4k`` frames maps to ``1 + k`` latent frames and an image (``T = 1``) to one:
  images and videos share one latent space (joint image-video compression).
* **Spatial first** (``time_kernel``): a level whose temporal kernel is 1 runs per-frame 2D convs,
  so time is mixed only at the coarse levels, as Open-Sora's VAE puts a temporal VAE over a
  per-frame 2D one: a third of a 3D conv's multiply-adds (a training step of the 32-64-wide net
  takes about half the time), and on MovingShapes it leaves the background-only plateau sooner
  (docs/latent-dit.md). The shipped ``vae-shapes`` compresses space only (x4, 8 channels) with
  per-frame convs at every level; only the encoder's two stride-2 downsampling convs keep a causal
  3-tap time kernel, so its latent frame ``j`` sees frames ``j - 4 .. j`` (the decoder is per-frame
  throughout).
* Temporal downsampling is a causal conv with temporal stride 2 (``1 + 2m -> 1 + m`` frames);
  temporal upsampling is a causal depth-to-time conv that makes two frames per frame and drops the
  first frame's extra one (``1 + m -> 1 + 2m``), as in MAGVIT-v2 / CogVideoX.
* Normalisation is an RMS norm over *channels only* (Wan-VAE): no statistic mixes frames or pixels, so
  the network stays causal and chunked / tiled encoding equals the whole-clip computation.
* **KL latent** (Kingma & Welling, 2014; the LDM autoencoder of Rombach et al., 2022): the encoder
  gives ``(mean, logvar)``; diffusion sees ``z = (sample - shift_factor) * scaling_factor`` with the
  factors measured on data (:func:`vidiff.eval.reconstruction.measure_scaling`) so that ``z`` has
  unit variance.

**The frame-count rule.** ``encode`` accepts ``T = 1 + temporal_compression * k`` only (1, 5, 9, 13,
17, ... for x4) and raises a ``ValueError`` otherwise -- never a silent fix. A 16-frame clip (the
synthetic sets' default) is made encodable by :meth:`CausalVideoVAE.pad_frames`, which repeats the
*last* frame (16 -> 17; causal, so frames 0..15 get the same latents as without the pad), and
``decode_latents(z, num_frames=16)`` crops the decoded ``1 + 4k`` frames back to 16.

**Value range.** Both ``encode*`` and ``decode_latents`` work in *model space* ``[-1, 1]``
(``docs/architecture.md``): callers convert from ``[0, 1]`` videos with ``x * 2 - 1``.
(The training objective is the exception: like every objective it takes ``[0, 1]`` videos from the
loop and converts them itself.)

**Memory.** :meth:`CausalVideoVAE.encode` / :meth:`decode_latents` take ``tile_frames`` (chunks of
latent frames processed causally with cached context -- equal to the untiled result up to float
rounding) and ``tile_size`` (spatial tiles computed with a ``tile_context`` halo that is cropped away, then
blended linearly in their overlap, as in the diffusers / Open-Sora tiled VAEs: exact when the halo
covers the receptive field -- 32 px for ``vae-tiny`` -- and close otherwise).

**Training** is not this file's job: :class:`vidiff.train.objectives.autoencoder.VAEObjective` owns
the reconstruction / KL / structural / adversarial loss and the patch discriminator (the loss weights
stay in :class:`VAEConfig` so that a run's config describes it); reconstruction metrics and the latent
scale measurement live in :mod:`vidiff.eval.reconstruction`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.config import preset_config
from vidiff.files import load_arch_folder, write_arch_folder
from vidiff.nn.norms import ChannelRMSNorm, GroupNorm32, num_groups
from vidiff.nn.tiling import causal_chunks, spatial_tiles

# --------------------------------------------------------------------------------------------------
# config


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`CausalVideoVAE` (presets in :data:`VAE_PRESETS`)."""

    in_channels: int = 3
    latent_channels: int = 4
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 2)  # one entry per resolution level
    # One entry per level transition (len(channel_mult) - 1): each halves H and W; True also halves T.
    temporal_downsample: tuple[bool, ...] = (True, True)
    num_res_blocks: int = 1
    # Temporal kernel of each level's convs (one entry per level; None = 3 everywhere). 1 makes that
    # level per-frame (2D convs, a third of the multiply-adds; on small clips they also learn
    # sooner); time is then mixed at the coarse levels only ("spatial first", as Open-Sora's VAE
    # stacks a per-frame 2D VAE under a temporal one).
    time_kernel: tuple[int, ...] | None = None
    # "rms": RMS norm over channels per pixel (Wan-VAE; spatial tiles are then exact); "group": group
    # norm over each frame (the LDM VAE's, per frame so it stays causal): learns objects several times
    # faster on small synthetic clips, spatial tiles become approximate (blended seams).
    norm: str = "rms"
    # Latent normalisation, z = (sample - shift_factor) * scaling_factor; measured by measure_scaling.
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    # Training loss (read by vidiff.train.objectives.autoencoder.VAEObjective; kept here so that a
    # run's config and an export's config.json stay one dataclass).
    l1_weight: float = 1.0
    l2_weight: float = 0.0
    kl_weight: float = 1e-6  # per latent element sum / per pixel, i.e. the LDM autoencoder's beta
    logvar_init: float = -6.0  # initial posterior log-variance (encoder output bias)
    perceptual_weight: float = 0.1  # 1 - MS-SSIM (weight-free perceptual term)
    gan_weight: float = 0.0  # 0 disables the discriminator altogether
    disc_start: int = 0  # trainer step from which the adversarial terms are used
    disc_type: str = "2d"  # 2d: per-frame patch discriminator | 3d: spatio-temporal
    disc_channels: int = 32
    disc_layers: int = 2
    disc_lr_mult: float = 1.0
    adaptive_gan_weight: bool = False  # VQGAN: balance GAN vs recon gradients at the last layer
    # Inference-time memory limits (None = whole clip / whole frame).
    tile_frames: int | None = None  # latent frames per causal chunk
    tile_size: int | None = None  # pixel tile side for spatial tiling
    tile_overlap: float = 0.25  # fraction of a tile shared with its neighbour
    tile_context: int = 32  # extra pixels around each tile, cropped after (receptive-field halo)

    def __post_init__(self) -> None:
        self.channel_mult = tuple(self.channel_mult)
        self.temporal_downsample = tuple(bool(t) for t in self.temporal_downsample)
        if self.time_kernel is None:
            self.time_kernel = (3,) * len(self.channel_mult)
        self.time_kernel = tuple(int(k) for k in self.time_kernel)
        if len(self.time_kernel) != len(self.channel_mult) or min(self.time_kernel) < 1:
            raise ValueError(
                f"time_kernel needs one entry >= 1 per level ({len(self.channel_mult)}), got "
                f"{list(self.time_kernel)}"
            )
        if len(self.temporal_downsample) != len(self.channel_mult) - 1:
            raise ValueError(
                f"temporal_downsample needs len(channel_mult) - 1 = {len(self.channel_mult) - 1} "
                f"entries (one per level transition), got {list(self.temporal_downsample)}"
            )
        if self.norm not in ("rms", "group"):
            raise ValueError(f"norm must be 'rms' or 'group', got {self.norm!r}")
        if self.disc_type not in ("2d", "3d"):
            raise ValueError(f"disc_type must be '2d' or '3d', got {self.disc_type!r}")
        if self.scaling_factor <= 0:
            raise ValueError(f"scaling_factor must be > 0, got {self.scaling_factor}")
        if not 0 <= self.tile_overlap < 1:
            raise ValueError(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")


VAE_PRESETS: dict[str, VAEConfig] = {
    # The shipped `vae-shapes` (configs/vae-shapes.yaml, `make vae`): spatial x4, no temporal
    # compression, 8 latent channels, per-frame convs (but the two downsampling convs: causal,
    # 3 frames); MSE loss. Why: docs/latent-dit.md.
    "vae-shapes": VAEConfig(
        base_channels=32,
        channel_mult=(1, 2, 2),
        temporal_downsample=(False, False),
        time_kernel=(1, 1, 1),
        latent_channels=8,
        norm="group",
        l1_weight=0.0,
        l2_weight=1.0,
        perceptual_weight=0.0,
    ),
    # CPU / tests: spatial x4, temporal x4, 4 latent channels, 0.57M parameters.
    "vae-tiny": VAEConfig(
        base_channels=16, channel_mult=(1, 2, 2), temporal_downsample=(True, True), norm="group"
    ),
    # spatial x8, temporal x4 (the Sora/Wan/SD-style factor) at CPU size.
    "vae-tiny-s8": VAEConfig(
        base_channels=16,
        channel_mult=(1, 2, 2, 4),
        temporal_downsample=(False, True, True),
        norm="group",
    ),
    # GPU-sized: spatial x8, temporal x4, 16 latent channels (Wan-VAE-like widths).
    "vae-small": VAEConfig(
        base_channels=64,
        channel_mult=(1, 2, 4, 4),
        temporal_downsample=(False, True, True),
        num_res_blocks=2,
        latent_channels=16,
    ),
}


def vae_config(preset: str = "vae-tiny", **overrides: Any) -> VAEConfig:
    """A preset's config with field overrides (validated again); unknown preset or field is a
    ``ValueError``. (Same contract as :func:`vidiff.models.build_config`.)"""
    return preset_config(VAEConfig, VAE_PRESETS, preset, "VAE", **overrides)


# --------------------------------------------------------------------------------------------------
# causal building blocks. ``cache`` (a dict owned by the caller, one per chunked pass) carries each
# causal conv's past frames from one temporal chunk to the next.


class FrameGroupNorm(GroupNorm32):
    """Group norm over the channels and pixels of each frame (the LDM VAE's norm, per frame so that no
    statistic crosses time): causal and chunkable over time, not exactly tileable over space."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        y = super().forward(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(y, "(b t) c h w -> b c t h w", b=b)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return FrameGroupNorm(num_groups(channels, 8), channels, eps=1e-6)
    return ChannelRMSNorm(channels)


class CausalConv3d(nn.Module):
    """3D conv padded on the *past* in time (replicating the first frame) and symmetrically in space.

    With temporal stride ``s`` and kernel ``k`` a clip of ``T`` frames gives ``(T - 1) // s + 1``
    frames and output ``j`` sees inputs ``s j - (k - 1) .. s j`` (clamped at 0): output 0 sees frame 0
    alone. Chunked calls with a shared ``cache`` continue the sequence exactly: the cache keeps the
    tail of (cache + input) from where the next output window starts.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: tuple[int, int] = (1, 1),
        time_kernel: int | None = None,
    ):
        super().__init__()
        self.kt, self.stride_t = time_kernel or kernel, stride[0]
        self.pad_s = kernel // 2
        self.conv = nn.Conv3d(
            cin, cout, (self.kt, kernel, kernel), stride=(stride[0], stride[1], stride[1])
        )

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = F.pad(x, (self.pad_s,) * 4)
        past = None if cache is None else cache.get(id(self))
        if past is None:  # first chunk: replicate frame 0 into the past
            past = x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1)
        buf = torch.cat([past, x], dim=2)  # (B, C, k - 1 + T, H, W) on the first chunk
        n_out = (buf.shape[2] - self.kt) // self.stride_t + 1
        if cache is not None:
            cache[id(self)] = buf[:, :, n_out * self.stride_t :].detach()
        return self.conv(buf)


class ResBlock(nn.Module):
    """Pre-norm residual block of two causal 3x3x3 convs (the LDM/MAGVIT-v2 ResBlock, causal)."""

    def __init__(self, cin: int, cout: int, norm: str = "rms", time_kernel: int = 3):
        super().__init__()
        self.norm1 = make_norm(norm, cin)
        self.conv1 = CausalConv3d(cin, cout, time_kernel=time_kernel)
        self.norm2 = make_norm(norm, cout)
        self.conv2 = CausalConv3d(cout, cout, time_kernel=time_kernel)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return self.skip(x) + h


class Downsample(nn.Module):
    """Stride-2 causal conv: halves H, W and (optionally) time, ``1 + 2m -> 1 + m`` frames."""

    def __init__(self, channels: int, temporal: bool):
        super().__init__()
        self.conv = CausalConv3d(channels, channels, 3, stride=(2 if temporal else 1, 2))

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        return self.conv(x, cache)


class Upsample(nn.Module):
    """Nearest x2 in space (+ conv); in time a causal depth-to-time conv: ``1 + m -> 1 + 2m``.

    The temporal conv makes ``2C`` channels per frame, unfolded into two frames; frame 0's first copy
    is dropped so that the first latent frame still decodes to exactly one frame (the image path).
    """

    def __init__(self, channels: int, temporal: bool, time_kernel: int = 3):
        super().__init__()
        self.temporal = temporal
        if temporal:
            self.time_conv = CausalConv3d(channels, 2 * channels)
        self.conv = CausalConv3d(channels, channels, time_kernel=time_kernel)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        if self.temporal:
            first = cache is None or id(self) not in cache
            y = self.time_conv(x, cache)
            y = rearrange(y, "b (r c) t h w -> b c (t r) h w", r=2)  # (B, C, 2T, H, W)
            if first:
                y = y[:, :, 1:]
            if cache is not None:
                cache[id(self)] = True
            x = y
        b = x.shape[0]
        x = rearrange(x, "b c t h w -> (b t) c h w")
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = rearrange(x, "(b t) c h w -> b c t h w", b=b)
        return self.conv(x, cache)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        kts = cfg.time_kernel
        self.conv_in = CausalConv3d(cfg.in_channels, chans[0], time_kernel=kts[0])
        self.blocks = nn.ModuleList()
        c = chans[0]
        for level, cl in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                self.blocks.append(ResBlock(c, cl, cfg.norm, kts[level]))
                c = cl
            if level < len(chans) - 1:
                self.blocks.append(Downsample(c, cfg.temporal_downsample[level]))
        self.mid = ResBlock(c, c, cfg.norm, kts[-1])
        self.norm_out = make_norm(cfg.norm, c)
        self.conv_out = CausalConv3d(c, 2 * cfg.latent_channels, time_kernel=kts[-1])

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = self.conv_in(x, cache)
        for block in self.blocks:
            h = block(h, cache)
        h = self.mid(h, cache)
        return self.conv_out(F.silu(self.norm_out(h)), cache)  # (B, 2 z, t, h, w): mean, logvar


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        kts = cfg.time_kernel
        c = chans[-1]
        self.conv_in = CausalConv3d(cfg.latent_channels, c, time_kernel=kts[-1])
        self.mid = ResBlock(c, c, cfg.norm, kts[-1])
        self.blocks = nn.ModuleList()
        for level in reversed(range(len(chans))):
            for _ in range(cfg.num_res_blocks):
                self.blocks.append(ResBlock(c, chans[level], cfg.norm, kts[level]))
                c = chans[level]
            if level > 0:
                self.blocks.append(Upsample(c, cfg.temporal_downsample[level - 1], kts[level - 1]))
        self.norm_out = make_norm(cfg.norm, c)
        self.conv_out = CausalConv3d(c, cfg.in_channels, time_kernel=kts[0])

    def forward(self, z: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = self.mid(self.conv_in(z, cache), cache)
        for block in self.blocks:
            h = block(h, cache)
        return self.conv_out(F.silu(self.norm_out(h)), cache)


class DiagonalGaussian:
    """The posterior ``q(z | x) = N(mean, exp(logvar))`` (LDM ``DiagonalGaussianDistribution``)."""

    def __init__(self, moments: torch.Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(
        self, generator: torch.Generator | list[torch.Generator] | None = None
    ) -> torch.Tensor:
        """A reparameterised sample; a list of generators draws sample ``i`` from ``generator[i]``."""
        if isinstance(generator, list):
            eps = torch.stack(
                [torch.randn(self.mean.shape[1:], generator=g) for g in generator]
            ).to(self.mean)
        else:
            eps = torch.randn(self.mean.shape, generator=generator).to(self.mean)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) summed over each sample's latent elements: ``(B,)``."""
        return 0.5 * (self.mean.square() + self.logvar.exp() - 1.0 - self.logvar).sum(
            dim=(1, 2, 3, 4)
        )


# --------------------------------------------------------------------------------------------------
# the model


class CausalVideoVAE(nn.Module):
    """Causal 3D-conv KL autoencoder for videos and images (see the module docstring)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        # Start with a narrow posterior (std e^-3 ~ 0.05): with logvar ~ 0 the sampled z is mostly noise
        # at initialisation and the decoder first learns to ignore it (predict the mean clip), a
        # plateau the tiny KL weight takes thousands of steps to leave.
        with torch.no_grad():
            self.encoder.conv_out.conv.bias[config.latent_channels :].fill_(config.logvar_init)

    # ---- geometry ------------------------------------------------------------------------------
    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.config.channel_mult) - 1)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.config.temporal_downsample)

    def latent_shape(self, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        """``(C_z, t_z, h_z, w_z)`` of a ``(C, t, h, w)`` clip; a ``ValueError`` if it is not encodable."""
        self._check_shape(t, h, w)
        s = self.spatial_compression
        return (self.latent_channels, 1 + (t - 1) // self.temporal_compression, h // s, w // s)

    def num_frames_for(self, latent_frames: int) -> int:
        """Frames decoded from ``latent_frames`` latent frames: ``1 + tc (latent_frames - 1)``."""
        return 1 + self.temporal_compression * (latent_frames - 1)

    def _check_shape(self, t: int, h: int, w: int) -> None:
        tc, s = self.temporal_compression, self.spatial_compression
        if t < 1 or (t - 1) % tc:
            near = 1 + tc * ((t - 1) // tc + 1)
            raise ValueError(
                f"the causal VAE encodes T = 1 + {tc}k frames (1, {1 + tc}, {1 + 2 * tc}, ...), got "
                f"T={t}; pad with CausalVideoVAE.pad_frames (T={t} -> {near}, repeats the last frame) "
                f"and crop after decoding with decode_latents(z, num_frames={t})"
            )
        if h % s or w % s:
            raise ValueError(
                f"height and width must be multiples of the spatial compression {s}, got {h}x{w}"
            )

    def pad_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame of ``(B, C, T, H, W)`` up to the next ``T = 1 + tc k`` (16 -> 17).

        Causality makes this harmless: the latents of the real frames do not see the padding.
        """
        t = video.shape[2]
        extra = self.padded_frames(t) - t
        if extra == 0:
            return video
        return torch.cat([video, video[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)

    def padded_frames(self, t: int) -> int:
        """The frame count :meth:`pad_frames` makes of ``t``: the next ``1 + tc k`` (16 -> 17)."""
        return t + (-(t - 1)) % self.temporal_compression

    # ---- encode / decode -----------------------------------------------------------------------
    def check_video(self, video: torch.Tensor) -> None:
        """A ``ValueError`` unless ``video`` is ``(B, in_channels, 1 + tc k, H, W)`` with ``H, W``
        multiples of the spatial compression."""
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected a video batch (B, {self.config.in_channels}, T, H, W), got {tuple(video.shape)}"
            )
        self._check_shape(*video.shape[2:])

    def encode(
        self,
        video: torch.Tensor,
        *,
        tile_frames: int | None = None,
        tile_size: int | None = None,
    ) -> DiagonalGaussian:
        """Posterior of ``video (B, C, T, H, W)`` in model space ``[-1, 1]``, ``T = 1 + tc k``.

        ``tile_frames`` (latent frames per chunk, default ``config.tile_frames``) encodes causal
        chunks with cached context (equal to the whole clip up to rounding); ``tile_size`` (pixels,
        default ``config.tile_size``) encodes overlapping spatial tiles blended in latent space.
        """
        self.check_video(video)
        tf = tile_frames if tile_frames is not None else self.config.tile_frames
        ts = tile_size if tile_size is not None else self.config.tile_size
        enc = lambda x: causal_chunks(self.encoder, x, tf, self.temporal_compression, 1)
        c = self.config
        s = self.spatial_compression
        moments = spatial_tiles(enc, video, ts, s, True, c.tile_overlap, c.tile_context)
        return DiagonalGaussian(moments)

    def encode_latents(
        self,
        video: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | list[torch.Generator] | None = None,
        **tiling: int | None,
    ) -> torch.Tensor:
        """Scaled latents ``z = (q - shift) * scale`` of a model-space video: the posterior mean, or a
        sample drawn from ``generator`` (one per sample when a list) with ``sample=True``."""
        post = self.encode(video, **tiling)
        z = post.sample(generator) if sample else post.mode()
        return (z - self.config.shift_factor) * self.config.scaling_factor

    def decode(
        self, z: torch.Tensor, *, tile_frames: int | None = None, tile_size: int | None = None
    ) -> torch.Tensor:
        """Decode *unscaled* latents ``(B, C_z, t, h, w)`` to model space (``1 + tc (t - 1)`` frames)."""
        if z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected latents (B, {self.latent_channels}, t, h, w), got {tuple(z.shape)}"
            )
        tf = tile_frames if tile_frames is not None else self.config.tile_frames
        ts = tile_size if tile_size is not None else self.config.tile_size
        lt = None if ts is None else max(1, ts // self.spatial_compression)
        dec = lambda x: causal_chunks(self.decoder, x, tf, 1, 1)
        c = self.config
        s = self.spatial_compression
        return spatial_tiles(dec, z, lt, s, False, c.tile_overlap, -(-c.tile_context // s))

    def decode_latents(
        self,
        z: torch.Tensor,
        num_frames: int | None = None,
        *,
        tile_frames: int | None = None,
        tile_size: int | None = None,
    ) -> torch.Tensor:
        """Model-space video ``[-1, 1]`` from scaled latents; ``num_frames`` crops the decoded
        ``1 + tc (t - 1)`` frames (undoing :meth:`pad_frames`)."""
        x = self.decode(
            z / self.config.scaling_factor + self.config.shift_factor,
            tile_frames=tile_frames,
            tile_size=tile_size,
        )
        if num_frames is not None:
            if num_frames > x.shape[2]:
                raise ValueError(
                    f"num_frames={num_frames} exceeds the {x.shape[2]} frames these latents decode to"
                )
            x = x[:, :, :num_frames]
        return x

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction (posterior mean) of a model-space video."""
        return self.decode(self.encode(video).mode())

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Write ``config.json`` (``{"arch": "vae", "vae": {...}}``) + ``model.safetensors``."""
        cfg = dataclasses.asdict(self.config)
        cfg.update(gan_weight=0.0)  # the export carries no discriminator (training-only)
        write_arch_folder(path, "vae", cfg, self, dtype)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> CausalVideoVAE:
        """Read a folder written by :meth:`save` / ``vidiff export`` (weights loaded as float32)."""
        model = load_arch_folder(path, "vae", "VAE", cls, VAEConfig)
        return model.to(map_location).eval()


def build_vae(model_config: Any) -> CausalVideoVAE:
    """The VAE described by a :class:`~vidiff.config.ModelConfig` (``arch: vae``): ``preset`` names
    a :data:`VAE_PRESETS` entry and ``net`` overrides its fields."""
    return CausalVideoVAE(vae_config(model_config.preset, **dict(model_config.net)))


__all__ = [
    "VAE_PRESETS",
    "CausalVideoVAE",
    "DiagonalGaussian",
    "VAEConfig",
    "build_vae",
    "vae_config",
]
