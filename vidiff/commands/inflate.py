"""``vidiff inflate`` and ``vidiff export-motion``: image models in, motion modules out.

The library work is in :mod:`vidiff.models.inflate` and :mod:`vidiff.interop.diffusers`; these
functions parse, validate up front, call it and report one line.
"""

from __future__ import annotations

from pathlib import Path

from vidiff.commands import checks
from vidiff.errors import UserError
from vidiff.registry import resolve_model


def inflate(
    src: str,
    *,
    out: str = "video-model",
    motion_adapter: str | None = None,
    num_frames: int = 16,
    text_encoder: str | None = None,
) -> None:
    """Turn an image model into a video model whose new temporal layers start as identity.

    SRC is an exported vidiff image model (video.num_frames 1), a diffusers UNet2DConditionModel
    folder, or a Stable Diffusion pipeline folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/).
    The output is an ordinary vidiff model folder (config.json + model.safetensors) for generate,
    train (model.init), eval and distill. Only safetensors are read; nothing is written on an error.

    Args:
        src: the image model folder.
        out: the new model folder (must not already hold a model).
        motion_adapter: an AnimateDiff MotionAdapter folder (diffusers layout) whose motion modules
            replace the identity ones; needs a Stable-Diffusion-layout U-Net of matching widths and
            layers per block.
        num_frames: frames per clip of the video model (video.num_frames).
        text_encoder: for a bare UNet2DConditionModel only: a transformers text model folder (with
            its tokenizer) whose width is the U-Net's cross_attention_dim.
    """
    from vidiff.models.inflate import inflate as run

    checks.positive("--num-frames", num_frames)
    src = str(resolve_model(src, "SRC"))  # a folder or a shipped model's name
    if (checks.folder("--out", out) / "config.json").exists():
        raise UserError(f"--out {out} already holds a model; choose another folder")
    path = run(
        src, out, motion_adapter=motion_adapter, num_frames=num_frames, text_encoder=text_encoder
    )
    print(f"vidiff: inflated {src} into {path}")


def export_motion(model: str, *, out: str = "motion-adapter") -> None:
    """Write the temporal layers of an inflated Stable-Diffusion-layout model as an AnimateDiff
    MotionAdapter folder (config.json + diffusion_pytorch_model.safetensors) that diffusers loads
    with MotionAdapter.from_pretrained.

    Args:
        model: an exported vidiff model with motion modules (from vidiff inflate, or trained
            from one and exported).
        out: the MotionAdapter folder to write.
    """
    import dataclasses

    from vidiff.interop.diffusers import WEIGHTS, save_motion_adapter
    from vidiff.models.inflate import motion_state
    from vidiff.pipeline import VideoPipeline

    if (checks.folder("--out", out) / WEIGHTS).exists():
        raise UserError(f"--out {out} already holds a diffusers model; choose another folder")
    pipe = VideoPipeline.load(resolve_model(model, "MODEL"))
    state = motion_state(pipe)
    save_motion_adapter(dataclasses.asdict(pipe.net.config), state, Path(out))
    print(f"vidiff: wrote the motion modules of {model} to {out}")
