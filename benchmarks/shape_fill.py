"""Shapes read by box fill alone, from `vidiff eval` outputs: a stricter, single-feature judge
beside eval's CNN and geometric shape probes.

Each evaluated video's object fills ``fill`` of its bounding box (the first geometric feature eval
stores per video, :mod:`vidiff.eval.geometry`). This reading calls it the shape whose ground-truth
fill is nearest -- the geometric probe's prototypes: the median fill of the dataset's own renders at
the clip's frame size (square 1, circle about pi/4, apex-up triangle a little over 1/2) -- with no
corner, band or aspect evidence, so a square with rounded corners reads as a circle. Prints, per
eval run and split, the share of single-object videos whose shape is right by fill, the squares
right by fill, and the median fill of each shape next to the data's.

    python benchmarks/shape_fill.py runs/eval-a/metrics.json runs/eval-b/metrics.json [--size 32]
"""

from __future__ import annotations

import argparse
import json
import statistics

from vidiff.data.shapes import parse_caption
from vidiff.eval.geometry import FEATURES, prototypes

FILL = FEATURES.index("fill")


def ground_truth_fill(size: int) -> dict[str, float]:
    """The fill of each shape as the dataset draws it at frame size ``size``."""
    return {shape: features[FILL] for shape, features in prototypes(size).items()}


def read(path: str, truth: dict[str, float]) -> list[dict]:
    """One row per split of the eval run at ``path`` (its metrics.json): its single-object videos
    read by fill against ``truth`` (shape -> ground-truth fill)."""
    with open(path) as f:
        videos = [v for v in json.load(f)["videos"] if v.get("geo_features")]
    rows = []
    for split in dict.fromkeys(v["split"] for v in videos):
        objects = [(parse_caption(v["caption"]), v) for v in videos if v["split"] == split]
        shapes = [o[0]["shape"] for o, _ in objects if len(o) == 1]
        fills = [v["geo_features"][FILL] for o, v in objects if len(o) == 1]
        read_as = [min(truth, key=lambda shape: abs(truth[shape] - f)) for f in fills]
        right = [r == s for r, s in zip(read_as, shapes, strict=True)]
        squares = [r for r, s in zip(right, shapes, strict=True) if s == "square"]
        medians = {
            shape: statistics.median(f for f, s in zip(fills, shapes, strict=True) if s == shape)
            for shape in truth
            if shape in shapes
        }
        rows.append(
            {
                "run": path,
                "split": split,
                "n": len(shapes),
                "right": sum(right) / len(shapes),
                "squares": f"{sum(squares)}/{len(squares)}",
                "median_fill": medians,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", help="metrics.json files written by `vidiff eval`")
    parser.add_argument("--size", type=int, default=32, help="the clips' frame size (default 32)")
    args = parser.parse_args()
    truth = ground_truth_fill(args.size)
    names = " / ".join(truth)
    print(f"| eval run | split | N | shape right by fill | squares right | median fill {names} |")
    print("|---|---|---|---|---|---|")
    data = " / ".join(f"{truth[s]:.3f}" for s in truth)
    print(f"| ground-truth renders at {args.size} px | | | | | {data} |")
    for path in args.metrics:
        for row in read(path, truth):
            fills = " / ".join(f"{row['median_fill'].get(s, float('nan')):.3f}" for s in truth)
            print(
                f"| {row['run']} | {row['split']} | {row['n']} | {row['right']:.1%} | "
                f"{row['squares']} | {fills} |"
            )


if __name__ == "__main__":
    main()
