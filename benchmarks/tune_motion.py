"""One-shot tuning on MovingShapes (docs/lora.md): is the clip's motion kept under a new colour?

    OMP_NUM_THREADS=1 python benchmarks/tune_motion.py [--clips 3] [--steps 100] [--seeds 4]

For each of ``--clips`` clips of MovingShapes (split train, seed 5; not clips the model trained on),
``vidiff.train.tune.tune`` fits an adapter of the shipped default model to the clip and its caption;
then the caption with another colour word (red -> green, ...) is sampled ``--seeds`` times with the
adapter and with the base model, from noise and from the clip (what ``vidiff generate`` does with a
tuned adapter: structure guidance from the clip it learnt; the base model from the clip shows what
the guidance alone keeps). Per video: the probe's colour and shape verdicts (the new colour
obeyed, the shape kept) and the mean distance (px at 32x32) between the video's object centre track
(``vidiff.eval.motion.measure_trajectory``) and the input clip's ground-truth centroids (the motion
kept). Prints one JSON summary (and writes the rows with --out FILE.json).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.adapters import load_adapted, tuned_source
from vidiff.data.shapes import COLOURS, MovingShapes
from vidiff.eval.motion import measure_trajectory, trajectory_errors
from vidiff.eval.probes import score_shapes
from vidiff.pipeline import VideoPipeline
from vidiff.runtime import DEFAULT_MODEL
from vidiff.train.tune import TuneSettings, tune


def new_colour(colour: str) -> str:
    """The next colour of the vocabulary: the edit asked of every clip."""
    names = list(COLOURS)
    return names[(names.index(colour) + 1) % len(names)]


def score(video: torch.Tensor, caption: str, centroids: np.ndarray) -> dict:
    verdict = score_shapes(video, caption)
    track = trajectory_errors(measure_trajectory(video), torch.from_numpy(centroids).float())
    return {
        "colour_ok": float(verdict["colour_ok"]),
        "shape_ok": float(verdict["shape_ok"]),
        "track_px": track["mean"],
    }


def summarise(rows: list[dict], key: str) -> dict:
    part = [r for r in rows if r["model"] == key]
    out = {}
    for m in ("colour_ok", "shape_ok", "track_px"):
        values = [r[m] for r in part if not math.isnan(r[m])]
        out[m] = round(float(np.mean(values)), 3) if values else math.nan
    out["track_found"] = sum(not math.isnan(r["track_px"]) for r in part) / max(1, len(part))
    out["track_within_3px"] = sum(r["track_px"] <= 3.0 for r in part) / max(1, len(part))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    base = VideoPipeline.load(DEFAULT_MODEL)
    clips = MovingShapes(args.clips, split="train", seed=5)
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.clips):
            item = clips[i]
            obj = item["gt"]["objects"][0]
            centroids = np.asarray(obj["centroids"], np.float64)
            edited = item["caption"].replace(obj["colour"], new_colour(obj["colour"]), 1)
            adapter = tune(DEFAULT_MODEL, item["video"], item["caption"], Path(tmp) / f"clip{i}",
                           TuneSettings(steps=args.steps))  # fmt: skip
            tuned = load_adapted(adapter)
            seeds = list(range(args.seeds))
            clip, structure = tuned_source(adapter)
            from_clip = dict(strength=1.0, structure=structure)
            for key, pipe, caption, start in (
                ("base, edited caption", base, edited, None),
                ("tuned, edited caption", tuned, edited, None),
                ("tuned, own caption", tuned, item["caption"], None),
                ("base, edited caption, from the clip", base, edited, from_clip),
                ("tuned, edited caption, from the clip (generate)", tuned, edited, from_clip),
            ):
                prompts = [caption] * len(seeds)
                if start is None:
                    videos = pipe.generate(prompts, seeds)
                else:
                    videos = pipe.edit(clip[None].expand(len(seeds), -1, -1, -1, -1), prompts,
                                       seeds, **start)  # fmt: skip
                for seed, video in zip(seeds, videos):
                    rows.append({"clip": i, "caption": caption, "model": key, "seed": seed,
                                 **score(video, caption, centroids)})  # fmt: skip
    truth = [score(clips[i]["video"], clips[i]["caption"], np.asarray(
        clips[i]["gt"]["objects"][0]["centroids"])) for i in range(args.clips)]  # fmt: skip
    summary = {
        "clips": args.clips,
        "steps": args.steps,
        "seeds": args.seeds,
        "input clips (probe on ground truth)": {
            "track_px": round(float(np.mean([t["track_px"] for t in truth])), 3)
        },
        **{key: summarise(rows, key) for key in dict.fromkeys(r["model"] for r in rows)},
        "seconds": round(time.perf_counter() - t0),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
