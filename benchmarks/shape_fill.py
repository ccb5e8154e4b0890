"""Shapes read by box fill alone, from `vidiff eval` outputs: a stricter, single-feature judge
beside eval's CNN and geometric shape probes.

Each evaluated video's object fills ``fill`` of its bounding box (the first geometric feature eval
stores per video, vidiff/eval/geometry.py). This reading calls it the shape whose ideal fill is
nearest (square 1, circle pi/4, apex-up triangle 1/2), with no corner, band or aspect evidence, so
a square with rounded corners reads as a circle. Prints, per eval run and split, the share of
videos whose shape is right by fill, the squares right by fill, and the median fill of each shape.

    python benchmarks/shape_fill.py runs/eval-a/metrics.json runs/eval-b/metrics.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

IDEAL_FILL = {"square": 1.0, "circle": math.pi / 4, "triangle": 0.5}


def nearest_shape(fill: float) -> str:
    return min(IDEAL_FILL, key=lambda shape: abs(IDEAL_FILL[shape] - fill))


def caption_shape(caption: str) -> str:
    return next(word for word in caption.split() if word in IDEAL_FILL)


def read(path: str) -> list[dict]:
    """One row per split of the eval run at ``path`` (its metrics.json)."""
    with open(path) as f:
        videos = [v for v in json.load(f)["videos"] if v.get("geo_features")]
    rows = []
    for split in dict.fromkeys(v["split"] for v in videos):
        vs = [v for v in videos if v["split"] == split]
        shapes = [caption_shape(v["caption"]) for v in vs]
        fills = [v["geo_features"][0] for v in vs]
        right = [nearest_shape(f) == s for f, s in zip(fills, shapes, strict=True)]
        squares = [r for r, s in zip(right, shapes, strict=True) if s == "square"]
        medians = {
            shape: statistics.median(f for f, s in zip(fills, shapes, strict=True) if s == shape)
            for shape in IDEAL_FILL
            if shape in shapes
        }
        rows.append(
            {
                "run": path,
                "split": split,
                "n": len(vs),
                "right": sum(right) / len(vs),
                "squares": f"{sum(squares)}/{len(squares)}",
                "median_fill": medians,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", help="metrics.json files written by `vidiff eval`")
    args = parser.parse_args()
    print(
        "| eval run | split | N | shape right by fill | squares right | median fill "
        + " / ".join(IDEAL_FILL)
        + " |"
    )
    print("|---|---|---|---|---|---|")
    for path in args.metrics:
        for row in read(path):
            fills = " / ".join(f"{row['median_fill'].get(s, float('nan')):.3f}" for s in IDEAL_FILL)
            print(
                f"| {row['run']} | {row['split']} | {row['n']} | {row['right']:.1%} | "
                f"{row['squares']} | {fills} |"
            )


if __name__ == "__main__":
    main()
