"""A text-conditioned video GAN: MoCoGAN's generator with image and video discriminators.

MoCoGAN (Tulyakov et al., 2018, "MoCoGAN: Decomposing motion and content for video generation")
splits a clip's latent into one **content code** ``z_c`` shared by every frame and a **motion code**
``z_m(t)`` per frame, produced by a recurrent net (a GRU) driven by fresh noise each frame. Frame
``t`` is an image generator's output for ``[z_c, z_m(t), text]``, so content stays fixed while the
motion trajectory varies. Two critics judge it: an **image discriminator** on single frames (sharp,
plausible frames) and a **video discriminator** on the whole clip (3D convolutions: plausible
motion).

The stabilisers a practitioner uses today: **spectral normalisation** of every discriminator layer
(Miyato et al., 2018), the **hinge loss** (Lim & Ye, 2017; SAGAN, BigGAN) and the **R1 penalty** on
real data (Mescheder et al., 2018) -- the last two live in the objective
(:mod:`vidiff.train.objectives.gan`). Text enters every network through a **bag of words** of the
caption (its own embedding per network, so the players share no weights) and the discriminators use
the **projection** form ``psi(phi(x)) + <embed(text), phi(x)>`` (Miyato & Koyama, 2018).

Tensors follow vidiff's layout: videos are ``(B, C, T, H, W)`` in model space ``[-1, 1]``; captions
arrive as word ids ``(B, L)`` with a mask (:class:`vidiff.models.text.WordTokenizer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from vidiff.config import preset_config


@dataclass
class GANConfig:
    """Hyper-parameters of :class:`VideoGenerator` and the two discriminators (presets in
    :data:`GAN_PRESETS`). ``vocab_size`` counts the tokenizer's ids (pad and BOS included)."""

    vocab_size: int = 0  # set from the text vocabulary when the model is built
    channels: int = 3
    size: int = 32  # frame side, a power of two >= 8
    num_frames: int = 16
    content_dim: int = 64  # z_c, one per clip
    motion_dim: int = 16  # z_m(t), one per frame (the GRU's output)
    noise_dim: int = 16  # the GRU's input noise per frame
    text_dim: int = 32  # bag-of-words width
    gen_channels: int = 64  # channels at 4x4, halved by each upsampling (floor 16)
    disc_channels: int = 32  # first discriminator layer, doubled by each downsampling
    # Training (read by vidiff.train.objectives.gan.GANObjective; kept here so the run's config
    # describes it).
    r1_gamma: float = 0.1  # R1 weight: gamma / 2 * |grad_x D(x_real)|^2 (0 disables it)
    disc_lr_mult: float = 1.0
    image_weight: float = 1.0  # share of the image discriminator in both losses
    # Matching-aware critics (Reed et al., 2016, GAN-INT-CLS): a real clip under another clip's
    # caption is scored as fake, with this weight (0: off), so the critics must read the caption.
    mismatch_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"GAN size must be a power of two >= 8, got {self.size}")
        if self.num_frames < 2:
            raise ValueError(f"GAN num_frames must be >= 2, got {self.num_frames}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma}")
        if self.mismatch_weight < 0:
            raise ValueError(f"mismatch_weight must be >= 0, got {self.mismatch_weight}")


GAN_PRESETS: dict[str, GANConfig] = {
    # CPU: 0.4M generator and 0.9M discriminator parameters at 32x32x16.
    "gan-tiny": GANConfig(gen_channels=128),
    # tests: a few thousand parameters.
    "gan-test": GANConfig(
        content_dim=8, motion_dim=4, noise_dim=4, text_dim=8, gen_channels=16, disc_channels=8
    ),
}


def gan_config(preset: str | None, **overrides: Any) -> GANConfig:
    """A preset with ``overrides`` applied; ``preset=None``: ``overrides`` is the complete config."""
    return preset_config(GANConfig, GAN_PRESETS, preset, "GAN", **overrides)


class BagOfWords(nn.Module):
    """Masked mean of word embeddings: a caption ``(B, L)`` ids + mask -> ``(B, dim)``. MovingShapes
    captions name each attribute by one word, so word order carries little."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        if vocab_size < 3:
            raise ValueError(f"the GAN needs a text vocabulary, got vocab_size={vocab_size}")
        self.embed = nn.Embedding(vocab_size, dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(self.embed.weight.dtype)[..., None]  # (B, L, 1)
        return (self.embed(ids) * m).sum(1) / m.sum(1).clamp_min(1.0)


class VideoGenerator(nn.Module):
    """MoCoGAN's generator: ``(text ids, mask, z_c (B, Dc), noise (B, T, Dn)) -> (B, C, T, H, W)``
    in ``[-1, 1]``. A GRU turns the per-frame noise into motion codes; a per-frame 2D upsampling
    decoder renders ``[z_c, z_m(t), text]``."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        self.text = BagOfWords(c.vocab_size, c.text_dim)
        self.h0 = nn.Linear(c.content_dim + c.text_dim, c.motion_dim)  # motion starts from content
        self.gru = nn.GRUCell(c.noise_dim, c.motion_dim)
        frame_dim = c.content_dim + c.motion_dim + c.text_dim
        self.fc = nn.Linear(frame_dim, c.gen_channels * 16)
        layers: list[nn.Module] = []
        ch, side = c.gen_channels, 4
        while side < c.size:
            out = max(16, ch // 2)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch, out, 3, padding=1),
                nn.GroupNorm(min(8, out), out),
                nn.LeakyReLU(0.2),
            ]
            ch, side = out, side * 2
        layers += [nn.Conv2d(ch, c.channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, content: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        c = self.config
        text = self.text(ids, mask)  # (B, Dt)
        h = torch.tanh(self.h0(torch.cat([content, text], dim=1)))
        motion = []
        for t in range(noise.shape[1]):
            h = self.gru(noise[:, t], h)
            motion.append(h)
        motion = torch.stack(motion, dim=1)  # (B, T, Dm)
        t_frames = motion.shape[1]
        fixed = torch.cat([content, text], dim=1)[:, None].expand(-1, t_frames, -1)
        codes = rearrange(torch.cat([fixed, motion], dim=2), "b t d -> (b t) d")
        x = self.fc(codes).view(-1, c.gen_channels, 4, 4)
        frames = self.decoder(F.leaky_relu(x, 0.2))  # ((B T), C, H, W)
        return rearrange(frames, "(b t) c h w -> b c t h w", t=t_frames)

    def draw_latents(
        self, generators: list[torch.Generator], num_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``i``'s content code and motion noise, both from ``generators[i]`` alone (a clip
        depends on its seed, never on its batch)."""
        c = self.config
        zc = torch.stack([torch.randn(c.content_dim, generator=g) for g in generators])
        zn = torch.stack([torch.randn(num_frames, c.noise_dim, generator=g) for g in generators])
        dev = self.fc.weight.device
        return zc.to(dev), zn.to(dev)


def _sn_conv(conv: type, cin: int, cout: int, kernel: int, stride: Any, padding: Any) -> nn.Module:
    return spectral_norm(conv(cin, cout, kernel, stride=stride, padding=padding))


class ImageDiscriminator(nn.Module):
    """Per-frame critic with spectral norm and text projection: ``(x (B, C, T, H, W), text ids,
    mask) -> (B, T)`` logits, one per frame."""

    def __init__(self, config: GANConfig):
        super().__init__()
        c = config
        self.text = BagOfWords(c.vocab_size, c.text_dim)
        layers: list[nn.Module] = []
        ch, cin, side = c.disc_channels, c.channels, c.size
        while side > 4:
            layers += [_sn_conv(nn.Conv2d, cin, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin, ch, side = ch, ch * 2, side // 2
        self.features = nn.Sequential(*layers)
        self.width = cin * 16
        self.out = spectral_norm(nn.Linear(self.width, 1))
        self.project = spectral_norm(nn.Linear(c.text_dim, self.width))

    def forward(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[2]
        phi = self.features(rearrange(x, "b c t h w -> (b t) c h w")).flatten(1)  # ((B T), F)
        y = self.project(self.text(ids, mask)).repeat_interleave(t, dim=0)  # ((B T), F)
        logits = self.out(phi).squeeze(1) + (phi * y).sum(1)
        return logits.view(b, t)


class VideoDiscriminator(nn.Module):
    """Clip critic of 3D convolutions (strided in space and time) with spectral norm and text
    projection: ``(x (B, C, T, H, W), text ids, mask) -> (B,)``."""

    def __init__(self, config: GANConfig):
        super().__init__()
        c = config
        self.text = BagOfWords(c.vocab_size, c.text_dim)
        layers: list[nn.Module] = []
        ch, cin, side, t = c.disc_channels, c.channels, c.size, c.num_frames
        while side > 4:
            st = 2 if t >= 4 else 1  # halve time too while at least 4 frames are left
            conv = _sn_conv(nn.Conv3d, cin, ch, (4 if st == 2 else 3, 4, 4), (st, 2, 2), 1)
            layers += [conv, nn.LeakyReLU(0.2)]
            cin, ch, side, t = ch, ch * 2, side // 2, t // st
        self.features = nn.Sequential(*layers)
        self.width = cin
        self.out = spectral_norm(nn.Linear(self.width, 1))
        self.project = spectral_norm(nn.Linear(c.text_dim, self.width))

    def forward(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        phi = self.features(x).sum(dim=(2, 3, 4))  # (B, F): sum pooling over space-time
        return self.out(phi).squeeze(1) + (phi * self.project(self.text(ids, mask))).sum(1)


__all__ = [
    "GAN_PRESETS",
    "GANConfig",
    "ImageDiscriminator",
    "VideoDiscriminator",
    "VideoGenerator",
    "gan_config",
]
