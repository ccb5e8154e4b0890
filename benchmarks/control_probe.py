"""Score a control model with vidiff's probes (docs/control.md).

    python benchmarks/control_probe.py trajectory --model DIR [--n 64] [--steps 32]
    python benchmarks/control_probe.py camera --model DIR [--n 60] [--steps 32]

Prints the summary as JSON (and writes every video's row with --out FILE.json).
"""

from __future__ import annotations

import argparse
import json

from vidiff.eval.control import camera_probe, trajectory_probe
from vidiff.pipeline import VideoPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["trajectory", "camera"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    pipe = VideoPipeline.load(args.model)
    probe = trajectory_probe if args.kind == "trajectory" else camera_probe
    result = probe(pipe, n=args.n, seed=args.seed, steps=args.steps, batch_size=args.batch_size)
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
