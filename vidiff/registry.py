"""The models vidiff ships, and how a name finds one.

A shipped model is a folder of ``vidiff/assets/`` holding ``config.json`` (an exported
:class:`~vidiff.pipeline.VideoPipeline`, or an exported :class:`~vidiff.models.vae.CausalVideoVAE`,
whose ``config.json`` says ``"arch": "vae"``); its name is the folder's name. Everywhere a model
folder is accepted (``--model``, a teacher, an export source, a config's ``model.vae``) a shipped name
works too: :func:`resolve_model` turns either into a folder. Some models are not in a clean clone
but are made by a recipe and installed here by name (:data:`RECIPES`, e.g. ``make vqvae``); asking
for one before it is made names the recipe.

:func:`describe_model` is the one description of a model folder -- kind, frames x H x W, sampling
steps, parameters, file size and its recorded ``eval.json`` figures -- that ``vidiff models`` lists
and ``vidiff serve``'s catalogue (:mod:`vidiff.app.catalog`) shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidiff.errors import UserError
from vidiff.files import CONFIG_NAME, EVAL_FILE, WEIGHTS_NAME, model_folder, read_json

ASSETS = Path(__file__).resolve().parent / "assets"

# Other names of shipped models.
ALIASES = {"default": "default-model"}

# Models a recipe makes and installs under ASSETS by their name (not in a clean clone): name -> the
# commands that make it. A config may name one (``model.init: shapes-image-video``) before it exists.
RECIPES = {
    "shapes-image-video": (
        "make image-model (= vidiff train configs/shapes-image-unet-tiny.yaml; vidiff export "
        "runs/shapes-image -o runs/shapes-image/model; vidiff inflate runs/shapes-image/model "
        "-o vidiff/assets/shapes-image-video --num-frames 16)"
    ),
    "shapes-vqvae": (
        "make vqvae (= vidiff train configs/shapes-vqvae.yaml; vidiff export runs/shapes-vqvae -o "
        "vidiff/assets/shapes-vqvae)"
    ),
}


def shipped_models(assets: Path = ASSETS) -> dict[str, Path]:
    """Name -> folder of every shipped model (folders of ``assets`` with a ``config.json``), sorted."""
    if not assets.is_dir():
        return {}
    return {p.name: p for p in sorted(assets.iterdir()) if (p / CONFIG_NAME).is_file()}


def resolve_model(name_or_path: str | Path, option: str = "--model", assets: Path = ASSETS) -> Path:
    """The model folder ``name_or_path`` means: an existing folder wins, else a shipped model's name
    (or alias); otherwise a one-line :class:`UserError` naming ``option``, the recipe that makes the
    model when there is one, and the shipped names."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    shipped = shipped_models(assets)
    name = ALIASES.get(str(name_or_path), str(name_or_path))
    if name in shipped:
        return shipped[name]
    names = ", ".join([*shipped, *(f"{a} (= {n})" for a, n in ALIASES.items() if n in shipped)])
    if name in RECIPES:
        raise UserError(
            f"{option} {name_or_path}: the model {name!r} is not installed in {assets}; "
            f"make it with: {RECIPES[name]}"
        )
    raise UserError(
        f"{option} {name_or_path}: no such model folder, and no shipped model of that name "
        f"(shipped: {names or 'none'}; `vidiff models` lists them)"
    )


def model_reference(folder: str | Path, assets: Path = ASSETS) -> str:
    """How a saved file names a model folder (an adapter's base, an export's ``model.init``): a
    shipped model by its name, else the folder's absolute path (loadable from any directory)."""
    folder = Path(folder).resolve()
    return folder.name if folder.parent == assets.resolve() else str(folder)


def resolve_config_models(config: Any, assets: Path = ASSETS) -> Any:
    """A run config with each model it references by name (``model.vae``, ``model.init``) replaced by
    its folder, so that a recipe trains from a clean clone or fails at once naming what is missing;
    in place."""
    for key in ("vae", "init"):
        if getattr(config.model, key, None) is not None:
            folder = resolve_model(getattr(config.model, key), f"model.{key}", assets)
            setattr(config.model, key, str(folder))
    return config


# Autoencoder folders (``{"arch": ..., arch: {...}}``): they encode and decode, they generate nothing.
AUTOENCODERS = {"vae": "video VAE", "vqvae": "VQ-VAE"}


def is_autoencoder(config: dict) -> bool:
    """Whether a ``config.json`` is an autoencoder's (a video VAE or a VQ-VAE), not a generator's."""
    return config.get("arch") in AUTOENCODERS


def model_kind(config: dict) -> str:
    """What a model is, from its ``config.json``: ``pixel U-Net``, ``latent DiT``, ``video VAE``,
    ``VQ-VAE``..."""
    if is_autoencoder(config):
        return AUTOENCODERS[config["arch"]]
    model = config.get("model") or {}
    arch = model.get("arch")
    latent = model.get("vae") is not None or model.get("vae_config") is not None
    space = "latent" if latent else "pixel"
    name = {"unet3d": "U-Net", "dit": "DiT"}.get(arch, str(arch))
    return f"{space} {name}"


# (key in an eval.json row, name, format): the in-distribution and held-out figures of
# `vidiff eval --record` that a model's page shows (`vidiff demo`, the serve catalogue).
FIGURES = [
    ("num_videos", "videos per split", "{:d}"),
    ("adherence", "prompt followed (in-distribution)", "{:.1%}"),
    ("adherence_heldout", "prompt followed (held-out colour-shape pairs)", "{:.1%}"),
    ("flicker_median", "flicker (median)", "{:.4f}"),
    ("jitter_median", "jitter, pixels (median)", "{:.2f}"),
    ("fd", "Fréchet distance (in-distribution)", "{:.2f}"),
    ("sec_per_video", "seconds per video", "{:.2f}"),
    # control models (benchmarks/control_probe.py --record)
    ("endpoints_within_tol", "trajectory: both endpoints within 3 px", "{:.1%}"),
    ("mean_px", "trajectory error, pixels (mean)", "{:.2f}"),
    ("colour_acc", "colour right", "{:.1%}"),
    ("shape_acc", "shape right (geometric probe)", "{:.1%}"),
    ("move_acc", "camera move read as requested", "{:.1%}"),
    ("speed_error", "camera speed error (px or % per frame)", "{:.2f}"),
    # video VAEs (vidiff vae eval --record)
    ("psnr", "reconstruction PSNR, dB (held-out shapes)", "{:.2f}"),
    ("colour_error", "colour error, 8-bit levels (held-out shapes)", "{:.2f}"),
    ("psnr_balls", "reconstruction PSNR, dB (held-out balls)", "{:.2f}"),
    ("psnr_photos", "reconstruction PSNR, dB (held-out photos)", "{:.2f}"),
    ("colour_error_photos", "colour error, 8-bit levels (held-out photos)", "{:.2f}"),
]


def recorded_figures(rows: list[dict]) -> list[tuple[str, str, str]]:
    """The entries of :data:`FIGURES` that at least one of ``rows`` holds."""
    return [f for f in FIGURES if any(r.get(f[0]) is not None for r in rows)]


@dataclass(frozen=True)
class ModelEntry:
    """A model folder as ``vidiff models`` lists it."""

    name: str
    path: Path
    kind: str
    frames: int | None  # None: any length (a VAE encodes 1 + tc k frames)
    height: int | None
    width: int | None
    steps: int | None  # default sampling steps; None for a VAE
    sampler: str | None
    parameters: int
    bytes: int  # size of the weight file on disk
    figures: dict | None = field(default=None)  # eval.json, when recorded
    temporal_compression: int | None = None  # a VAE's tc (it encodes 1 + tc k frames)

    @property
    def headline(self) -> dict[str, float]:
        """The first recorded setting's main figures: ``adherence``, ``adherence_heldout``, ``fd``,
        ``sec_per_video``, a control model's ``endpoints_within_tol`` / ``move_acc`` and a VAE's
        ``psnr`` / ``colour_error`` / ``psnr_photos`` (those present)."""
        rows = (self.figures or {}).get("rows") or []
        keys = ("adherence", "adherence_heldout", "fd", "sec_per_video", "endpoints_within_tol",
                "move_acc", "psnr", "colour_error", "psnr_photos")  # fmt: skip
        return {k: rows[0][k] for k in keys if rows and rows[0].get(k) is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "steps": self.steps,
            "sampler": self.sampler,
            "parameters": self.parameters,
            "bytes": self.bytes,
            "figures": self.figures,
            "temporal_compression": self.temporal_compression,
        }


def parameter_count(weights: Path, prefix: str = "") -> int:
    """Number of values in a safetensors file (of the tensors whose names start with ``prefix``,
    e.g. ``denoiser.`` for a pipeline's network alone), read from its header only."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), "pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
            if not key.startswith(prefix):
                continue
            count = 1
            for n in f.get_slice(key).get_shape():
                count *= n
            total += count
    return total


def read_figures(path: Path) -> dict | None:
    """A model folder's recorded ``eval.json`` (None without one)."""
    return json.loads((path / EVAL_FILE).read_text()) if (path / EVAL_FILE).is_file() else None


def describe_model(path: str | Path, name: str | None = None) -> ModelEntry:
    """The :class:`ModelEntry` of an exported model folder; ``FileNotFoundError`` naming the folder
    when it is not one."""
    path = model_folder(path)
    config = read_json(path / CONFIG_NAME)
    tc = None
    if is_autoencoder(config):
        frames = height = width = steps = sampler = None
        downsample = (config.get(config["arch"]) or {}).get("temporal_downsample", ())
        tc = 2 ** sum(bool(t) for t in downsample)
    else:
        video, diffusion = config.get("video") or {}, config.get("diffusion") or {}
        frames, height = video.get("num_frames"), video.get("size")
        width, steps, sampler = height, diffusion.get("steps"), diffusion.get("sampler")
    return ModelEntry(
        name=name or path.name,
        path=path.resolve(),
        kind=model_kind(config),
        frames=frames,
        height=height,
        width=width,
        steps=steps,
        sampler=sampler,
        parameters=parameter_count(path / WEIGHTS_NAME),
        bytes=(path / WEIGHTS_NAME).stat().st_size,
        figures=read_figures(path),
        temporal_compression=tc,
    )


def list_models(assets: Path = ASSETS) -> list[ModelEntry]:
    """Every shipped model, described."""
    return [describe_model(p, n) for n, p in shipped_models(assets).items()]


__all__ = [
    "ALIASES",
    "FIGURES",
    "ASSETS",
    "AUTOENCODERS",
    "RECIPES",
    "ModelEntry",
    "describe_model",
    "list_models",
    "is_autoencoder",
    "model_kind",
    "model_reference",
    "parameter_count",
    "read_figures",
    "recorded_figures",
    "resolve_config_models",
    "resolve_model",
    "shipped_models",
]
