"""Route B's data efficiency (docs/inflation.md): an inflated image model whose temporal layers alone
train on K clips, against the same U-Net trained from scratch on the same K clips, for the same
training wall-clock, scored by ``vidiff eval``.

    make image-model     # the image model, inflated: vidiff/assets/shapes-image-video
    OMP_NUM_THREADS=1 python benchmarks/data_efficiency.py --budget-min 10 --ks 64 256 1024 all \
        --num-videos 32 --steps 16 --out runs/data-efficiency

Arms, each trained in its own subprocess on one CPU thread, ``--jobs`` at a time (the two arms of one
K side by side, so both see the same load):

* ``scratch``: ``configs/shapes-unet-tiny.yaml`` (the default model's recipe), every weight trained.
* ``inflated``: ``configs/shapes-unet-tiny-inflated.yaml`` from ``--image-model``: only the temporal
  layers train; the spatial layers and the text encoder stay as the image model learnt them.
* ``uncaptioned`` (Make-A-Video's split, ``--uncaptioned-ks``): as ``inflated``, but every caption
  of the clips is dropped (``diffusion.p_uncond=1``): text is learnt from captioned images only, and
  motion from clips without captions.

K is the number of distinct training clips (``data.num_items``; MovingShapes draws item i from its
seed, so the 64 clips are among the 256); ``all`` is the full procedural set (a new clip each time).
Each arm trains for ``--budget-min`` minutes of training wall-clock (model building and data
included; the run stops after the first step past the budget; the LR is constant after warm-up, as
a time budget needs), then its EMA weights are scored by ``vidiff eval`` (``--num-videos`` per
split, ``--steps`` sampler steps, seed 0: the same prompts and noise for every arm). The image
model's own training time is not in the budget: it is reported beside the table. Finished arms are
skipped on a rerun. Writes OUT/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from job_pool import run_pool

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "scratch": ("configs/shapes-unet-tiny.yaml", []),
    "inflated": ("configs/shapes-unet-tiny-inflated.yaml", []),
    "uncaptioned": ("configs/shapes-unet-tiny-inflated.yaml", ["diffusion.p_uncond=1.0"]),
}


def train_worker(a: argparse.Namespace) -> None:
    """Train one arm for the budget and save its EMA weights as a model folder."""
    import torch

    torch.set_num_threads(1)
    from vidiff.config import load_config
    from vidiff.train.loop import Hooks, train

    t0 = time.perf_counter()
    arm_dir = Path(a.arm_dir)
    config, extra = ARMS[a.arm]
    overrides = [
        f"train.out_dir={arm_dir / 'run'}",
        "train.steps=1000000000",  # stopped by the budget
        "train.ckpt_every=1000000000",
        "train.sample_every=0",
        "train.log_every=25",
        *extra,
    ]
    if a.arm != "scratch":
        overrides.append(f"model.init={a.image_model}")
    if a.k != "all":
        overrides.append(f"data.num_items={int(a.k)}")
    cfg = load_config(ROOT / config, overrides)
    done: dict = {}

    def after_step(step: int, ema_model) -> bool:
        elapsed = time.perf_counter() - t0
        if elapsed < a.budget_s:
            return False
        ema_model.save(arm_dir / "model")
        done.update(steps=step, train_s=round(elapsed, 1))
        return True

    train(cfg, hooks=Hooks(after_step=after_step), progress=False)
    trainable = "all" if a.arm == "scratch" else "temporal"
    record = {"arm": a.arm, "k": a.k, "trainable": trainable, "overrides": overrides, **done}
    (arm_dir / "train.json").write_text(json.dumps(record, indent=1))


def run_arm(a: argparse.Namespace, arm: str, k: str) -> subprocess.Popen | None:
    """Start one arm's training then scoring, as one shell job; None when it is already done."""
    arm_dir = Path(a.out) / f"{arm}-{k}"
    if (arm_dir / "eval" / "metrics.json").is_file():
        return None
    arm_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    cmds = []
    if not (arm_dir / "train.json").is_file():
        cmds.append([py, __file__, "--worker", "--arm", arm, "--k", k, "--arm-dir", str(arm_dir),
                     "--budget-s", str(a.budget_min * 60), "--image-model", a.image_model])  # fmt: skip
    vidiff = str(Path(py).parent / "vidiff")
    cmds.append([vidiff, "eval", "--model", str(arm_dir / "model"), "-n", str(a.num_videos),
                 "--steps", str(a.steps), "--out", str(arm_dir / "eval"), "--no-progress"])  # fmt: skip
    script = " && ".join(subprocess.list2cmdline(c) for c in cmds)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"== {arm} K={k}", file=sys.stderr, flush=True)
    with open(arm_dir / "log.txt", "a") as log:  # the child keeps its own descriptor
        return subprocess.Popen(script, shell=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def table(a: argparse.Namespace) -> list[dict]:
    rows = []
    for arm_dir in sorted(Path(a.out).glob("*-*")):
        train_json, metrics_json = arm_dir / "train.json", arm_dir / "eval" / "metrics.json"
        if not (train_json.is_file() and metrics_json.is_file()):
            continue
        m = json.loads(metrics_json.read_text())
        rows.append({**json.loads(train_json.read_text()),
                     **{key: m.get(key) for key in ("adherence", "adherence_heldout",
                        "flicker_median", "flicker_median_heldout", "jitter_median")},
                     "colour_shape_direction": [m.get(f"{p}_ok") for p in ("colour", "shape", "direction")]})  # fmt: skip
    order = {name: i for i, name in enumerate(ARMS)}
    rows.sort(key=lambda r: (float("inf") if r["k"] == "all" else int(r["k"]), order[r["arm"]]))
    return rows


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-model", default="shapes-image-video")
    ap.add_argument("--budget-min", type=float, default=10.0, help="training minutes per arm")
    ap.add_argument("--ks", nargs="+", default=["64", "256", "1024", "all"])
    ap.add_argument("--uncaptioned-ks", nargs="*", default=["all"])
    ap.add_argument("--num-videos", type=int, default=32, help="videos per split for vidiff eval")
    ap.add_argument("--steps", type=int, default=16, help="sampler steps for vidiff eval")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="runs/data-efficiency")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)
    ap.add_argument("--k", help=argparse.SUPPRESS)
    ap.add_argument("--arm-dir", help=argparse.SUPPRESS)
    ap.add_argument("--budget-s", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return train_worker(a)
    jobs = [(arm, k) for k in a.ks for arm in ("scratch", "inflated")]
    jobs += [("uncaptioned", k) for k in a.uncaptioned_ks]
    run_pool((functools.partial(run_arm, a, arm, k) for arm, k in jobs), a.jobs)
    rows = table(a)
    Path(a.out, "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{a.budget_min:g} min of training per arm, 1 CPU thread, {a.jobs} arms at a time; "
          f"vidiff eval -n {a.num_videos} --steps {a.steps}\n")  # fmt: skip
    print("| K clips | arm | trains | steps | in-dist. adherence | colour / shape / direction | "
          "held-out adherence | flicker in / held-out | jitter px |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, s, d = (pct(v) for v in r["colour_shape_direction"])
        print(f"| {r['k']} | {r['arm']} | {r['trainable']} | {r.get('steps')} | {pct(r['adherence'])} "
              f"| {c} / {s} / {d} | {pct(r['adherence_heldout'])} "
              f"| {r['flicker_median']:.4f} / {r['flicker_median_heldout']:.4f} "
              f"| {r['jitter_median']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
