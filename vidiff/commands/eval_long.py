"""``vidiff eval-long``: long-video drift of a model, as curves against frame index."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from vidiff.commands import checks
from vidiff.errors import UserError
from vidiff.registry import resolve_model
from vidiff.runtime import resolve_device

CURVE_KEYS = ("adherence", "presence", "direction_ok", "speed", "area", "flicker")
SUMMARY_KEYS = ("adherence", "presence", "direction", "speed_drift", "size_drift", "flicker")


def eval_long(
    *,
    model: str | None = None,
    num_frames: int = 256,
    num_videos: int = 4,
    split: str = "train",
    context: int = 4,
    anchor: bool = False,
    seed: int = 0,
    all_prompts: bool = False,
    batch_size: int = 8,
    out: str = "eval-long-out",
    device: str = "auto",
) -> dict:
    """Measure how long videos drift: MovingShapes prompts made --num-frames long by extension and
    scored per window of the model's length (docs/long-video.md).

    Writes OUT/metrics.json (the mean of each summary and the mean curves) and OUT/report.html
    (the curves against frame index, a table, the videos with their verdicts).

    Args:
        model: an exported model folder or a shipped model's name (default: the model shipped in
            the package).
        num_frames: frames per video, 1 to 4096.
        num_videos: videos (prompts of the evaluation set, seeds as `vidiff eval`'s).
        split: the prompt set: train (in-distribution) or heldout.
        context: frames each window knows from the one before.
        anchor: cross-frame attention to the first window.
        seed: seed of the prompt set and of the videos.
        all_prompts: every MovingShapes caption of the split once instead of --num-videos.
        batch_size: videos made side by side.
        out: the folder for metrics.json, report.html and the videos.
        device: auto (the GPU when there is one), cpu, cuda, cuda:N or mps.
    """
    from vidiff.eval import report
    from vidiff.eval.long_probes import MOVING, long_bars, score_long_shapes
    from vidiff.eval.runner import SPLITS, eval_sets
    from vidiff.pipeline import VideoPipeline
    from vidiff.runtime import DEFAULT_MODEL
    from vidiff.sampling.long import check_num_frames, extend

    check_num_frames(num_frames)
    checks.positive("--num-videos", num_videos)
    checks.positive("--context", context)
    checks.seed_range("--seed", seed)
    checks.positive("--batch-size", batch_size)
    checks.folder("--out", out)
    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    model = str(resolve_model(model)) if model is not None else str(DEFAULT_MODEL)
    pipe = VideoPipeline.load(model, device=resolve_device(device))
    es = eval_sets(
        "shapes", max(num_videos, 2), pipe.num_frames, pipe.size, seed, (split,), all_prompts
    )[0]
    num_videos = len(es.prompts) if all_prompts else num_videos
    prompts, seeds = es.prompts[:num_videos], es.seeds[:num_videos]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    verdicts, gallery, made = [], [], []
    for a in range(0, num_videos, batch_size):
        sl = slice(a, a + batch_size)
        chunks = list(
            extend(pipe, prompts[sl], seeds[sl], num_frames, context=context, anchor=anchor)
        )
        made += list(np.concatenate([c.numpy() for c in chunks], axis=2))  # (C, N, H, W) each
    for k, (prompt, s, video) in enumerate(zip(prompts, seeds, made)):
        v = score_long_shapes(video, prompt, window=pipe.num_frames)
        v.update(long_bars(v))
        c = v["curves"]
        c["adherence"] = [
            float(a >= 1 and b >= 1 and x >= 1)
            for a, b, x in zip(c["colour_ok"], c["shape_ok"], c["axis_ok"])
        ]
        verdicts.append(v)
        files = report.write_clip(
            video, out_dir / "videos" / f"{k:03d}_seed{s}", pipe.config.video.fps
        )
        gallery.append(
            {
                **files,
                "gif": f"videos/{files['gif']}",
                "mp4": f"videos/{files['mp4']}",
                "caption": prompt,
                "verdict": "  ".join(f"{key} {v[key]:.2f}" for key in SUMMARY_KEYS),
                "ok": v["adherence"] >= 1 and v["presence"] >= 1,
            }
        )
    frames = verdicts[0]["curves"]["frame"]
    with warnings.catch_warnings():  # a window where no video shows the object is NaN, not noise
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_curves = {"frame": frames} | {
            key: np.nanmean([v["curves"][key] for v in verdicts], axis=0).tolist()
            for key in CURVE_KEYS
        }
        means = {
            key: float(np.nanmean([v[key] for v in verdicts]))
            for key in (*SUMMARY_KEYS, "colour_shape", "moving", "passes")
        }
    label = "extend+anchor" if anchor else "extend"
    metrics = {
        "model": str(model),
        "num_frames": num_frames,
        "num_videos": num_videos,
        "split": split,
        "mode": label,
        "context": context,
        "window": pipe.num_frames,
        **means,
        "curves": mean_curves,
        "bars": {
            "colour_shape": 0.9,
            "presence": 0.95,
            "moving_px_per_frame": MOVING,
            "size_drift": 0.3,
            "flicker": 0.01,
        },  # fmt: skip
        "videos": [
            {k: v[k] for k in ("caption", *SUMMARY_KEYS, "colour_shape", "moving", "passes")}
            for v in verdicts
        ],
    }
    report.write_json(metrics, out_dir / "metrics.json")
    plot = report.plot_long_curves({label: mean_curves}, out_dir / "long_curves.png")
    report.write_report(
        out_dir,
        "vidiff eval-long",
        f"{model}: {num_videos} videos of {num_frames} frames ({label}, context {context}), "
        f"{split} prompts, windows of {pipe.num_frames} frames",
        [
            (
                "Long-video probes (mean over videos)",
                [(label, {k: metrics[k] for k in SUMMARY_KEYS})],
            )
        ],
        [plot] if plot else [],
        [("Videos", gallery)],
    )
    keys = (*SUMMARY_KEYS, "colour_shape", "moving", "passes")
    print(json.dumps({k: round(metrics[k], 4) for k in keys}))
    print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.html'}")
    return metrics
