"""A LoRA adapter's new colour (docs/lora.md): is the new word drawn in its colour, and what happens
to the old prompts?

    OMP_NUM_THREADS=1 python benchmarks/lora_concept.py --adapter runs/shapes-lora/adapter \
        [--colour purple=0.5,0,1] [--seeds 4] [--old 64] [--scales 1 0]

New-concept prompts: ``a <colour> <shape> moving <direction>`` for every shape and direction,
``--seeds`` seeds each, sampled with the adapter at each ``--scales`` value (0 is the base model,
where the new word keeps the row it started from). Each clip is scored by the shapes probes with the
new colour added to the palette the colour is read among (``correct``: colour, shape and direction
all right), and by a second, palette-free reading: the distance (RGB, 0-1.7) from the object's mean
colour to the new colour beside its distance to the nearest old colour. Old prompts: ``--old``
in-distribution captions (the evaluation seed's), scored the same way at each scale. Prints one JSON
line per scale and writes them with ``--out FILE.json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from vidiff.adapters import load_adapted, set_lora_scale
from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, MovingShapes
from vidiff.eval.probes import score_shapes
from vidiff.eval.runner import EVAL_DATA_SEED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--colour", default="purple=0.5,0,1", help="NAME=R,G,B of the new colour")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--old", type=int, default=64, help="in-distribution prompts for forgetting")
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 0.0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    name, _, rgb_text = args.colour.partition("=")
    rgb = np.array([float(c) for c in rgb_text.split(",")], np.float32)
    palette = {**COLOURS, name: tuple(rgb)}
    old_rgb = np.array(list(COLOURS.values()), np.float32)
    pipe = load_adapted(args.adapter)
    new = [
        (f"a {name} {shape} moving {d}", {"colour": name, "shape": shape, "direction": d})
        for shape in SHAPES
        for d in DIRECTIONS
    ]
    new = [(p, o, s) for p, o in new for s in range(args.seeds)]
    test = MovingShapes(num_items=args.old, split="train", seed=EVAL_DATA_SEED)
    old = [(test[i]["caption"], None, 10_000 + i) for i in range(args.old)]
    results = []
    for scale in args.scales:
        set_lora_scale(pipe, scale)
        row, t = {"scale": scale}, time.time()
        for part, jobs in (("new", new), ("old", old)):
            videos = pipe.generate(
                [p for p, _, _ in jobs], [s for _, _, s in jobs], batch_size=args.batch_size
            )
            scores = []
            for (prompt, obj, _), video in zip(jobs, videos.cpu()):
                v = score_shapes(video, prompt, objects=[obj] if obj else None, palette=palette)
                scores.append(v)
            row[f"{part}_n"] = len(jobs)
            for k in ("correct", "correct_geo", "colour_ok", "shape_ok", "direction_ok"):
                row[f"{part}_{k}"] = float(np.mean([v[k] for v in scores]))
            if part == "new":
                colours = [np.asarray(v["colour_rgb"], np.float32) for v in scores
                           if v["colour_rgb"] is not None]  # fmt: skip
                to_new = [float(np.linalg.norm(c - rgb)) for c in colours]
                to_old = [float(np.linalg.norm(old_rgb - c, axis=1).min()) for c in colours]
                row["new_rgb_distance_median"] = float(np.median(to_new)) if to_new else None
                row["nearer_new_than_old"] = float(np.mean(np.less(to_new, to_old)))
        row["seconds"] = round(time.time() - t)
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
