"""Training logs: a progress bar, ``metrics.jsonl``, TensorBoard when installed, and sample sheets.

Only the main process logs. Scalars go to ``<out_dir>/metrics.jsonl`` (one JSON object per line, easy
to plot with pandas or ``jq``); when the ``tensorboard`` package is installed they also go to
``<out_dir>/tb``. The sample hook renders a captioned sheet of EMA samples every ``train.sample_every``
steps to ``<out_dir>/samples/step-XXXXXXX.mp4`` so that a person can watch the model learn; the
default sample and eval hooks of the trainer live here too.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from vidiff.config import Config


class RunLogger:
    """Progress bar (loss, it/s, ETA by tqdm) + JSONL scalars (+ TensorBoard if available)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        progress: bool = True,
        tensorboard: bool = True,
    ):
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self.bar = None
        self.tb = None
        self._file = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # A resumed run continues the same file from its checkpoint: records of steps after it (logged
        # before a crash or a stop) are dropped first, so every step appears once.
        path = self.out_dir / "metrics.jsonl"
        trim_metrics(path, start_step)
        self._file = open(path, "a", buffering=1)  # noqa: SIM115
        if progress:
            self.bar = tqdm(
                total=total_steps,
                initial=start_step,
                desc="train",
                dynamic_ncols=True,
                smoothing=0.05,
            )
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.tb = SummaryWriter(str(self.out_dir / "tb"))

    def step(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def log(
        self, step: int, scalars: dict[str, float], *, show: tuple[str, ...] = ("loss", "lr")
    ) -> None:
        """Record ``scalars`` at ``step`` (and show a few of them next to the bar)."""
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **scalars}
        self._file.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)
        if self.bar is not None:
            self.bar.set_postfix(
                {k: f"{scalars[k]:.4g}" for k in show if k in scalars}, refresh=False
            )

    def write(self, message: str) -> None:
        """A line of text that does not break the progress bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self._file is not None:
            self._file.close()
        if self.tb is not None:
            self.tb.close()


def trim_metrics(path: str | Path, last_step: int) -> None:
    """Drop the records of ``metrics.jsonl`` with ``step > last_step`` (atomically; a torn last line,
    from a crash mid-write, goes too)."""
    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in keep))
    tmp.replace(path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, one per (step, keys) (the last, for files written before
    resumes trimmed them)."""
    records: dict[tuple, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            records[(r["step"], tuple(sorted(k for k in r if k != "time")))] = r
    return sorted(records.values(), key=lambda r: r["step"])


@torch.no_grad()
def write_sample_sheet(
    pipeline: Any,
    prompts: list[str],
    seeds: list[int],
    path: str | Path,
    *,
    fps: int = 8,
    steps: int | None = None,
) -> Path:
    """Generate one video per prompt (seeded), tile them with captions, write ``path`` (.mp4/.gif)."""
    from vidiff.data import make_sheet, write_video

    was_training = pipeline.training
    pipeline.eval()
    try:
        videos = pipeline.generate(prompts, seeds, steps=steps)  # (B, C, T, H, W) in [0, 1]
    finally:
        pipeline.train(was_training)
    sheet = make_sheet(list(videos.cpu()), captions=prompts)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(sheet, path, fps=fps)
    return path


# ------------------------------------------------------------------------------------------------
# the trainer's default sample and eval hooks


def default_sample_prompts(videos: Dataset, n: int = 8) -> list[str]:
    """Captions of the first ``n`` training items: a fixed, representative set of prompts."""
    return [videos[i]["caption"] for i in range(min(n, len(videos)))]


def default_sample_hook(config: Config, videos: Dataset) -> Callable[[int, nn.Module, Path], Any]:
    """``train.sample_every`` writes a captioned sheet of EMA samples of the first training captions
    (seeds 0..7) to ``<out_dir>/samples/step-XXXXXXX.mp4``."""
    prompts: list[str] = []

    def sample(step: int, model: nn.Module, path: Path) -> Path:
        if not prompts:
            prompts.extend(default_sample_prompts(videos))
        seeds = list(range(len(prompts)))
        return write_sample_sheet(model, prompts, seeds, path, fps=config.data.fps)

    return sample


def default_eval_hook(config: Config) -> Callable[[int, nn.Module], dict[str, float]]:
    """``train.eval_every`` logs :func:`vidiff.eval.evaluate.quick_eval` (probe scores of a few EMA
    samples on the synthetic dataset being trained on) under ``eval/...`` in ``metrics.jsonl``."""
    from vidiff.eval.evaluate import quick_eval

    tc = config.train
    return lambda step, model: quick_eval(
        model, num_videos=tc.eval_videos, seed=tc.seed, dataset=config.data.name
    )
