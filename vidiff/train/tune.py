"""One-shot tuning (Tune-A-Video; Wu et al., 2023): fit a LoRA adapter to one captioned clip.

Tune-A-Video fine-tunes the attention of a text-to-video model on a single video and its caption, so
that an edited caption then keeps the clip's motion with a new look. Here the same is done with the
trainer as it is (:func:`vidiff.train.loop.train`, ``train.trainable: lora``): a one-item dataset
repeats the clip, the adapter sits on the attention and temporal layers (:mod:`vidiff.adapters`),
and the result is an adapter folder that ``vidiff generate --model DIR`` loads with its base model.
The paper also starts sampling from the DDIM inversion of the clip, which is what keeps its layout
and motion; vidiff keeps the clip in the folder and samples from it with structure guidance
(:func:`vidiff.diffusion.editing.structure_denoiser`: the clip's brightness for the first half of
the steps, from pure noise), so an edited caption changes the look and keeps the motion.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidiff.config import Config, DataConfig, ModelConfig, TrainConfig


class OneClip(Dataset):
    """A dataset of one item: ``video`` ``(C, T, H, W)`` in ``[0, 1]`` with ``caption``."""

    def __init__(self, video: torch.Tensor, caption: str):
        if video.ndim != 4:
            raise ValueError(f"OneClip takes a (C, T, H, W) video, got shape {tuple(video.shape)}")
        self.video, self.caption = video.float().contiguous(), caption

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict:
        if index != 0:
            raise IndexError(index)
        return {"video": self.video, "caption": self.caption, "gt": None}


@dataclasses.dataclass
class TuneSettings:
    """How long and how hard the adapter trains (the defaults fit the shipped 16x32x32 model)."""

    steps: int = 150
    rank: int = 8
    lr: float = 1e-3
    batch_size: int = 4  # noise levels per step (all of the one clip)
    seed: int = 0


def tune_config(base: str | Path, out_dir: str | Path, settings: TuneSettings) -> Config:
    """The run config of a one-shot tuning of the model folder ``base`` into ``out_dir``."""
    train = TrainConfig(
        out_dir=str(out_dir),
        steps=settings.steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        warmup_steps=min(10, settings.steps),
        ema_decay=0.9,  # a short run: the EMA follows the adapter closely
        log_every=max(1, settings.steps // 10),
        ckpt_every=settings.steps,
        keep_last=1,
        seed=settings.seed,
        trainable="lora",
        lora={"rank": settings.rank},
    )
    return Config(data=DataConfig(), model=ModelConfig(init=str(base)), train=train)


def check_caption(base: str | Path, caption: str) -> None:
    """A ValueError naming the word when ``caption`` has a word the base model's built-in text
    encoder does not know (a new word would need a new embedding, which an adapter does not add)."""
    from vidiff.models.text import WordTokenizer
    from vidiff.pipeline import read_model_config

    mc = read_model_config(base).model
    if mc.text_encoder == "builtin":
        WordTokenizer(mc.text["vocab"], mc.text.get("max_length", 32)).encode_one(caption)


def tune(
    base: str | Path,
    video: torch.Tensor,
    caption: str,
    out: str | Path,
    settings: TuneSettings | None = None,
    progress: bool = False,
) -> Path:
    """Fit an adapter of ``base`` (a model folder) to ``video`` ``(C, T, H, W)`` (the model's shape,
    in ``[0, 1]``) and ``caption``; writes the adapter folder ``out`` (its run in ``out/run``)."""
    from vidiff.adapters import save_adapter
    from vidiff.train.loop import train

    settings = settings or TuneSettings()
    for name in ("steps", "rank", "batch_size"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(settings, name)}")
    check_caption(base, caption)
    out = Path(out)
    config = tune_config(base, out / "run", settings)
    result = train(config, datasets=(OneClip(video, caption), None), progress=progress)
    return save_adapter(result.ema.module, out, base=base, source=(video, caption))


__all__ = ["OneClip", "TuneSettings", "check_caption", "tune", "tune_config"]
