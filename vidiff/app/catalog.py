"""The models ``vidiff serve`` offers, and a short model card for each.

A model is an exported folder (``config.json`` + ``model.safetensors``, see
:meth:`vidiff.pipeline.VideoPipeline.load`). The shipped ones are the folders of ``vidiff/assets``
that hold a ``config.json``; ``--model DIR`` adds more. A folder may carry ``eval.json``, the figures
``vidiff eval --record`` measured for it; the card shows them so a user sees what to expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidiff.config import PipelineConfig, load_pipeline_config
from vidiff.files import CONFIG_NAME, model_folder
from vidiff.registry import (
    ASSETS,
    is_autoencoder,
    read_figures,
    recorded_figures,
    resolve_model,
    shipped_models,
)


@dataclass(frozen=True)
class ModelInfo:
    """An exported model folder, its config and its recorded figures (None without ``eval.json``)."""

    name: str
    path: Path
    config: PipelineConfig
    figures: dict | None

    @property
    def steps(self) -> int:
        """The step count the model samples with by default (a distilled student's own count)."""
        return int(self.config.diffusion.steps)

    @property
    def image_to_video(self) -> bool:
        """Whether the model takes known frames (a first frame to animate)."""
        return bool(self.config.model.frame_conditioning)

    @property
    def vocabulary(self) -> list[str] | None:
        """The closed word list of a built-in text encoder; None for other encoders."""
        if self.config.model.text_encoder != "builtin":
            return None
        return list(self.config.model.text.get("vocab") or []) or None


def read_model(path: str | Path, name: str | None = None) -> ModelInfo:
    """A model folder's :class:`ModelInfo`; ``FileNotFoundError`` naming the folder when it is not an
    exported model."""
    path = model_folder(path)
    return ModelInfo(
        name=name or path.name,
        path=path.resolve(),
        config=load_pipeline_config(path / CONFIG_NAME),
        figures=read_figures(path),
    )


def find_models(extra: list[str] | None = None, assets: Path = ASSETS) -> dict[str, ModelInfo]:
    """Name -> model: the shipped video models (:func:`vidiff.registry.shipped_models`, sorted by
    folder name; a shipped or installed autoencoder generates nothing and is left out), then each
    folder or shipped name in ``extra``.

    A name is the folder's name; a later folder of the same name is named by its path instead.
    """
    from vidiff.files import read_json

    folders = [
        p for p in shipped_models(assets).values() if not is_autoencoder(read_json(p / CONFIG_NAME))
    ]
    extra_folders = [resolve_model(m, "--model", assets) for m in extra or []]
    models: dict[str, ModelInfo] = {}
    for folder in [*folders, *extra_folders]:
        name = folder.name if folder.name not in models else str(folder)
        if name in models:
            raise ValueError(f"--model {folder} is given twice")
        models[name] = read_model(folder, name)
    return models


def figures_table(info: ModelInfo) -> str:
    """The recorded figures as a Markdown table (one row per figure, one column per measured
    setting), or a sentence saying there are none."""
    rows = (info.figures or {}).get("rows") or []
    if not rows:
        return "No measured figures ship with this model (no `eval.json` in its folder)."
    lines = [
        "| figure | " + " | ".join(str(r.get("setting", "")) for r in rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for key, name, fmt in recorded_figures(rows):
        cells = ["-" if r.get(key) is None else fmt.format(r[key]) for r in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    when, command = info.figures.get("when", ""), info.figures.get("command", "")
    return "\n".join([*lines, "", f"Measured on {when} by `{command}`"])


def model_card(info: ModelInfo) -> str:
    """What the model is, how it samples, which words it knows, and its recorded figures (Markdown)."""
    c = info.config
    v, d = c.video, c.diffusion
    about = (
        f"`{c.model.arch}` network, {d.parameterization}-prediction: {v.num_frames} frames of "
        f"{v.size}×{v.size} pixels at {v.fps} fps. Samples with {d.steps} {d.sampler} steps"
    )
    distilled = d.distilled or {}
    if distilled:
        about += f" (distilled from a {distilled.get('teacher_steps', '?')}-step teacher"
        if distilled.get("guidance") == "baked":
            about += f", classifier-free guidance w={float(distilled['cfg']):g} baked in"
        about += ")"
    about += ". " + (
        "Image to video: give it a first frame to animate."
        if info.image_to_video
        else "Text to video only (trained without frame conditioning)."
    )
    lines = [f"### Model: {info.name}", "", about]
    if info.vocabulary:
        lines += ["", f"Its {len(info.vocabulary)} words: " + ", ".join(info.vocabulary) + "."]
    return "\n".join([*lines, "", "#### Measured quality", "", figures_table(info)])
