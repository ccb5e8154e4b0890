"""``vidiff tune``: one-shot tuning of a LoRA adapter on one captioned clip (Tune-A-Video)."""

from __future__ import annotations

import warnings
from pathlib import Path

from vidiff.commands import checks
from vidiff.data.video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from vidiff.errors import UserError
from vidiff.registry import resolve_model
from vidiff.runtime import DEFAULT_MODEL


def tune(
    video: str,
    caption: str,
    *,
    out: str = "tuned",
    model: str | None = None,
    steps: int = 150,
    rank: int = 8,
    lr: float = 1e-3,
    batch_size: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Fit a LoRA adapter to one clip and its caption, so that an edited caption keeps its motion.

    Example: vidiff tune clip.mp4 "a red circle moving right" -o tuned
             vidiff generate --model tuned "a blue circle moving right" -o blue.mp4

    The adapter (rank --rank on the attention and temporal layers) trains --steps steps on the clip
    alone, all other weights frozen; OUT gets the adapter (peft's layout, naming its base model),
    the clip, and OUT/run the training run. Generating with OUT starts from the clip (its layout and
    motion kept by structure guidance, as Tune-A-Video starts from the clip's inversion), so an
    edited caption gives the clip's motion with a new look. A clip longer than the model's is cut to its first frames and one of
    another size is resized and centre-cropped (a warning line each). The shipped model takes
    about 1 s a step on one CPU core.

    Args:
        video: the clip to learn (.mp4, .gif, .png filmstrip, ...), at least as long as the model's.
        caption: what the clip shows, in the model's words.
        out: the adapter folder to write (new or empty).
        model: the base model: an exported model folder or a shipped model's name; default: the
            model shipped in the package.
        steps: optimiser steps.
        rank: the rank of the LoRA update of each adapted layer.
        lr: the adapter's learning rate.
        batch_size: noise levels of the clip per step.
        seed: the seed of the noise levels and noises of training.
        progress: show a progress bar.
    """
    from vidiff.data.edit_inputs import fit_clip
    from vidiff.data.video_io import read_video
    from vidiff.pipeline import read_model_config
    from vidiff.train.tune import TuneSettings, check_caption
    from vidiff.train.tune import tune as tune_clip

    src = Path(video)
    if not src.is_file():
        raise UserError(f"input video not found: {src}")
    if src.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise UserError(f"input {src}: unknown video type {src.suffix!r}")
    for option, value in (("--steps", steps), ("--rank", rank), ("--batch-size", batch_size)):
        checks.positive(option, value)
    if lr <= 0:
        raise UserError(f"--lr must be > 0, got {lr}")
    checks.seed_range("--seed", seed)
    directory = checks.folder("--out", out)
    base = resolve_model(model) if model is not None else DEFAULT_MODEL
    if not (Path(base) / "config.json").is_file():
        raise UserError(f"--model {base} is not an exported vidiff model (no config.json)")
    config = read_model_config(base)
    if config.model.arch not in ("unet3d", "dit", "sd_unet"):
        raise UserError(f"--model {base}: a {config.model.arch} model takes no LoRA adapter")
    check_caption(base, caption)

    clip, _ = read_video(src)  # (3, T, H, W)
    clip, notes = fit_clip(
        clip, config.video.num_frames, config.video.size, name=f"input {src.name}"
    )
    for note in notes:  # one `vidiff: warning:` line each
        warnings.warn(note, stacklevel=2)
    settings = TuneSettings(steps=steps, rank=rank, lr=lr, batch_size=batch_size, seed=seed)
    path = tune_clip(base, clip, caption, directory, settings, progress=progress)
    print(f"vidiff: wrote the adapter {path}; generate with: vidiff generate --model {path} PROMPT")
    return path
