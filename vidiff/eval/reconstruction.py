"""Reconstruction quality and latent statistics of an autoencoder: pure metrics and one runner.

* :func:`psnr`, :func:`ssim` (and the per-pixel :func:`ssim_map`, which the VAE's structural loss
  also uses) are pure functions of ``[0, 1]`` videos;
* :func:`reconstruction_metrics` encodes and decodes clips of a dataset and averages them;
* :func:`measure_scaling` measures the latent scale and shift that make diffusion see unit-variance
  latents (the SD ``0.18215`` recipe plus the SD3 / Flux shift);
* :func:`heldout_datasets` are the clips ``vidiff vae eval`` measures on (a split and seed no run
  trains on).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange


def _gaussian_window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) of image batches ``(N, C, H, W)`` with a 7x7 Gaussian window
    (sigma 1.5, reflect padding, so small 32x32 frames keep their borders)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    w = _gaussian_window(min(7, x.shape[-1], x.shape[-2]) // 2 * 2 + 1).to(x)
    ch = x.shape[1]
    kx = w.view(1, 1, 1, -1).expand(ch, 1, 1, -1)
    ky = w.view(1, 1, -1, 1).expand(ch, 1, -1, 1)
    p = w.numel() // 2

    def blur(a: torch.Tensor) -> torch.Tensor:
        a = F.pad(a, (p, p, p, p), mode="reflect")
        return F.conv2d(F.conv2d(a, kx, groups=ch), ky, groups=ch)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of ``[0, 1]`` videos ``(B, C, T, H, W)``, per sample ``(B,)``."""
    mse = (x - y).square().flatten(1).mean(dim=1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean per-frame SSIM (Wang et al. 2004, 7x7 Gaussian window) of ``[0, 1]`` videos, ``(B,)``."""
    b = x.shape[0]
    m = ssim_map(
        rearrange(x, "b c t h w -> (b t) c h w"), rearrange(y, "b c t h w -> (b t) c h w"), 1.0
    )
    return m.mean(dim=(1, 2, 3)).view(b, -1).mean(dim=1)


def _clips(dataset: Any, n: int, batch_size: int):
    for start in range(0, min(n, len(dataset)), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n, len(dataset)))]
        yield torch.stack([it["video"] for it in items])


@torch.no_grad()
def measure_scaling(
    vae: Any, dataset: Any, num_clips: int = 64, batch_size: int = 8
) -> tuple[float, float]:
    """``(scaling_factor, shift_factor)`` so that scaled posterior means of a
    :class:`~vidiff.models.vae.CausalVideoVAE` have mean 0 and std 1 over ``num_clips`` clips of
    ``dataset`` ([0, 1] items): ``shift = mean``, ``scale = 1 / std``."""
    vae.eval()
    zs = [
        vae.encode(vae.pad_frames(v * 2 - 1)).mode().flatten()
        for v in _clips(dataset, num_clips, batch_size)
    ]
    if not zs:
        raise ValueError("measure_scaling needs a non-empty dataset")
    z = torch.cat(zs).double()
    return float(1.0 / z.std()), float(z.mean())


@torch.no_grad()
def reconstruction_metrics(
    vae: Any, dataset: Any, num_clips: int = 32, batch_size: int = 8
) -> dict[str, float]:
    """Mean PSNR / SSIM of posterior-mean reconstructions of ``num_clips`` clips of ``dataset``
    (frame counts that are not ``1 + tc k`` are padded, then cropped back)."""
    vae.eval()
    p, s = [], []
    for v in _clips(dataset, num_clips, batch_size):
        z = vae.encode_latents(vae.pad_frames(v * 2 - 1))
        rec = (vae.decode_latents(z, num_frames=v.shape[2]).clamp(-1, 1) + 1) / 2
        p.append(psnr(rec, v))
        s.append(ssim(rec, v))
    if not p:
        raise ValueError("reconstruction_metrics needs a non-empty dataset")
    return {"psnr": float(torch.cat(p).mean()), "ssim": float(torch.cat(s).mean())}


def heldout_datasets(
    num_clips: int, num_frames: int = 17, size: int = 32, seed: int = 1234
) -> dict[str, Any]:
    """Held-out MovingShapes and BouncingBalls clips (``split='heldout'``, a seed no run trains on)."""
    from vidiff.data import build_dataset

    kw = dict(num_items=num_clips, num_frames=num_frames, size=size, seed=seed, split="heldout")
    return {"shapes": build_dataset("shapes", **kw), "balls": build_dataset("balls", **kw)}
