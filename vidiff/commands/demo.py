"""``vidiff demo``: the main job a newcomer runs first.

It writes a small gallery into one folder and an ``index.html`` that plays every video:
  * when a model is shipped with the package (or given with ``--model``), videos it generates for
    in-distribution and held-out prompts, and image-to-video from a dataset frame when it supports it;
  * a captioned preview sheet of each synthetic dataset, so a person sees what the models learn from.
Everything is generated on this machine, with no download and no GPU.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import torch

from vidiff.commands import checks
from vidiff.files import EVAL_FILE
from vidiff.registry import recorded_figures

DEMO_PROMPTS = [
    "a red circle moving right",
    "a green square moving up",
    "a cyan triangle moving left",
    "a white circle moving down",
    "a magenta square moving right",
    "a yellow circle moving up",
]
# (colour, shape) pairs never seen together in training: compositional generalisation.
HELDOUT_PROMPTS = [
    "a yellow triangle moving right",
    "a blue circle moving down",
    "a white square moving left",
    "a magenta triangle moving up",
]


def _page(
    title: str, sections: list[tuple[str, str, list[tuple[str, str]]]], tables: str = ""
) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;background:#fafafa}"
        "figure{display:inline-block;margin:.5em;text-align:center;vertical-align:top}"
        "video,img{image-rendering:pixelated;border:1px solid #ccc;background:#000}"
        "figcaption{font-size:13px;max-width:256px}"
        "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        tables,
    ]
    for heading, text, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(text)}</p>")
        for path, caption in items:
            # Single clips are upscaled to 256 px; captioned sheets keep their natural size.
            width = "" if Path(path).stem.startswith("data_") else " width='256'"
            media = f"<video src='{path}'{width} autoplay loop muted playsinline></video>"
            parts.append(f"<figure>{media}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _eval_table(model: str) -> str:
    """The model's measured figures (``eval.json`` next to its weights), as an HTML table."""
    path = Path(model) / EVAL_FILE
    if not path.is_file():
        return "<p>No measured figures ship with this model (no eval.json in its folder).</p>"
    figures = json.loads(path.read_text())
    shown = recorded_figures(figures.get("rows", []))
    rows = "".join(
        f"<tr><td>{html.escape(str(row.get('setting', '')))}</td>"
        + "".join(
            f"<td>{'-' if row.get(k) is None else fmt.format(row[k])}</td>" for k, _, fmt in shown
        )
        + "</tr>"
        for row in figures.get("rows", [])
    )
    head = "".join(f"<th>{html.escape(name)}</th>" for _, name, _ in shown)
    command = html.escape(figures.get("command", ""))
    return (
        "<h2>Measured quality of this model</h2>"
        f"<p>Measured with <code>{command}</code> ({html.escape(str(figures.get('when', '')))}).</p>"
        f"<table><tr><th>setting</th>{head}</tr>{rows}</table>"
    )


def _verdicts(prompts: list[str], videos) -> list[str]:
    """A one-line probe verdict per MovingShapes video ('' when the prompts are not MovingShapes')."""
    from vidiff.eval.report import verdict_text
    from vidiff.eval.runner import score_videos

    try:
        verdicts = score_videos("shapes", videos, prompts)
    except ValueError:  # a prompt outside the MovingShapes grammar: no exact probe
        return [""] * len(prompts)
    return [("✓ " if v.get("correct", 0) >= 1 else "✗ ") + verdict_text(v) for v in verdicts]


def _model_section(model: str, out: Path, seed: int, steps: int | None) -> list:
    from vidiff.data.video_io import write_video
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.load(model)
    prompts = DEMO_PROMPTS + HELDOUT_PROMPTS
    start = time.perf_counter()
    videos = pipe.generate(prompts, [seed] * len(prompts), steps=steps)
    seconds = (time.perf_counter() - start) / len(prompts)
    fps = pipe.config.video.fps
    items_in, items_out = [], []
    for k, (prompt, video, verdict) in enumerate(zip(prompts, videos, _verdicts(prompts, videos))):
        name = f"gen_{k:02d}.mp4"
        write_video(video, out / name, fps=fps)
        caption = f"{prompt} -- probe: {verdict}" if verdict else prompt
        (items_in if prompt in DEMO_PROMPTS else items_out).append((name, caption))
    n_steps = steps or pipe.config.diffusion.steps
    sections = [
        (
            "Text to video",
            f"{seconds:.2f} s per video on this machine ({n_steps} {pipe.config.diffusion.sampler} "
            f"steps, seed {seed}). Under each video: what the exact probe saw (colour, shape, "
            "direction of the tracked object).",
            items_in,
        ),
        (
            "Held-out compositions",
            "Colour-shape pairs the model never saw together in training.",
            items_out,
        ),
    ]
    if pipe.config.model.frame_conditioning:
        from vidiff.data import build_dataset

        data = build_dataset(
            "shapes",
            num_items=4,
            split="train",
            seed=seed + 1,
            num_frames=pipe.num_frames,
            size=pipe.size,
        )
        clips = torch.stack([data[i]["video"] for i in range(2)])
        captions = [data[i]["caption"] for i in range(2)]
        t = pipe.num_frames
        mask = torch.zeros(2, t, dtype=torch.bool)
        mask[0, 0] = True  # image to video: the first frame
        mask[1, : t // 4] = True  # continuation: the first quarter of the clip
        given = pipe.generate(
            captions, [seed, seed], steps=steps, known_frames=clips, frame_mask=mask
        )
        labels = ["first frame given", f"first {t // 4} frames given (continuation)"]
        items = []
        for k, (caption, video) in enumerate(zip(captions, given)):
            write_video(video, out / f"i2v_{k}.mp4", fps=fps)
            items.append((f"i2v_{k}.mp4", f"{labels[k]}: {caption}"))
        sections.append(
            (
                "Image to video and continuation",
                "Known frames go in through the frame mask; the model generates the rest.",
                items,
            )
        )
    return sections


def demo(
    *, out: str = "demo-out", model: str | None = None, seed: int = 0, steps: int | None = None
) -> Path:
    """Generate the demo gallery (videos + dataset previews) and write index.html.

    Args:
        out: the folder for the gallery (index.html and its videos).
        model: an exported model folder or a shipped model's name (default: the model shipped in
            the package).
        seed: seed of the generated videos and of the dataset previews.
        steps: sampling steps (default: the model's).
    """
    from vidiff.commands.data import preview
    from vidiff.registry import resolve_model
    from vidiff.runtime import DEFAULT_MODEL

    checks.folder("--out", out)
    checks.seed_range("--seed", seed)
    checks.positive("--steps", steps)
    start = time.perf_counter()
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    sections, tables = [], ""
    if model is None and (DEFAULT_MODEL / "config.json").is_file():
        model = str(DEFAULT_MODEL)
    elif model is not None:
        model = str(resolve_model(model))
    if model is not None:
        sections += _model_section(model, directory, seed, steps)
        tables = _eval_table(model)
    else:
        sections.append(
            (
                "No model yet",
                "No trained model is shipped in this version; "
                "train one with `vidiff train configs/shapes-unet-tiny.yaml`.",
                [],
            )
        )
    previews = []
    for name, caption in [
        ("shapes", "MovingShapes: text-to-video benchmark"),
        ("balls", "BouncingBalls: physics"),
        ("digits", "MovingDigits"),
    ]:
        path = directory / f"data_{name}.mp4"
        preview(name, n=8, seed=seed, out=str(path))
        previews.append((path.name, caption))
    sections.append(
        (
            "Training data",
            "Synthetic datasets, generated from a seed with exact ground truth.",
            previews,
        )
    )
    index = directory / "index.html"
    index.write_text(_page("vidiff demo", sections, tables))
    print(f"demo written in {time.perf_counter() - start:.1f} s: open {index.resolve()}")
    return index
