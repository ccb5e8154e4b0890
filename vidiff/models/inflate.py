"""Inflation: an image model becomes a video model whose new temporal layers start as identity.

Make-A-Video (Singer et al., 2022), Tune-A-Video (Wu et al., 2023), AnimateDiff (Guo et al., 2023) and
Stable Video Diffusion (Blattmann et al., 2023) start a video model from a pretrained image model: the
spatial layers keep their weights (and names), temporal layers are inserted and initialised so that
the video network equals the image network applied to each frame. Training then only has to learn
motion (``train.trainable: temporal``).

Sources (:func:`source_kind`):

* ``vidiff`` -- an exported vidiff image model (``video.num_frames == 1``). A ``unet3d`` gets fresh
  temporal convs and attention (zero-initialised outputs); an ``sd_unet`` gets motion modules.
* ``unet`` -- a diffusers ``UNet2DConditionModel`` folder: vidiff's SD U-Net with motion modules. It
  needs a text encoder (``text_encoder``: a transformers folder) of the U-Net's context width.
* ``pipeline`` -- a Stable Diffusion pipeline folder (``model_index.json``, ``unet/ vae/
  text_encoder/ tokenizer/ scheduler/``): its U-Net, CLIP text encoder (from the folder), VAE
  (:mod:`vidiff.models.sd_vae`, weights copied into the export) and noise schedule / prediction type
  (from ``scheduler/scheduler_config.json``).

A ``motion_adapter`` (an AnimateDiff ``MotionAdapter`` folder) replaces the identity motion modules of
an SD U-Net with trained ones. Everything is read and checked before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch

from vidiff.config import (
    DiffusionConfig,
    ModelConfig,
    PipelineConfig,
    VideoSpec,
    load_pipeline_config,
)
from vidiff.interop import diffusers as hf
from vidiff.models.sd_unet import is_motion_key

NET = "denoiser.net."
PICKLED = hf.PICKLED
PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# diffusers beta_schedule -> vidiff VPSchedule kind, with the betas VPSchedule uses for it.
SCHEDULES = {
    "scaled_linear": ("scaled_linear", 0.00085, 0.012),
    "linear": ("linear", 1e-4, 0.02),
    "squaredcos_cap_v2": ("cosine", None, None),
}
PREDICTIONS = {"epsilon": "eps", "v_prediction": "v"}


def is_temporal(arch: str, name: str) -> bool:
    """Whether pipeline parameter ``name`` (``denoiser.net.*``) is a temporal layer of ``arch``: the
    layers inflation adds and temporal-only training trains."""
    if not name.startswith(NET):
        return False
    name = name[len(NET) :]
    if arch == "sd_unet":
        return is_motion_key(name)
    if arch == "unet3d":
        return ".temporal." in f".{name}" or name.startswith("frame_embed.")
    raise ValueError(f"architecture {arch!r} has no temporal layers vidiff can inflate or train")


def source_kind(src: Path) -> str:
    """``"vidiff"``, ``"unet"`` or ``"pipeline"``; anything else is an error naming what was found."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"inflate source {src} is not a folder")
    if (src / "model_index.json").is_file():
        return "pipeline"
    config = src / "config.json"
    if not config.is_file():
        found = sorted(p.name for p in src.iterdir())[:8]
        raise ValueError(
            f"{src} is not an image model: expected an exported vidiff model (config.json + "
            f"model.safetensors), a diffusers UNet2DConditionModel folder or a Stable Diffusion "
            f"pipeline folder (model_index.json); found {found or 'an empty folder'}"
        )
    cfg = json.loads(config.read_text())
    if cfg.get("_class_name") == "UNet2DConditionModel":
        return "unet"
    if "_class_name" in cfg:
        raise ValueError(
            f"{src} holds a diffusers {cfg['_class_name']!r}; inflate takes a UNet2DConditionModel, "
            "a Stable Diffusion pipeline or a vidiff image model"
        )
    if {"model", "video"} <= set(cfg):
        return "vidiff"
    raise ValueError(f"{src}/config.json is neither a vidiff model config nor a diffusers config")


def _text_encoder(path: Path, subfolder: str = "") -> tuple[int, int]:
    """(width, prompt length) of a transformers text model folder: CLIP's context window is its
    ``max_position_embeddings`` (77 for Stable Diffusion's)."""
    cfg_path = Path(path) / subfolder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"text encoder folder {cfg_path.parent} has no config.json")
    cfg = json.loads(cfg_path.read_text())
    cfg = cfg.get("text_config", cfg)
    if "hidden_size" not in cfg and "d_model" not in cfg:
        raise ValueError(f"{cfg_path} is not a transformers text model config")
    width = int(cfg.get("hidden_size", cfg.get("d_model")))
    return width, int(cfg.get("max_position_embeddings", 77))


def _scheduler(src: Path) -> tuple[str, str]:
    """(parameterization, VPSchedule kind) from a pipeline's ``scheduler/scheduler_config.json``."""
    path = src / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"Stable Diffusion pipeline {src} has no {path.relative_to(src)}")
    cfg = json.loads(path.read_text())
    prediction = cfg.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise ValueError(
            f"{path}: prediction_type {prediction!r} is not one of {list(PREDICTIONS)}"
        )
    beta = cfg.get("beta_schedule", "linear")
    if beta not in SCHEDULES or cfg.get("trained_betas"):
        raise ValueError(f"{path}: beta_schedule {beta!r} is not one of {list(SCHEDULES)}")
    kind, start, end = SCHEDULES[beta]
    got = (cfg.get("beta_start", start), cfg.get("beta_end", end))
    if kind != "cosine" and got != (start, end) or cfg.get("num_train_timesteps", 1000) != 1000:
        raise ValueError(
            f"{path}: vidiff's {kind} schedule has beta_start={start}, beta_end={end} and 1000 "
            f"steps; found {got} and {cfg.get('num_train_timesteps')}"
        )
    return PREDICTIONS[prediction], kind


def _check_pipeline(src: Path) -> None:
    index = json.loads((src / "model_index.json").read_text())
    missing = [p for p in PIPELINE_PARTS if p not in index or not (src / p).is_dir()]
    if missing:
        raise ValueError(
            f"Stable Diffusion pipeline {src} lacks {', '.join(missing)} (expected folders "
            f"{', '.join(PIPELINE_PARTS)})"
        )


def _from_vidiff(src: Path, num_frames: int):
    """(pipeline config, image weights) of an exported vidiff image model."""
    from vidiff.files import WEIGHTS_NAME

    pc = load_pipeline_config(src / "config.json")
    if pc.video.num_frames != 1:
        raise ValueError(
            f"{src} is a video model (video.num_frames={pc.video.num_frames}); inflate takes an "
            "image model (video.num_frames=1)"
        )
    net = dict(pc.model.net)
    if pc.model.arch == "unet3d":
        if net.get("layout_prior"):
            # The prompt's coarse clip is resized to T frames: it differs frame by frame, so the
            # video net could not start as the image net applied to each frame.
            raise ValueError(
                f"{src} has layout_prior=True, whose layout changes along time; inflation needs "
                "an image model without it (model.net.layout_prior=false)"
            )
        net.update(temporal_conv=True, temporal_attention=True)
    elif pc.model.arch == "sd_unet":
        if net.get("motion"):
            raise ValueError(f"{src} already has motion modules: it is a video model")
        net["motion"] = True
    else:
        raise ValueError(
            f"{src} is a {pc.model.arch!r} model; inflate supports unet3d and sd_unet image models"
        )
    if not (src / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{src} is not an exported vidiff model: missing {WEIGHTS_NAME}")
    from safetensors.torch import load_file

    state = load_file(str(src / WEIGHTS_NAME))
    model = dataclasses.replace(pc.model, net=net)
    video = dataclasses.replace(pc.video, num_frames=num_frames)
    return dataclasses.replace(pc, model=model, video=video), state


def _from_diffusers(src: Path, kind: str, num_frames: int, text_encoder: str | None):
    """(pipeline config, image weights) of a diffusers UNet or Stable Diffusion pipeline folder."""
    unet_dir = src / "unet" if kind == "pipeline" else src
    if kind == "pipeline":
        _check_pipeline(src)
        if text_encoder is not None:
            raise ValueError(
                "a Stable Diffusion pipeline brings its own text encoder; drop --text-encoder"
            )
        parameterization, schedule = _scheduler(src)
        text = {"name_or_path": str(src.resolve()), "subfolder": "text_encoder"}
        text["tokenizer_subfolder"] = "tokenizer"
        width, length = _text_encoder(src, "text_encoder")
    else:
        if text_encoder is None:
            raise ValueError(
                f"{src} is a bare UNet2DConditionModel: give --text-encoder DIR (a transformers "
                "text model folder with its tokenizer) for its prompts"
            )
        parameterization, schedule = "eps", "scaled_linear"  # Stable Diffusion's
        text = {"name_or_path": str(Path(text_encoder).resolve())}
        width, length = _text_encoder(Path(text_encoder))
    text["max_length"] = min(length, 77)
    net, state = hf.load_unet(unet_dir)
    if net["context_dim"] != width:
        raise ValueError(
            f"the U-Net cross-attends to {net['context_dim']}-wide prompts; the text encoder "
            f"gives {width}"
        )
    net["motion"] = True
    state = {NET + k: v for k, v in state.items()}
    vae_config = None
    if kind == "pipeline":
        from vidiff.models.sd_vae import read_vae

        vae_config, vae_state = read_vae(src / "vae")
        state.update({"vae." + k: v for k, v in vae_state.items()})
    sample_size = json.loads((unet_dir / "config.json").read_text()).get("sample_size", 64)
    scale = (
        1 if vae_config is None else 2 ** (len(vae_config["diffusers"]["block_out_channels"]) - 1)
    )
    model = ModelConfig(
        arch="sd_unet",
        preset=None,
        net=net,
        text_encoder="hf",
        text=text,
        frame_conditioning=False,
        vae_config=vae_config,
    )
    diffusion = DiffusionConfig(
        parameterization=parameterization, schedule=schedule, steps=25, cfg=7.5
    )
    video = VideoSpec(
        channels=3 if vae_config else net["in_channels"],
        num_frames=num_frames,
        size=int(sample_size if isinstance(sample_size, int) else sample_size[0]) * scale,
    )
    return PipelineConfig(model=model, diffusion=diffusion, video=video), state


def build_inflated(
    src: str | Path,
    *,
    motion_adapter: str | Path | None = None,
    num_frames: int = 16,
    text_encoder: str | None = None,
):
    """The inflated :class:`~vidiff.pipeline.VideoPipeline` of ``src`` (nothing written)."""
    from vidiff.pipeline import VideoPipeline

    src = Path(src)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    kind = source_kind(src)
    if kind == "vidiff":
        if text_encoder is not None:
            raise ValueError("a vidiff model brings its own text encoder; drop --text-encoder")
        config, image = _from_vidiff(src, num_frames)
    else:
        config, image = _from_diffusers(src, kind, num_frames, text_encoder)
    adapter = None
    if motion_adapter is not None:
        if config.model.arch != "sd_unet":
            raise ValueError(
                "--motion-adapter joins a Stable-Diffusion-layout U-Net (sd_unet) only"
            )
        fields, adapter = hf.load_motion_adapter(Path(motion_adapter), config.model.net)
        config.model.net = {**config.model.net, **fields}
    pipe = VideoPipeline(config)
    arch = config.model.arch
    state = pipe.state_dict()
    for k, v in image.items():
        if k not in state:
            raise ValueError(f"{src}: weight {k!r} has no place in the inflated model")
        if is_temporal(arch, k):
            continue  # temporal layers start fresh: identity
        if state[k].shape != v.shape:
            raise ValueError(
                f"{src}: weight {k!r} has shape {tuple(v.shape)}, the model expects "
                f"{tuple(state[k].shape)}"
            )
        state[k] = v.to(state[k].dtype)
    lacking = [k for k in state if k not in image and not is_temporal(arch, k)]
    lacking = [k for k in lacking if not k.startswith("text_encoder.") or kind == "vidiff"]
    if lacking:
        raise ValueError(f"{src} lacks weight(s) {lacking[:3]} of the image model")
    if adapter is not None:
        for k, v in adapter.items():
            key = NET + k
            if key not in state or not is_temporal(arch, key):
                raise ValueError(f"motion adapter weight {k!r} has no motion module to go to")
            if state[key].shape != v.shape:
                raise ValueError(
                    f"motion adapter weight {k!r} has shape {tuple(v.shape)}, the U-Net's motion "
                    f"module expects {tuple(state[key].shape)}"
                )
            state[key] = v.to(state[key].dtype)
        missing = [k for k in state if is_temporal(arch, k) and k[len(NET) :] not in adapter]
        if missing:
            raise ValueError(f"motion adapter {motion_adapter} lacks {missing[0][len(NET) :]!r}")
    pipe.load_weights(state, src)
    return pipe.eval()


def inflate(
    src: str | Path,
    out: str | Path,
    *,
    motion_adapter: str | Path | None = None,
    num_frames: int = 16,
    text_encoder: str | None = None,
) -> Path:
    """Inflate ``src`` into the vidiff model folder ``out`` (see the module docstring). A Hugging Face
    text encoder is copied into ``out/text_encoder`` (and its tokenizer into ``out/tokenizer``), so
    the folder stands alone."""
    out = Path(out)
    if (out / "config.json").exists():
        raise ValueError(f"{out} already holds a model; choose another output folder")
    pipe = build_inflated(
        src, motion_adapter=motion_adapter, num_frames=num_frames, text_encoder=text_encoder
    )
    copies = (
        _text_encoder_files(pipe.config.model) if pipe.config.model.text_encoder == "hf" else []
    )
    if copies:
        text = pipe.config.model.text
        pipe.config.model.text = {
            **text,
            "name_or_path": ".",
            "subfolder": "text_encoder",
            "tokenizer_subfolder": "tokenizer",
        }
    pipe.save(out)
    for source, folder in copies:
        (out / folder).mkdir(exist_ok=True)
        shutil.copy2(source, out / folder / source.name)
    return out


def _text_encoder_files(model: ModelConfig) -> list[tuple[Path, str]]:
    """(file, destination folder) of the text model and tokenizer to copy; safetensors weights are
    required (a pickled text encoder is refused, never unpickled)."""
    text = model.text
    root = Path(text["name_or_path"])
    te = root / (text.get("subfolder") or "")
    tok = root / (text.get("tokenizer_subfolder") or text.get("subfolder") or "")
    weights = sorted(te.glob("*.safetensors"))
    if not weights:
        raise ValueError(
            f"text encoder {te} has no safetensors weights (pickled files are refused)"
        )
    files = [
        (f, "text_encoder") for f in sorted(te.iterdir()) if f.suffix in (".json", ".safetensors")
    ]
    files += [
        (f, "tokenizer")
        for f in sorted(tok.iterdir())
        if f.is_file() and f.suffix not in PICKLED and f.suffix != ".safetensors"
    ]
    return files


def motion_state(pipe) -> dict[str, torch.Tensor]:
    """The motion-module weights of an SD-U-Net pipeline, keyed as in a ``MotionAdapter``."""
    if pipe.config.model.arch != "sd_unet" or not pipe.net.config.motion:
        raise ValueError("only a Stable-Diffusion-layout U-Net with motion modules has them")
    return {k[len(NET) :]: v for k, v in pipe.state_dict().items() if is_temporal("sd_unet", k)}


__all__ = ["build_inflated", "inflate", "is_temporal", "motion_state", "source_kind"]
