"""Quality per clip shape (native sizes and lengths): the MovingShapes probes of a DiT at each
``T x H x W``, seen in training or not (vidiff.eval.sizes.size_eval); prints a table.

    python benchmarks/native_sizes.py runs/shapes-dit-pixel-sizes/model
    python benchmarks/native_sizes.py MODEL --shapes 16x32x32 16x32x48 24x32x64 --num-videos 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math

DEFAULT_SHAPES = ["8x32x32", "16x32x32", "16x32x48", "16x48x32", "12x40x40", "24x32x64"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an exported model folder or shipped name (a DiT)")
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="TxHxW clip shapes")
    ap.add_argument("--num-videos", type=int, default=16, help="videos per shape and split")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    ap.add_argument("--splits", nargs="+", default=["train", "heldout"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    from vidiff.eval.sizes import parse_shape, size_eval
    from vidiff.pipeline import VideoPipeline
    from vidiff.registry import resolve_model

    pipe = VideoPipeline.load(resolve_model(args.model))
    shapes = [parse_shape(s) for s in args.shapes]
    rows = size_eval(
        pipe, shapes, args.num_videos, args.steps, args.seed, splits=tuple(args.splits)
    )
    cols = ["adherence", "colour_ok", "shape_ok", "direction_ok", "flicker_median", "sec_per_video"]
    print("| shape | split | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for r in rows:
        vals = [r.get(c, math.nan) for c in cols]
        print(f"| {r['shape']} | {r['split']} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
