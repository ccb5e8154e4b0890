"""Typed configuration: dataclasses, YAML files and dotted command-line overrides.

A run is described by one :class:`Config` (data, model, diffusion, train). ``load_config`` reads a YAML
file, applies overrides such as ``train.steps=2000`` and builds the dataclasses *strictly*: an unknown
key is an error that names it and lists the valid ones, never silently ignored. The model-facing part
(:class:`PipelineConfig`) travels inside every checkpoint and exported model as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vidiff.files import read_json, read_yaml


@dataclass
class DataConfig:
    """Which clips the model learns from. ``options`` goes to the dataset constructor as keywords."""

    name: str = "shapes"  # shapes | balls | digits | folder | images
    root: str | None = None  # folder datasets
    num_frames: int = 16
    size: int = 32
    fps: int = 8  # playback rate of written samples
    num_items: int = 1_000_000  # length of a synthetic set (items are generated on the fly)
    options: dict[str, Any] = field(default_factory=dict)
    image_root: str | None = None  # joint image-video training: a folder of images (1-frame clips)
    image_ratio: float = 0.0  # fraction of steps that train on image batches (T = 1)
    # Native sizes and lengths (a DiT): clip shapes 'TxHxW' (or {num_frames, height, width}), one
    # drawn per step (vidiff/train/buckets.py); num_frames and size stay the default sample shape.
    buckets: list[Any] = field(default_factory=list)
    bucket_batch: str = (
        "fixed"  # fixed | tokens: scale each bucket's batch to equal pixels x frames
    )
    num_workers: int = 0
    # Latent models: encode every training clip once with the model's VAE (into OUT_DIR/latents,
    # reused on resume) and train on the stored latents (vidiff/train/latent_cache.py).
    cache_latents: bool = False


@dataclass
class ModelConfig:
    """The network and the text encoder. ``net`` and ``text`` override fields of their presets."""

    arch: str = "unet3d"
    # A preset name, or None when ``net`` is the complete network config (exported models store it
    # so, and a later change to a preset never changes a saved model).
    preset: str | None = "unet-tiny"
    net: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "builtin"  # builtin | hf | none
    text: dict[str, Any] = field(default_factory=dict)
    frame_conditioning: bool = True  # known-frame channels: t2v, i2v, continuation, interpolation
    # Latent diffusion: an exported VAE folder or a shipped VAE's name (``vae-shapes``); the network
    # then works on its latents. Exports replace it by ``vae_config`` and carry the VAE's weights.
    vae: str | None = None
    vae_config: dict[str, Any] | None = None
    # Fine-tuning: an exported model folder (e.g. from `vidiff inflate`) whose model config, diffusion
    # settings and weights start the run (vidiff/train/finetune.py); keys of `diffusion` set in the
    # run's config override the model's.
    init: str | None = None


@dataclass
class DiffusionConfig:
    """Noise parameterisation, training loss and sampling defaults."""

    parameterization: str = "v"  # eps | v | edm | flow
    schedule: str = "cosine"  # VP schedules: cosine | linear
    loss: dict[str, Any] = field(
        default_factory=dict
    )  # extra keywords for the loss (e.g. min_snr_gamma)
    p_uncond: float = 0.1  # caption dropout for classifier-free guidance
    p_frame_cond: float = 0.5  # share of training clips that get some known frames
    sampler: str = "dpmpp_2m"
    steps: int = 32
    cfg: float = 3.0
    # Share of the initial noise's variance common to all frames when sampling (0: independent
    # frames; vidiff.sampling.noise.SeededNoise.video). More gives less flicker, less motion.
    noise_correlation: float = 0.0
    sigmas: dict[str, Any] = field(default_factory=dict)  # extra keywords for the discretisation
    # Set by `vidiff distill` on the models it exports (None for a model trained from data; None, not
    # {}, so checkpoints written before this key existed still resume): method, teacher_steps, steps,
    # guidance ("none" | "baked" | "embedded"), cfg, guidance_range, data, history.
    # See vidiff/distill/__init__.py.
    distilled: dict[str, Any] | None = None


@dataclass
class VideoSpec:
    """The clip a model makes."""

    channels: int = 3
    num_frames: int = 16
    size: int = 32
    fps: int = 8


@dataclass
class PipelineConfig:
    """Everything needed to rebuild a trained model: saved as ``config.json`` next to its weights."""

    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    video: VideoSpec = field(default_factory=VideoSpec)


@dataclass
class TrainConfig:
    """The optimisation loop."""

    out_dir: str = "runs/default"
    steps: int = 1000
    batch_size: int = 8  # global batch per optimiser step, across processes and accumulation
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_steps: int = 100
    decay_steps: int = 0  # > 0: linear LR cool-down to 0 over the last decay_steps of steps
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # ramp the EMA decay up from 0 (Karras/Hoogeboom style)
    mixed_precision: str = "no"  # no | bf16 | fp16 | auto (bf16 on a GPU, fp32 on CPU)
    gradient_checkpointing: bool = False
    # Shard weights, gradients, optimiser state and EMA over the processes (FSDP2, vidiff.train.fsdp);
    # `accelerate launch --use_fsdp` switches it on too. Checkpoints are the same files either way.
    fsdp: bool = False
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    keep_last: int = 2
    sample_every: int = 0  # 0 = never
    eval_every: int = 0  # 0 = never
    eval_videos: int = 16
    # What the optimiser trains: "all", "temporal" (the temporal layers an inflation added; the rest,
    # text encoder included, stays bit-identical), "lora" (a LoRA adapter on the attention and
    # temporal layers of a model.init model, vidiff/adapters.py) or a list of parameter-name
    # patterns (fnmatch, e.g. "denoiser.net.*motion_modules*").
    trainable: str | list[str] = "all"
    # The adapter of trainable: lora: {rank, alpha, targets, new_words, preserve} (adapters.py).
    lora: dict[str, Any] = field(default_factory=dict)
    # Fine-tune model.init below this noise level (EDM sigma) only: a sample drawn above it
    # regresses model.init's own output at the same noisy input (a frozen copy) instead of its
    # clip, so what the model does there is kept (vidiff/train/finetune.py, keep_above).
    keep_above_sigma: float | None = None


@dataclass
class Config:
    """One training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def pipeline_config(self) -> PipelineConfig:
        """The part of the run a trained model needs to be rebuilt."""
        video = VideoSpec(num_frames=self.data.num_frames, size=self.data.size, fps=self.data.fps)
        return PipelineConfig(model=self.model, diffusion=self.diffusion, video=video)


# --------------------------------------------------------------------------------------------------
# dict <-> dataclass, strictly


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Coerce YAML scalars where it is unambiguous (int -> float, list -> tuple), else fail loudly."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        errors = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key '{where}' expects a list, got {value!r}")
        args = typing.get_args(tp)
        return tuple(_check_type(v, a, where) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key '{where}' expects a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key '{where}' expects a list, got {value!r}")
        return list(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # PyYAML (YAML 1.1) reads `1e-3` as a string; a float field means the number.
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"config key '{where}' expects float, got {value!r}") from None
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ValueError(f"config key '{where}' expects {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ValueError(f"config key '{where}' expects int, got {value!r}")
    return value


def check_fields(
    given: Iterable[str],
    valid: Iterable[str] | type,
    where: str,
    noun: str = "key",
    prefix: str = "",
) -> None:
    """Raise a ``ValueError`` naming every name in ``given`` that is not in ``valid`` (names, or a
    dataclass whose fields are the names) and listing the valid ones.

    The one strict check for config keys, overrides and keyword options: a typo must fail loudly
    where it is made, never be dropped or fall back to a default. ``where`` says whose names they
    are (``"config section 'train'"``, ``"UNet3DConfig"``, ``"sampler 'ddim'"``), ``noun`` what
    they are called there, ``prefix`` is put before each culprit (``'train.stepz'``).
    """
    if isinstance(valid, type) and dataclasses.is_dataclass(valid):
        valid = [f.name for f in dataclasses.fields(valid)]
    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        names = ", ".join(f"'{prefix}{k}'" for k in unknown)
        raise ValueError(f"{where}: unknown {noun}(s) {names}; valid: {', '.join(valid) or 'none'}")


def preset_config(
    cls: type, presets: dict[str, Any], preset: str | None, what: str, **overrides: Any
) -> Any:
    """The config named ``preset`` in ``presets`` with field ``overrides`` applied, or, for
    ``preset=None``, the complete dataclass ``cls(**overrides)``.

    The one preset lookup of every architecture (``build_model``, the VAE, GAN and VideoGPT
    configs): an unknown preset or field is a ``ValueError`` naming it and the valid ones (``what``
    names the architecture in the message); ``dataclasses.replace`` re-runs ``__post_init__``, so
    overridden values are validated too.
    """
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown {what} preset {preset!r}; choose from {sorted(presets)}")
    where = f"{what} preset {preset!r}" if preset is not None else f"{what} config"
    check_fields(overrides, cls, where, "override" if preset is not None else "key")
    return cls(**overrides) if preset is None else dataclasses.replace(presets[preset], **overrides)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys raise ValueError naming them."""
    if not isinstance(data, dict):
        raise ValueError(
            f"config section '{prefix or cls.__name__}' must be a mapping, got {data!r}"
        )
    where = f"config section '{prefix[:-1]}'" if prefix else "config"
    check_fields(data, cls, where, prefix=prefix)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(value, tp, f"{prefix}{name}")
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON/YAML-ready nested dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ValueError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for text in overrides:
        path, value = _parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override '{text}': '{part}' is not a section")
        node[path[-1]] = value
    return data


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read a YAML run config, apply dotted overrides, validate strictly."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = read_yaml(path) or {}
    apply_overrides(data, list(overrides))
    return from_dict(Config, data)


def load_pipeline_config(path: str | Path) -> PipelineConfig:
    """Read the ``config.json`` of an exported model or checkpoint."""
    return from_dict(PipelineConfig, read_json(path))
