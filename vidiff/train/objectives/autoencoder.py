"""The causal video VAE's training objective: reconstruction, KL, a structural term and a patch-GAN.

``l1 |x - x'| + l2 (x - x')^2 + perceptual (1 - MS-SSIM) + kl_weight KL / pixels [+ gan_weight *
adaptive * (-D(x'))]`` -- the LDM / VQGAN autoencoder objective (Rombach et al. 2022; Esser et al.
2021). The structural term is a weight-free perceptual loss (Zhao et al. 2017, "Loss functions for
image restoration with neural networks": L1 + MS-SSIM beats L2 and needs no pretrained net -- LPIPS
needs downloaded VGG/AlexNet weights). The optional hinge patch-GAN (Isola et al. 2017) has a per-frame
2D or a 3D discriminator, starts at ``disc_start`` and is trained by the trainer as an *extra step*
(:class:`vidiff.train.objectives.ExtraStep`) with its own AdamW. The loss weights are fields of
:class:`~vidiff.models.vae.VAEConfig`.

State-dict keys: ``vae.*`` (the autoencoder, what ``vidiff export`` writes) and ``discriminator.*``;
checkpoints of the single-module VAE (``encoder.*``, ``decoder.*``, ``discriminator.*``) still load.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.eval.reconstruction import ssim_map
from vidiff.models.vae import CausalVideoVAE, DiagonalGaussian, VAEConfig
from vidiff.train.objectives.base import ExtraStep


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix, Isola et al. 2017) per frame (``2d``) or over space-time (``3d``).

    Returns one logit map per sample; used with the hinge loss (Lim & Ye 2017; VQGAN).
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        conv = nn.Conv2d if cfg.disc_type == "2d" else nn.Conv3d
        self.is_2d = cfg.disc_type == "2d"
        layers: list[nn.Module] = []
        c = cfg.in_channels
        for i in range(cfg.disc_layers):
            cout = cfg.disc_channels * 2**i
            layers += [
                conv(c, cout, 4 if self.is_2d else 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
            ]
            c = cout
        layers.append(conv(c, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T, H, W)`` in [-1, 1] -> per-sample mean-able logits ``(B, N)``."""
        b = x.shape[0]
        if self.is_2d:
            x = rearrange(x, "b c t h w -> (b t) c h w")
        return self.net(x).reshape(b, -1)


def ms_ssim_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 2) -> torch.Tensor:
    """``1 - SSIM`` averaged over frames and ``scales`` dyadic scales, per sample ``(B,)``.

    It penalises lost local structure and contrast -- the blur that L1/L2 alone tolerate -- and costs
    a few separable blurs.
    """
    b = x.shape[0]
    x = rearrange(x, "b c t h w -> (b t) c h w")
    y = rearrange(y, "b c t h w -> (b t) c h w")
    total = x.new_zeros(b)
    for s in range(scales):
        if s:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        m = ssim_map(x, y).mean(dim=(1, 2, 3)).view(b, -1).mean(dim=1)
        total = total + (1 - m)
        if min(x.shape[-2:]) < 8:
            return total / (s + 1)
    return total / scales


def _generators(seeds: list[int] | None) -> list[torch.Generator] | None:
    return None if seeds is None else [torch.Generator().manual_seed(int(s)) for s in seeds]


class VAEObjective(nn.Module):
    """Trains a :class:`CausalVideoVAE` (``self.vae``) with the loss above and, with
    ``gan_weight > 0``, a :class:`PatchDiscriminator` (``self.discriminator``) as an extra step."""

    def __init__(self, vae: CausalVideoVAE):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.discriminator = PatchDiscriminator(cfg) if cfg.gan_weight > 0 else None
        self.train_step = 0  # set by the trainer (begin_step); gates the GAN terms
        self.register_load_state_dict_pre_hook(_legacy_keys)

    @property
    def config(self) -> VAEConfig:
        return self.vae.config

    # ---- the trainer's objective protocol ------------------------------------------------------
    def begin_step(self, step: int) -> None:
        """The optimiser step about to run (gates the GAN after ``disc_start``)."""
        self.train_step = int(step)

    def extra_steps(self) -> list[ExtraStep]:
        """The discriminator, stepped after the autoencoder at ``train.lr * disc_lr_mult``."""
        if self.discriminator is None:
            return []
        params = list(self.discriminator.parameters())
        return [ExtraStep("d", params, self.discriminator_loss, self.config.disc_lr_mult)]

    def save(self, directory: str | Path, *, dtype: torch.dtype = torch.float32) -> Path:
        """The slim export: the autoencoder alone (:meth:`CausalVideoVAE.save`)."""
        self.vae.save(directory, dtype=dtype)
        return Path(directory)

    # ---- losses --------------------------------------------------------------------------------
    def _gan_active(self) -> bool:
        return self.discriminator is not None and self.train_step >= self.config.disc_start

    def _prepare(self, video: torch.Tensor) -> torch.Tensor:
        """[0, 1] loop videos -> model space, padded to 1 + tc k frames (a 16-frame set trains on
        17 frames with a repeated last frame)."""
        if video.ndim != 5:
            raise ValueError(f"expected a video batch (B, C, T, H, W), got {tuple(video.shape)}")
        x = self.vae.pad_frames(video * 2 - 1)
        self.vae.check_video(x)
        return x

    def training_loss(
        self, video: torch.Tensor, captions: list[str] | None = None, seeds: list[int] | None = None
    ) -> torch.Tensor:
        """Per-sample loss ``(B,)`` of ``[0, 1]`` videos; sample ``i``'s posterior noise comes from
        ``seeds[i]``. Captions are ignored (the autoencoder is unconditional)."""
        x = self._prepare(video)
        cfg, vae = self.config, self.vae
        post = DiagonalGaussian(vae.encoder(x))  # never tiled in training
        rec = vae.decoder(post.sample(_generators(seeds)))
        diff = rec - x
        per = lambda a: a.mean(dim=(1, 2, 3, 4))
        rec_loss = cfg.l1_weight * per(diff.abs()) + cfg.l2_weight * per(diff.square())
        if cfg.perceptual_weight > 0:
            rec_loss = rec_loss + cfg.perceptual_weight * ms_ssim_loss(rec, x)
        loss = rec_loss + cfg.kl_weight * post.kl() / x[0].numel()
        if self._gan_active():
            # Adversarial term with the discriminator's weights detached: the generator's backward must
            # not leave gradients on the discriminator (it has its own optimiser and loss).
            params = {n: p.detach() for n, p in self.discriminator.named_parameters()}
            logits = torch.func.functional_call(self.discriminator, params, (rec,))
            g_loss = -logits.mean(dim=1)  # hinge generator loss
            weight = cfg.gan_weight
            if cfg.adaptive_gan_weight and torch.is_grad_enabled():
                weight = weight * self._adaptive_weight(rec_loss.mean(), g_loss.mean())
            loss = loss + weight * g_loss
        return loss

    def _adaptive_weight(self, rec: torch.Tensor, gan: torch.Tensor) -> torch.Tensor:
        """VQGAN (Esser et al. 2021, eq. 7): ``|grad rec| / (|grad gan| + 1e-4)`` at the last layer."""
        last = self.vae.decoder.conv_out.conv.weight
        g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
        g_gan = torch.autograd.grad(gan, last, retain_graph=True)[0]
        return (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0.0, 1e4).detach()

    def discriminator_loss(
        self, video: torch.Tensor, captions: list[str] | None = None, seeds: list[int] | None = None
    ) -> torch.Tensor | None:
        """Per-sample hinge loss of the discriminator ``(B,)``, or ``None`` before ``disc_start`` /
        without a discriminator. Reconstructions (posterior samples from ``seeds``) come from the
        current autoencoder without gradients."""
        if not self._gan_active():
            return None
        x = self._prepare(video)
        with torch.no_grad():
            post = DiagonalGaussian(self.vae.encoder(x))
            rec = self.vae.decoder(post.sample(_generators(seeds)))
        real = self.discriminator(x)
        fake = self.discriminator(rec)
        return F.relu(1 - real).mean(dim=1) + F.relu(1 + fake).mean(dim=1)


def _legacy_keys(module, state_dict, prefix, *args) -> None:
    """Checkpoints written when the VAE carried its own loss have ``encoder.*`` / ``decoder.*``."""
    for key in [k for k in state_dict if k.startswith((prefix + "encoder.", prefix + "decoder."))]:
        state_dict[prefix + "vae." + key[len(prefix) :]] = state_dict.pop(key)
