"""Attention pattern against training compute: full, factorized and windowed attention in the latent
DiT at two widths, held-out loss against training FLOPs (docs/latent-dit.md, "Scaling note").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_quality.py --steps 1000 --jobs 2

Every arm trains ``configs/shapes-dit-tiny.yaml`` (MovingShapes 16x32x32 clips as ``vae-shapes``
latents, 16 frames x 4x4 tokens of 1x2x2 patches) with the same data, seeds and recipe, changing
only ``model.net.attention`` and the width: ``tiny`` is the dit-tiny preset (128 wide, 6 blocks) and
``micro`` half as wide and 4 blocks deep (64 wide). Attention modes (vidiff.models.dit): ``full``
(every token sees all 256), ``factorized`` (Latte: spatial blocks within a frame alternate with
temporal blocks along one position's 16 frames), ``windowed`` (WALT: spatial blocks over the whole
frame alternate with 4x4x4 spatio-temporal windows).

**Compute.** A training step's FLOPs are counted once per arm by
``torch.utils.flop_counter.FlopCounterMode`` on the network's forward and backward for one batch
(matmuls and attention; the VAE encode and the text encoder are the same for every arm and left
out); an arm's training FLOPs are that times its steps.

**Quality.** Every ``--eval-every`` steps the arm's EMA weights (what ``vidiff export`` ships) are
scored on a fixed held-out set: ``--val-clips`` clips of MovingShapes drawn from an independent
seed, each with its own fixed noise, noise level, caption dropout and frame mask (the training
loss's own seeded draws, so every arm sees exactly the same validation problems), mean flow loss.
The final EMA weights are also exported (ARM/model) and scored by ``vidiff eval -n --num-videos
--steps 16 --splits train`` (in-distribution adherence, flicker, FD; ``--num-videos 0`` skips it).
Arms train in their own subprocess on one thread, ``--jobs`` at
a time, two arms side by side sharing the machine alike; finished arms are skipped on a rerun.
Writes OUT/<arm>.json and OUT/results.json and prints Markdown tables.
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

import torch
from job_pool import run_pool
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/shapes-dit-tiny.yaml"
MODES = ("full", "factorized", "windowed")
WIDTHS = {
    "micro": ["model.net.hidden_size=64", "model.net.depth=4"],
    "tiny": [],  # the dit-tiny preset: 128 wide, 6 blocks
}
VAL_SEED = 7  # MovingShapes seed of the validation clips (training draws seed 0)


def _arm_overrides(mode: str, width: str, out: Path) -> list[str]:
    return [
        f"model.net.attention={mode}",
        *WIDTHS[width],
        f"train.out_dir={out}",
        "train.ckpt_every=1000000000",
        "train.sample_every=0",
        "train.log_every=50",
    ]


def validation_set(pipe, num_clips: int) -> tuple[torch.Tensor, list[str]]:
    """The fixed held-out clips as latents (encoded once) and their captions."""
    from vidiff.data.shapes import MovingShapes

    ds = MovingShapes(split="train", seed=VAL_SEED, num_frames=16, size=32)
    items = [ds[i] for i in range(num_clips)]
    video = torch.stack([it["video"] for it in items])
    with torch.no_grad():
        latents = torch.cat([pipe.to_model_space(v) for v in video.split(16)])
    return latents, [it["caption"] for it in items]


def val_loss(pipe, latents, captions) -> float:
    pipe.eval()
    seeds = list(range(10_000, 10_000 + len(captions)))
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(captions), 16):
            loss = pipe.training_loss(
                latents[i : i + 16], captions[i : i + 16], seeds[i : i + 16], encoded=True
            )
            total += loss.sum().item()
    return total / len(captions)


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward_flops(grad, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad, query, key, value)


def step_flops(pipe, batch: int) -> float:
    """Forward + backward FLOPs of one training batch through the network (latents precomputed).
    torch's counter knows the CUDA attention kernels; the CPU one (unmasked SDPA) is added here with
    the same formulas, so full and factorized attention are counted (masked SDPA, the windowed
    mode's padding, runs as counted matmuls)."""
    aten = torch.ops.aten
    cpu_attention = {
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops,
    }
    c, t, h, w = pipe.sample_shape
    x0 = torch.randn(batch, c, t, h, w)
    pipe.train()
    with FlopCounterMode(display=False, custom_mapping=cpu_attention) as counter:
        loss = pipe.training_loss(x0, ["a red circle"] * batch, list(range(batch)), encoded=True)
        loss.mean().backward()
    pipe.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def train_worker(a: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    from vidiff.config import load_config
    from vidiff.data.shapes import MovingShapes
    from vidiff.pipeline import VideoPipeline
    from vidiff.registry import resolve_config_models
    from vidiff.train.data import ensure_vocabulary
    from vidiff.train.loop import Hooks, train

    arm_dir = Path(a.out)
    overrides = _arm_overrides(a.mode, a.width, arm_dir / "run") + [f"train.steps={a.steps}"]
    cfg = resolve_config_models(load_config(CONFIG, overrides))
    ensure_vocabulary(cfg, MovingShapes())  # as train() does, for the probe built first
    probe = VideoPipeline(cfg.pipeline_config())
    params = sum(p.numel() for p in probe.net.parameters())
    flops = step_flops(probe, cfg.train.batch_size)
    latents, captions = validation_set(probe, a.val_clips)
    del probe
    points: list[dict] = []
    clock = [time.perf_counter()]  # training time only: scoring moves the start forward

    def after_step(step: int, ema_model) -> bool:
        if step == a.steps:
            ema_model.save(arm_dir / "model")
        if step % a.eval_every == 0 or step == a.steps:
            paused = time.perf_counter()
            loss = val_loss(ema_model, latents, captions)
            points.append(
                {"step": step, "pflops": flops * step / 1e15, "val_loss": loss,
                 "train_s": round(paused - clock[0], 1)}
            )  # fmt: skip
            clock[0] += time.perf_counter() - paused
            print(json.dumps(points[-1]), flush=True)
        return False

    train(cfg, hooks=Hooks(after_step=after_step), progress=False)
    record = {"mode": a.mode, "width": a.width, "params": params, "gflop_step": flops / 1e9,
              "batch": cfg.train.batch_size, "overrides": overrides, "points": points}  # fmt: skip
    (arm_dir.parent / f"{arm_dir.name}.json").write_text(json.dumps(record, indent=1))


def start_arm(a: argparse.Namespace, mode: str, width: str) -> subprocess.Popen | None:
    """Train then score one arm, as one shell job; None when both are already done."""
    arm_dir = Path(a.out) / f"{width}-{mode}"
    trained = arm_dir.with_suffix(".json").is_file()
    if trained and (not a.num_videos or (arm_dir / "eval" / "metrics.json").is_file()):
        return None
    arm_dir.mkdir(parents=True, exist_ok=True)
    cmds = []
    if not trained:
        cmds.append([sys.executable, __file__, "--worker", "--mode", mode, "--width", width,
                     "--out", str(arm_dir), "--steps", str(a.steps), "--eval-every",
                     str(a.eval_every), "--val-clips", str(a.val_clips)])  # fmt: skip
    if a.num_videos:
        vidiff = str(Path(sys.executable).parent / "vidiff")
        cmds.append([vidiff, "eval", "--model", str(arm_dir / "model"), "-n", str(a.num_videos),
                     "--steps", "16", "--splits", "train", "--out", str(arm_dir / "eval"),
                     "--no-progress"])  # fmt: skip
    print(f"== {arm_dir.name}", file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = " && ".join(subprocess.list2cmdline(c) for c in cmds)
    with open(arm_dir / "log.txt", "a") as log:
        return subprocess.Popen(script, shell=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def load_row(out: Path, width: str, mode: str) -> dict | None:
    """An arm's training record with its ``vidiff eval`` figures (``eval``, when scored)."""
    path = out / f"{width}-{mode}.json"
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    metrics = out / f"{width}-{mode}" / "eval" / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        row["eval"] = {k: m.get(k) for k in ("adherence", "direction_ok", "flicker_median", "fd")}
    return row


def loss_at(row: dict, tflop: float) -> float | None:
    """The arm's held-out loss at ``tflop`` of training, linear between its two nearest scoring
    points; None outside them (no extrapolation)."""
    pts = [(p["pflops"] * 1e3, p["val_loss"]) for p in row["points"]]
    for (f0, l0), (f1, l1) in zip(pts, pts[1:]):
        if f0 <= tflop <= f1:
            return l0 + (l1 - l0) * (tflop - f0) / (f1 - f0)
    return None


def print_tables(rows: list[dict]) -> None:
    print(
        "| width | attention | params | GFLOP / step | TFLOP in 1,000 steps | s / step "
        "| held-out loss at 250 / 500 / 750 / 1,000 steps | adherence (direction) | flicker | FD |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        last, e = r["points"][-1], r.get("eval")
        scored = "- | - | -" if e is None else (
            f"{100 * e['adherence']:.0f}% ({100 * e['direction_ok']:.0f}%) "
            f"| {e['flicker_median']:.4f} | {e['fd']:.1f}")  # fmt: skip
        losses = " / ".join(f"{p['val_loss']:.3f}" for p in r["points"])
        print(f"| {r['width']} | {r['mode']} | {r['params'] / 1e6:.2f}M | {r['gflop_step']:.1f} "
              f"| {last['pflops'] * 1e3:.1f} | {last['train_s'] / last['step']:.2f} | {losses} "
              f"| {scored} |")  # fmt: skip
    # Equal compute within a width: each arm's loss at the compute every arm of that width reached.
    print("\nAt equal training compute within a width (the least any arm of it spent):\n")
    print("| width | TFLOP | attention | steps at that compute | held-out loss |")
    print("|---|---|---|---|---|")
    for width in dict.fromkeys(r["width"] for r in rows):
        same = [r for r in rows if r["width"] == width]
        budget = min(r["points"][-1]["pflops"] for r in same) * 1e3
        for r in same:
            loss = loss_at(r, budget)
            steps = budget * 1e12 / (r["gflop_step"] * 1e9)
            shown = "-" if loss is None else f"{loss:.4f}"
            print(f"| {width} | {budget:.1f} | {r['mode']} | {steps:.0f} | {shown} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="training steps per arm")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--val-clips", type=int, default=128)
    ap.add_argument("--num-videos", type=int, default=32, help="vidiff eval videos (0: none)")
    ap.add_argument("--widths", nargs="+", default=list(WIDTHS), choices=list(WIDTHS))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="runs/attention-quality")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--width", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return train_worker(a)
    arms = [(mode, width) for width in a.widths for mode in a.modes]
    run_pool((functools.partial(start_arm, a, mode, width) for mode, width in arms), a.jobs)
    rows = [r for w in a.widths for m in a.modes if (r := load_row(Path(a.out), w, m))]
    Path(a.out, "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{a.steps} steps per arm, batch {rows[0]['batch'] if rows else '?'}, one thread, "
          f"{a.jobs} arms at a time; held-out loss on {a.val_clips} clips\n")  # fmt: skip
    if rows:
        print_tables(rows)


if __name__ == "__main__":
    main()
