"""``vidiff vae eval``, ``vidiff vae calibrate`` and ``vidiff vae cache``: the autoencoder's commands.

The latent route (Sora / WALT / Wan) is: train the VAE (``vidiff train configs/vae-tiny.yaml``), export
it (``vidiff export``), measure its latent scale (``vidiff vae calibrate``), check its reconstructions
(``vidiff vae eval``), then train a latent DiT on it (``configs/shapes-dit-tiny.yaml``), optionally from
a latent cache (``vidiff vae cache``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidiff.commands import checks
from vidiff.registry import resolve_model


def vae_eval(model: str, *, num_clips: int = 32, num_frames: int = 17, size: int = 32) -> dict:
    """Reconstruction PSNR / SSIM of an exported VAE on held-out MovingShapes and BouncingBalls clips
    (posterior means; the ``heldout`` split with a seed no run trains on).

    Args:
        model: an exported VAE folder (`vidiff export` of a model.arch: vae run).
        num_clips: clips per dataset.
        num_frames: frames per clip.
        size: frame height and width in pixels.
    """
    from vidiff.eval.reconstruction import heldout_datasets, reconstruction_metrics
    from vidiff.models.vae import CausalVideoVAE

    model = str(resolve_model(model, "MODEL"))  # a folder or a shipped VAE's name
    vae = CausalVideoVAE.load(model)
    results = {}
    for name, ds in heldout_datasets(num_clips, num_frames, size).items():
        m = reconstruction_metrics(vae, ds, num_clips)
        print(f"{name}: PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}  ({num_clips} clips)")
        results[name] = m
    return results


def vae_calibrate(
    model: str, *, data: str = "shapes", num_clips: int = 64, num_frames: int = 17, size: int = 32
) -> tuple[float, float]:
    """Measure the latent scale and shift of an exported VAE on training clips of ``--data`` (so that
    diffusion sees unit-variance latents) and store them in its ``config.json``.

    Args:
        model: an exported VAE folder; its config.json receives the scale and shift.
        data: the dataset the latent diffusion model will train on (shapes, balls, digits).
        num_clips: clips to measure on.
        num_frames: frames per clip.
        size: frame height and width in pixels.
    """
    from vidiff.data import build_dataset
    from vidiff.eval.reconstruction import measure_scaling
    from vidiff.models.vae import CausalVideoVAE

    model = str(resolve_model(model, "MODEL"))
    vae = CausalVideoVAE.load(model)
    ds = build_dataset(data, num_items=num_clips, num_frames=num_frames, size=size, seed=0)
    scale, shift = measure_scaling(vae, ds, num_clips)
    path = Path(model) / "config.json"
    meta = json.loads(path.read_text())
    meta["vae"].update(scaling_factor=scale, shift_factor=shift)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)
    print(f"vidiff: scaling_factor={scale:.6g} shift_factor={shift:.6g} -> {path}")
    return scale, shift


def vae_cache(
    model: str,
    out: str,
    *,
    data: str = "shapes",
    root: str | None = None,
    num_items: int = 1024,
    num_frames: int = 16,
    size: int = 32,
    seed: int = 0,
    shard_size: int = 256,
) -> Path:
    """Encode a dataset's clips once with an exported VAE into safetensors shards under OUT
    (``vidiff.data.latents.LatentDataset`` reads them).

    Args:
        model: an exported VAE folder.
        out: the folder for the latent shards.
        data: the dataset to encode (shapes, balls, digits, folder, images).
        root: the folder of a folder or images dataset.
        num_items: clips to encode (at most the dataset's size).
        num_frames: frames per clip.
        size: frame height and width in pixels.
        seed: the dataset's seed.
        shard_size: clips per safetensors shard.
    """
    from vidiff.data import build_dataset
    from vidiff.data.latents import cache_latents
    from vidiff.models.vae import CausalVideoVAE

    checks.folder("OUT", out)
    vae = CausalVideoVAE.load(resolve_model(model, "MODEL"))
    kw: dict[str, Any] = {"num_frames": num_frames, "size": size, "seed": seed}
    if root is not None:
        kw["root"] = root
    else:
        kw["num_items"] = num_items
    ds = build_dataset(data, **kw)
    path = cache_latents(vae, ds, out, num_items=num_items, shard_size=shard_size)
    print(f"vidiff: cached {min(num_items, len(ds))} latents -> {path}")
    return path
