"""``vidiff vae eval``, ``vidiff vae calibrate`` and ``vidiff vae cache``: the autoencoder's commands.

The latent route (Sora / WALT / Wan) is: train the VAE (``vidiff train configs/vae-shapes.yaml``), export
it (``vidiff export``), measure its latent scale (``vidiff vae calibrate``), check its reconstructions
(``vidiff vae eval``), then train a latent DiT on it (``configs/shapes-dit-tiny.yaml``), optionally from
a latent cache (``vidiff vae cache``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vidiff.commands import checks
from vidiff.files import EVAL_FILE
from vidiff.registry import resolve_model


def vae_eval(
    model: str,
    *,
    num_clips: int = 32,
    num_frames: int = 17,
    size: int = 32,
    seams: bool = False,
    out: str | None = None,
    record: bool = False,
) -> dict:
    """Reconstruction PSNR / SSIM / colour error of an exported VAE on held-out MovingShapes,
    BouncingBalls and photo clips (posterior means; the ``heldout`` split with a seed no run trains
    on; the photos are CameraMoves' held-out photographs, the textured test).

    Args:
        model: an exported VAE folder (`vidiff export` of a model.arch: vae run) or a shipped name.
        num_clips: clips per dataset.
        num_frames: frames per clip.
        size: frame height and width in pixels.
        seams: also measure memory-bounded encode / decode on 4 held-out shapes clips of 4 times
            the side and 33 frames: causal time chunks of 2 latent frames and spatial tiles of
            `size` pixels against the whole clip, and the PSNR at their borders against elsewhere
            (4 times the side, so that a tile and its context halo do not cover the frame).
        out: write the figures to this JSON file.
        record: also write them into the model folder as eval.json (`vidiff models` lists them).
    """
    from vidiff.data import build_dataset
    from vidiff.eval.reconstruction import heldout_datasets, reconstruction_metrics, tiling_metrics
    from vidiff.eval.report import write_json
    from vidiff.models.vae import CausalVideoVAE

    if out is not None:
        checks.folder("--out: its folder", Path(out).parent)
    folder = resolve_model(model, "MODEL")  # a folder or a shipped VAE's name
    vae = CausalVideoVAE.load(folder)
    results: dict[str, Any] = {}
    for name, ds in heldout_datasets(num_clips, num_frames, size).items():
        m = reconstruction_metrics(vae, ds, num_clips)
        print(
            f"{name}: PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}  colour error "
            f"{m['colour_error']:.2f} / 255  ({num_clips} clips)"
        )
        results[name] = m
    if seams:
        kw = dict(num_items=4, num_frames=33, size=4 * size, seed=1234, split="heldout")
        t = tiling_metrics(vae, build_dataset("shapes", **kw), tile_frames=2, tile_size=size)
        print(
            f"seams (shapes, 33 x {4 * size} x {4 * size}): PSNR whole {t['psnr_whole']:.2f}, "
            f"time chunks {t['psnr_chunked']:.2f} (max diff {t['max_diff_chunked']:.3f} / 255; "
            f"chunk-start frames {t['psnr_chunk_border_frames']:.2f} vs "
            f"{t['psnr_chunk_other_frames']:.2f}), {size}-px tiles {t['psnr_tiled']:.2f} (max diff "
            f"{t['max_diff_tiled']:.2f} / 255; seams {t['psnr_tile_seams']:.2f} vs elsewhere "
            f"{t['psnr_tile_elsewhere']:.2f}) dB"
        )
        results["seams"] = t
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_json(results, Path(out))
    if record:  # the command names the model as given (a shipped name stays a name)
        figures = _figures(results, model, num_clips, num_frames, size, seams)
        print(f"recorded the figures in {write_json(figures, folder / EVAL_FILE)}")
    return results


def _figures(results: dict, model: str, n: int, t: int, s: int, seams: bool) -> dict:
    """``vidiff vae eval``'s figures as a model folder's ``eval.json`` (one row; the keys of
    :data:`vidiff.registry.FIGURES`)."""
    row: dict[str, Any] = {"setting": f"posterior mean, {n} held-out {t}x{s}x{s} clips per set"}
    for name, m in results.items():
        if name != "seams":
            suffix = "" if name == "shapes" else f"_{name}"
            row.update({f"{k}{suffix}": v for k, v in m.items()})
    if "seams" in results:
        row.update({f"seams_{k}": v for k, v in results["seams"].items()})
    command = f"vidiff vae eval {model} --num-clips {n} --num-frames {t} --size {s}"
    return {
        "command": command + (" --seams" if seams else ""),
        "when": time.strftime("%Y-%m-%d"),
        "rows": [row],
    }


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
