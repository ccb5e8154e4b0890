"""One generation request of ``vidiff serve`` -> one ``.mp4`` file, with no Gradio in sight.

:class:`Studio` holds the catalogue of models, loads each one the first time it is asked for (and
keeps it), validates a request the way ``vidiff generate`` does -- the pipeline's own checks, raised
as ``ValueError`` / ``FileNotFoundError`` naming the culprit -- and writes the video into its output
folder. The web page turns those errors into messages in the page.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from vidiff.app.catalog import ModelInfo
from vidiff.pipeline import VideoPipeline


def _whole(value, what: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (web forms send numbers as floats); else a ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if not number.is_integer() or number < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(number)


class Studio:
    """Generates videos from a set of models into ``out_dir`` (one file per request)."""

    def __init__(
        self, models: dict[str, ModelInfo], out_dir: str | Path, device: str | torch.device = "cpu"
    ):
        if not models:
            raise ValueError("no models to serve: pass --model DIR (an exported model folder)")
        self.models = models
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(device)
        self._pipes: dict[str, VideoPipeline] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()

    @property
    def default(self) -> str:
        """The model a request without one uses: the first in the catalogue."""
        return next(iter(self.models))

    def info(self, name: str | None) -> ModelInfo:
        name = name or self.default
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; this server has: {', '.join(self.models)}")
        return self.models[name]

    def pipeline(self, name: str | None) -> VideoPipeline:
        """The loaded pipeline of model ``name`` (loaded on first use, then kept)."""
        info = self.info(name)
        with self._lock:
            if info.name not in self._pipes:
                self._pipes[info.name] = VideoPipeline.load(info.path, device=self.device)
            return self._pipes[info.name]

    def generate(
        self,
        prompt: str,
        seed: int = 0,
        *,
        model: str | None = None,
        steps: int | None = None,
        first_frame: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Sample one video for (``prompt``, ``seed``) and write it as ``.mp4``; returns its path.

        ``steps`` defaults to the model's own count; ``first_frame`` (an image file) makes it image to
        video, as ``vidiff generate --first-frame``. ``progress(done, total)`` is called after each
        sampler step. Bad input raises ``ValueError`` / ``FileNotFoundError`` before any sampling.
        """
        from vidiff.data.folder import load_image
        from vidiff.data.video_io import write_video

        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("type a prompt, e.g. 'a red circle moving right'")
        seed = _whole(seed, "seed", 0)
        info = self.info(model)
        steps = info.steps if steps is None else _whole(steps, "steps", 1)
        pipe = self.pipeline(info.name)
        pipe.encode_prompts([prompt])  # an unknown word fails here, before the sampler starts
        known = mask = None
        if first_frame is not None:
            if not info.image_to_video:
                raise ValueError(
                    f"model {info.name} was trained without frame conditioning; "
                    "it cannot start from a given first frame"
                )
            size, frames = pipe.size, pipe.num_frames
            known = torch.zeros(1, pipe.config.video.channels, frames, size, size)
            known[:, :, :1] = load_image(first_frame, size)  # resized and centre-cropped
            mask = torch.zeros(1, frames, dtype=torch.bool)
            mask[:, 0] = True
        callback = None
        if progress is not None:
            callback = lambda step: progress(int(step["i"]) + 1, steps)
        video = pipe.generate(
            [prompt], [seed], steps=steps, known_frames=known, frame_mask=mask, callback=callback
        )[0].cpu()
        path = self.out_dir / f"{next(self._counter):05d}-seed{seed}.mp4"
        write_video(video, path, fps=pipe.config.video.fps)
        return path
