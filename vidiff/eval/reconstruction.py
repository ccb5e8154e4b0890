"""Reconstruction quality and latent statistics of an autoencoder: pure metrics and one runner.

* :func:`psnr`, :func:`ssim` (and the per-pixel :func:`ssim_map`, which the VAE's structural loss
  also uses) are pure functions of ``[0, 1]`` videos;
* :func:`colour_error` is the colour shift of a reconstruction, in 8-bit levels;
* :func:`reconstruction_metrics` encodes and decodes clips of a dataset and averages them;
* :func:`tiling_metrics` measures what causal time chunks and spatial tiles change (seams);
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

from vidiff.nn.tiling import tile_origins


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


def colour_error(x: torch.Tensor, y: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Colour shift of ``x`` against the real ``y`` (``[0, 1]`` videos ``(B, C, T, H, W)``), per
    sample ``(B,)``, in 8-bit levels: the mean over frames and channels of ``|mean colour of x -
    mean colour of y|`` over the pixels where ``y`` is not black (max channel > ``threshold``). On
    the synthetic sets that is the objects' colour (their black background excluded); on photos,
    nearly every pixel. A frame with no such pixel counts 0."""
    mask = (y.amax(dim=1, keepdim=True) > threshold).to(y.dtype)  # (B, 1, T, H, W)
    n = mask.sum(dim=(3, 4)).clamp_min(1.0)
    mx, my = (x * mask).sum(dim=(3, 4)) / n, (y * mask).sum(dim=(3, 4)) / n  # (B, C, T)
    return 255.0 * (mx - my).abs().mean(dim=(1, 2))


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
    """Mean PSNR / SSIM / :func:`colour_error` of posterior-mean reconstructions of ``num_clips``
    clips of ``dataset`` (frame counts that are not ``1 + tc k`` are padded, then cropped back)."""
    vae.eval()
    p, s, c = [], [], []
    for v in _clips(dataset, num_clips, batch_size):
        rec = _reconstruct(vae, v)
        p.append(psnr(rec, v))
        s.append(ssim(rec, v))
        c.append(colour_error(rec, v))
    if not p:
        raise ValueError("reconstruction_metrics needs a non-empty dataset")
    mean = lambda xs: float(torch.cat(xs).mean())
    return {"psnr": mean(p), "ssim": mean(s), "colour_error": mean(c)}


def _reconstruct(vae: Any, v: torch.Tensor, **tiling: int | None) -> torch.Tensor:
    """``[0, 1]`` reconstruction of ``[0, 1]`` clips (posterior means, padded and cropped back)."""
    z = vae.encode_latents(vae.pad_frames(v * 2 - 1), **tiling)
    return (vae.decode_latents(z, num_frames=v.shape[2], **tiling).clamp(-1, 1) + 1) / 2


@torch.no_grad()
def tiling_metrics(
    vae: Any, dataset: Any, *, tile_frames: int, tile_size: int, num_clips: int = 4
) -> dict[str, float]:
    """What memory-bounded encode / decode changes, on clips of ``dataset`` (larger and longer than
    training's, e.g. 128 x 128 x 33): PSNR against the real clips of the whole-clip, time-chunked
    (``tile_frames`` latent frames per chunk) and spatially tiled (``tile_size`` pixels) round
    trips, the largest difference of each from the whole-clip one over all clips (8-bit levels),
    and the PSNR at the seams (the frames that start a chunk; the pixel rows and columns within 2 px
    of a tile border) against the PSNR elsewhere -- equal when there is no seam."""
    vae.eval()
    out: dict[str, list[torch.Tensor]] = {}
    add = lambda k, v: out.setdefault(k, []).append(v.reshape(-1))
    tc, s = vae.temporal_compression, vae.spatial_compression
    for v in _clips(dataset, num_clips, 2):
        whole = _reconstruct(vae, v)
        chunked = _reconstruct(vae, v, tile_frames=tile_frames)
        tiled = _reconstruct(vae, v, tile_size=tile_size)
        add("psnr_whole", psnr(whole, v))
        add("psnr_chunked", psnr(chunked, v))
        add("psnr_tiled", psnr(tiled, v))
        add("max_diff_chunked", 255 * (chunked - whole).abs().amax())
        add("max_diff_tiled", 255 * (tiled - whole).abs().amax())
        # chunks (vidiff.nn.tiling.causal_chunks): frame 0 alone, then tc * tile_frames frames
        t = torch.zeros(v.shape[2], dtype=torch.bool)
        t[1 :: tc * tile_frames] = True
        add("psnr_chunk_border_frames", psnr(chunked[:, :, t], v[:, :, t]))
        add("psnr_chunk_other_frames", psnr(chunked[:, :, ~t], v[:, :, ~t]))
        band = _seam_band(v.shape[-2:], tile_size, s, vae.config.tile_overlap)
        add("psnr_tile_seams", _masked_psnr(tiled, v, band))
        add("psnr_tile_elsewhere", _masked_psnr(tiled, v, ~band))
    reduce = lambda k, x: x.max() if k.startswith("max_") else x.mean()
    return {k: float(reduce(k, torch.cat(x))) for k, x in out.items()}


def _seam_band(hw: tuple[int, int], tile: int, s: int, overlap: float) -> torch.Tensor:
    """Pixels within 2 px of a spatial tile's border, for the tiles
    :func:`vidiff.nn.tiling.spatial_tiles` cuts (:func:`~vidiff.nn.tiling.tile_origins`)."""
    band = torch.zeros(hw, dtype=torch.bool)
    for axis, n in enumerate(hw):
        origins = tile_origins(n, tile, s, overlap)
        for edge in {e for o in origins for e in (o, o + tile) if 0 < e < n}:
            idx = slice(max(0, edge - 2), edge + 2)
            band[(idx, slice(None)) if axis == 0 else (slice(None), idx)] = True
    return band


def _masked_psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mse = (x - y).square()[..., mask].flatten(1).mean(dim=1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def heldout_datasets(
    num_clips: int, num_frames: int = 17, size: int = 32, seed: int = 1234
) -> dict[str, Any]:
    """Held-out MovingShapes, BouncingBalls and photo clips (``split='heldout'``, a seed no run
    trains on): the photos are CameraMoves' held-out photographs, the textured test."""
    from vidiff.data import build_dataset

    kw = dict(num_items=num_clips, num_frames=num_frames, size=size, seed=seed, split="heldout")
    names = {"shapes": "shapes", "balls": "balls", "photos": "camera"}
    return {name: build_dataset(data, **kw) for name, data in names.items()}
