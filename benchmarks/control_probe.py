"""Score a control model with vidiff's probes (docs/control.md).

    python benchmarks/control_probe.py trajectory --model DIR [--n 64] [--steps 32] [--record]
    python benchmarks/control_probe.py camera --model DIR [--n 60] [--steps 32] [--cfg W]
        [--no-first-frame] [--record]

    python benchmarks/control_probe.py camera --ground-truth [--n 120]
    python benchmarks/control_probe.py trajectory --ground-truth [--n 64]

Prints the summary as JSON (and writes every video's row with --out FILE.json). With
``--ground-truth`` it scores the datasets' own held-out clips instead of a model (the probes'
validation: what a perfect model would get). ``--record`` writes the summary into the model folder
as ``eval.json`` (what ``vidiff models``, ``vidiff serve`` and the demo show), as ``vidiff eval
--record`` does for the shape probes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vidiff.eval.control import camera_probe, trajectory_probe
from vidiff.pipeline import VideoPipeline


def ground_truth(kind: str, n: int, seed: int) -> dict:
    """The probe on held-out ground-truth clips: MovingShapes (measured path against its
    centroids) or CameraMoves (the move read against the one rendered)."""
    import numpy as np

    from vidiff.data import build_dataset
    from vidiff.eval.motion import measure_trajectory, read_camera, trajectory_errors

    if kind == "trajectory":
        ds = build_dataset("shapes", num_items=n, split="heldout", seed=seed)
        errs = []
        for i in range(n):
            item = ds[i]
            c = item["gt"]["objects"][0]["centroids"]
            errs.append(trajectory_errors(measure_trajectory(item["video"]), c))
        ends = np.array([e["endpoints"] for e in errs])
        return {"n": n, "mean_px": float(np.mean([e["mean"] for e in errs])),
                "endpoints_within_3px": float(np.mean(ends <= 3)), "max_endpoint_px": float(ends.max())}  # fmt: skip
    ds = build_dataset("camera", num_items=n, split="heldout", seed=seed)
    rows = []
    for i in range(n):
        item = ds[i]
        read = read_camera(item["video"])
        rows.append((item["gt"]["move"], read["move"], abs(read["speed"] - item["gt"]["speed"])))
    right = [r for r in rows if r[0] == r[1]]
    by_kind = {}
    for kind_ in ("pan", "zoom"):
        errs = [e for m, _, e in right if m.startswith(kind_)]
        by_kind[f"{kind_}_speed_error"] = float(np.mean(errs)) if errs else float("nan")
    return {"n": n, "move_acc": len(right) / n, **by_kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["trajectory", "camera"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--ground-truth", action="store_true")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cfg", type=float, default=None)
    parser.add_argument(
        "--no-first-frame", action="store_true", help="camera: the model draws the first frame"
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--record", action="store_true", help="write eval.json into --model")
    args = parser.parse_args()
    if args.ground_truth:
        print(json.dumps(ground_truth(args.kind, args.n, args.seed), indent=1))
        return
    if args.model is None:
        parser.error("give --model DIR or --ground-truth")
    pipe = VideoPipeline.load(args.model)
    probe = trajectory_probe if args.kind == "trajectory" else camera_probe
    options = {"steps": args.steps, "cfg": args.cfg, "batch_size": args.batch_size}
    if args.kind == "camera":
        options["first_frame"] = not args.no_first_frame
    result = probe(pipe, n=args.n, seed=args.seed, **options)
    print(json.dumps(result["summary"], indent=1))
    if args.record:
        record(result["summary"], pipe, Path(args.model), args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


def record(summary: dict, pipe: VideoPipeline, model: Path, args) -> None:
    """``model/eval.json``: the probe's summary as one row, with the command that measured it."""
    from vidiff.eval import report
    from vidiff.files import EVAL_FILE

    d = pipe.config.diffusion
    row = {
        "setting": f"{args.steps or d.steps} {d.sampler} steps, cfg {args.cfg or d.cfg:g}"
        + (", first frame drawn by the model" if getattr(args, "no_first_frame", False) else ""),
        "num_videos": summary["n"],
        **{k: v for k, v in summary.items() if k != "n"},
    }
    figures = {
        "command": "python benchmarks/control_probe.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d"),
        "rows": [row],
    }
    print(f"recorded the figures in {report.write_json(figures, model / EVAL_FILE)}")


if __name__ == "__main__":
    main()
