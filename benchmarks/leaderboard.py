"""The lineage leaderboard: GAN, VideoGPT and vidiff's diffusion models on MovingShapes.

``python benchmarks/leaderboard.py`` (``make leaderboard``) scores every exported model listed in
:data:`ENTRIES` that exists on disk with ``vidiff eval --model DIR --num-videos N`` (the same prompts
and seeds for all, in-distribution and held-out colour-shape pairs; FD/KID against the real clips
of each split) -- reusing ``<out>/<name>/metrics.json`` when it is there -- and adds what eval does
not measure:

* **parameters** of the exported model (the VideoGPT row: VQ-VAE + prior);
* **training wall-clock** from the run's ``metrics.jsonl`` (logged steps over their logged speed; a
  resume's gap not counted: the machine's 2 shared cores, ``OMP_NUM_THREADS=1``);
* **mode collapse**: mean RMS pixel distance between clips of one prompt across 8 seeds (8 prompts),
  next to the same measure on real clips sharing a caption; ``dupes`` counts near-identical pairs;
* **codebook collapse** (VideoGPT): codes used and perplexity of the VQ-VAE on the real clips.

Rows of models recorded elsewhere (the shipped student's ``eval.json``; the teacher and the latent
DiT from docs/default-model.md and docs/latent-dit.md) are copied with their source and command.
Writes ``docs/leaderboard.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# name, exported model, training run, the commands that reproduce it
ENTRIES = [
    ("GAN (MoCoGAN-style)", "runs/shapes-gan/model", ["runs/shapes-gan"],
     "vidiff train configs/shapes-gan.yaml; vidiff export runs/shapes-gan -o runs/shapes-gan/model"),
    ("GAN with matching-aware critics (ablation)", "runs/shapes-gan-matching/model",
     ["runs/shapes-gan-matching"],
     "vidiff train configs/shapes-gan.yaml model.net.mismatch_weight=0.5 "
     "train.out_dir=runs/shapes-gan-matching; vidiff export runs/shapes-gan-matching -o "
     "runs/shapes-gan-matching/model"),
    ("VideoGPT (per-frame VQ-VAE + axial prior)", "runs/shapes-videogpt/model",
     ["runs/shapes-vqvae", "runs/shapes-videogpt"],
     "vidiff train configs/shapes-vqvae.yaml; vidiff export runs/shapes-vqvae -o "
     "vidiff/assets/shapes-vqvae (= make vqvae); vidiff train configs/shapes-videogpt.yaml; "
     "vidiff export runs/shapes-videogpt -o runs/shapes-videogpt/model"),
]  # fmt: skip
# Shipped models: their eval.json (recorded at N = 256) makes their rows.
# folder, label, network name, parameter prefix, training wall-clock, make target
SHIPPED = [
    ("vidiff/assets/default-model", "pixel U-Net, shipped 8-step student", "unet-tiny", "denoiser.",
     "~3 h (5,000 steps) + 36 min distillation + 17 min refinement", "default-model"),
    ("vidiff/assets/shapes-dit", "latent DiT `shapes-dit` on vae-shapes, shipped", "dit-tiny",
     "denoiser.", "37 min (6,000 steps) + 15 min on 5 clip shapes, 2 threads; VAE 44 min",
     "dit-model"),
]  # fmt: skip

RECORDED = [
    # name, N, adherence in / held-out, flicker, jitter, FD in (floor), s/video, params, wall-clock, source
    # The first short runs (2026-12-04, beside other jobs; their folders are gone).
    ("GAN, first short run (400 steps)", 64, "0.0% / 0.0%", "0.0033", "0.25", "125.9 / 142.1", "0.15",
     "0.33M", "37 min (400 steps)",
     "this page, 2026-12-04; `vidiff train configs/shapes-gan.yaml train.steps=400`"),
    ("VideoGPT, 3D-conv x4-time VQ-VAE before the codebook fix", 64, "0.0% / 0.0%", "0.0002",
     "n/a", "175.5 / 175.8", "1.21", "1.46M", "41 min (300 + 300 steps)",
     "this page, 2026-12-04 (7 of 256 codes used; the old restart rule is gone, so not reproducible)"),
    ("VideoGPT, 3D-conv x4-time VQ-VAE, restart-fixed", 64, "0.0% / 0.0%", "0.0007", "n/a",
     "171.5 / 172.6", "0.34", "1.46M", "17 min (150 + 600 steps)",
     "this page, 2026-12-04; `vidiff train configs/shapes-vqvae.yaml model.preset=vqvae-tiny-t4 "
     "train.steps=150 train.warmup_steps=20 train.decay_steps=0 train.out_dir=V`, `vidiff train "
     "configs/shapes-videogpt.yaml model.vae=V/model model.net.axial_positions=false train.steps=600 "
     "train.decay_steps=0`"),
    ("pixel U-Net teacher of the shipped model, DPM++ 16 steps, CFG 2", 128, "99.2% / 98.4%", "0.0097", "0.18",
     "5.0 / 4.2", "7.4", "unet-tiny", "~3 h (5,000 steps)",
     "docs/default-model.md; `vidiff eval --model runs/default-model/teacher --num-videos 128`"),
    ("latent DiT on vae-tiny (early run, RoPE only)", 64, "20.3% / 3.1%", "0.0014", "0.94", "n/a", "0.9",
     "dit-tiny", "~24 min (1,750 steps) + VAE",
     "docs/latent-dit.md; `vidiff train configs/shapes-dit-tiny.yaml model.vae=VAE_TINY "
     "model.net.patch_size=[1,1,1] model.net.position=rope model.net.layout_prior=false`, `vidiff eval --model M --num-videos 64 --steps 16`"),
    ("latent DiT on vae-shapes (early run, RoPE only)", 64, "25.0% / 25.0%", "0.0006", "0.65",
     "24.4 / 33.1", "0.61", "dit-tiny", "41 min (4,000 steps) + VAE 44 min",
     "docs/latent-dit.md; `vidiff train configs/shapes-dit-tiny.yaml train.steps=4000 "
     "model.net.position=rope model.net.layout_prior=false`, "
     "`vidiff eval --model M --num-videos 64 --steps 16`"),
]  # fmt: skip


def parameters(model) -> int:
    return sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())


def wall_clock(runs: list[str]) -> tuple[float, str] | None:
    """Seconds of training summed over ``runs`` and their steps: each logged row's steps divided by
    its ``it_per_s``, a resumed run's repeated steps counted once (its last log), so the time a run
    stood stopped between a crash and its resume is not counted."""
    total, steps = 0.0, []
    if not runs:
        return None
    for run in runs:
        path = ROOT / run / "metrics.jsonl"
        if not path.is_file():
            return None
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        by_step = {r["step"]: r for r in rows if r.get("it_per_s") and "step" in r}
        if not by_step:
            return None
        previous = 0
        for step in sorted(by_step):
            total += (step - previous) / by_step[step]["it_per_s"]
            previous = step
        steps.append(str(previous))
    return total, " + ".join(steps)


@torch.no_grad()
def diversity(pipe, prompts: list[str], seeds: int = 8) -> dict[str, float]:
    """Mean RMS distance between a prompt's clips across ``seeds`` seeds, and near-duplicates."""
    dists = []
    for k, prompt in enumerate(prompts):
        clips = pipe.generate([prompt] * seeds, [10_000 * (k + 1) + s for s in range(seeds)])
        for i, j in itertools.combinations(range(seeds), 2):
            dists.append(float((clips[i] - clips[j]).square().mean().sqrt()))
    return {"diversity": sum(dists) / len(dists), "dupes": sum(d < 0.01 for d in dists),
            "pairs": len(dists)}  # fmt: skip


def real_diversity(size: int, num_frames: int, n: int = 600) -> float:
    """The same measure on real MovingShapes clips that share a caption."""
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", split="train", num_items=n, num_frames=num_frames, size=size)
    groups: dict[str, list[torch.Tensor]] = {}
    for i in range(n):
        item = ds[i]
        groups.setdefault(item["caption"], []).append(item["video"])
    dists = [float((a - b).square().mean().sqrt())
             for clips in groups.values() for a, b in itertools.combinations(clips[:8], 2)]  # fmt: skip
    return sum(dists) / max(1, len(dists))


def evaluate(model_dir: Path, out: Path, num_videos: int) -> dict:
    """``vidiff eval --model DIR --num-videos N --out OUT`` (skipped when OUT/metrics.json exists)."""
    metrics_path = out / "metrics.json"
    if not metrics_path.is_file():
        cmd = [sys.executable, "-m", "vidiff.cli", "eval", "--model", str(model_dir),
               "--num-videos", str(num_videos), "--out", str(out), "--no-progress"]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(metrics_path.read_text())


def fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=64)
    parser.add_argument("--out", default="runs/leaderboard")
    parser.add_argument("--doc", default="docs/leaderboard.md")
    args = parser.parse_args()
    from vidiff.eval.reconstruction import reconstruction_metrics
    from vidiff.families import load_model
    from vidiff.models.vqvae import codebook_usage

    rows, extras = [], []
    real_div = None
    for name, model, runs, command in ENTRIES:
        model_dir = ROOT / model
        if not (model_dir / "config.json").is_file():
            print(f"skipping {name}: {model} not found")
            continue
        out = ROOT / args.out / model_dir.parent.name
        t0 = time.time()
        m = evaluate(model_dir, out, args.num_videos)
        pipe = load_model(model_dir)
        prompts = list(dict.fromkeys(m_prompts(m, args.num_videos)))[:8]
        div = diversity(pipe, prompts)
        if real_div is None:
            real_div = real_diversity(pipe.size, pipe.num_frames)
        clock = wall_clock(runs)
        split = m["runs"][0]["splits"]
        tr, ho = split.get("train", {}), split.get("heldout", {})
        rows.append({
            "name": name, "n": m["num_videos"],
            "adherence": f"{100 * tr.get('adherence', math.nan):.1f}% / "
                         f"{100 * ho.get('adherence', math.nan):.1f}%",
            "flicker": fmt(tr.get("flicker_median"), 4), "jitter": fmt(tr.get("jitter_median"), 2),
            "fd": f"{fmt(tr.get('fd'), 1)} ({fmt(tr.get('fd_floor'), 1)}) / "
                  f"{fmt(ho.get('fd'), 1)} ({fmt(ho.get('fd_floor'), 1)})",
            "kid": f"{fmt(tr.get('kid'), 3)} / {fmt(ho.get('kid'), 3)}",
            "spv": fmt(tr.get("sec_per_video"), 2), "params": f"{parameters(pipe) / 1e6:.2f}M",
            "clock": "n/a" if clock is None else f"{clock[0] / 60:.0f} min ({clock[1]} steps)",
            "div": f"{div['diversity']:.3f} ({div['dupes']}/{div['pairs']})",
            "command": command,
        })  # fmt: skip
        if getattr(pipe, "family", "") == "videogpt":
            ds_clips = real_clips(pipe, args.num_videos)
            usage = codebook_usage(pipe.vqvae, ds_clips)
            rec = reconstruction_metrics(
                pipe.vqvae, [{"video": v} for v in ds_clips], len(ds_clips)
            )
            extras.append(f"- **{name}** codebook on {len(ds_clips)} real held-out clips: "
                          f"{usage['codes_used']} of {pipe.vqvae.config.codebook_size} codes used, "
                          f"perplexity {usage['perplexity']:.1f}, EMA-alive {100 * usage['alive']:.0f}%, "
                          f"{usage['restarts']} dead-code restarts in training; reconstruction "
                          f"PSNR {rec['psnr']:.1f} dB, SSIM {rec['ssim']:.3f}, colour error {rec['colour_error']:.1f} levels.")  # fmt: skip
        print(f"{name}: {rows[-1]} ({time.time() - t0:.0f} s)", flush=True)
    write_doc(ROOT / args.doc, rows, extras, real_div, args, shipped_rows())


def m_prompts(metrics: dict, n: int) -> list[str]:
    """The in-distribution eval prompts (re-derived: metrics.json keeps verdicts, not prompts)."""
    from vidiff.eval.runner import eval_sets

    sets = eval_sets(metrics["dataset"], n, 16, 32, metrics.get("seed", 0), ("train",))
    return sets[0].prompts


def real_clips(pipe, n: int) -> torch.Tensor:
    from vidiff.eval.runner import eval_sets

    return eval_sets("shapes", n, pipe.num_frames, pipe.size, 0, ("heldout",))[0].real


def shipped_rows() -> list[tuple]:
    """The shipped models' rows from their recorded ``eval.json`` (the network's parameters only)."""
    from vidiff.registry import parameter_count

    rows = []
    for folder, label, network, prefix, clock, target in SHIPPED:
        if not (ROOT / folder / "eval.json").is_file():
            continue
        figures = json.loads((ROOT / folder / "eval.json").read_text())
        r = figures["rows"][0]
        params = parameter_count(ROOT / folder / "model.safetensors", prefix)
        rows.append((f"{label} ({r['setting']})", r["num_videos"],
                     f"{100 * r['adherence']:.1f}% / {100 * r['adherence_heldout']:.1f}%",
                     f"{r['flicker_median']:.4f}", f"{r['jitter_median']:.2f}",
                     f"{r['fd']:.1f} / {r['fd_heldout']:.1f}", f"{r['sec_per_video']:.2f}",
                     f"{network}, {params / 1e6:.2f}M", clock,
                     f"{folder}/eval.json: `{figures['command']}`; `make {target}`"))  # fmt: skip
    return rows


def write_doc(path: Path, rows, extras, real_div, args, shipped: list[tuple]) -> None:
    head = ("| model | N / split | adherence in / held-out | median flicker | median jitter px | "
            "FD in (floor) / held-out (floor) | KID in / held-out | s / video | parameters | "
            "training wall-clock | same-prompt diversity (dupes) |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['name']} | {r['n']} | {r['adherence']} | {r['flicker']} | {r['jitter']} | "
                     f"{r['fd']} | {r['kid']} | {r['spv']} | {r['params']} | {r['clock']} | {r['div']} |")  # fmt: skip
    rec = ["| model | N / split | adherence in / held-out | median flicker | median jitter px | "
           "FD in / held-out | s / video | network | training wall-clock | source |",
           "|" + "---|" * 10]  # fmt: skip
    for r in [*shipped, *RECORDED]:
        rec.append("| " + " | ".join(str(x) for x in r) + " |")
    commands = [f"- **{r['name']}**: `{r['command']}`, then "
                f"`vidiff eval --model <model> --num-videos {args.num_videos}`" for r in rows]  # fmt: skip
    text = TEMPLATE.format(
        measured="\n".join(lines), recorded="\n".join(rec), commands="\n".join(commands),
        extras="\n".join(extras) or "(no VideoGPT model measured)",
        real_div=fmt(real_div, 3), n=args.num_videos, when=time.strftime("%Y-%m-%d"),
    )  # fmt: skip
    # Hand-written notes below the marker survive a rerun.
    old = path.read_text() if path.is_file() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else NOTES + "\n"
    path.write_text(text + "\n" + notes)
    print(f"wrote {path}")


NOTES = "<!-- notes: written by hand, kept by benchmarks/leaderboard.py -->"


TEMPLATE = """\
# Leaderboard: the field's lineage on MovingShapes

A video GAN, VideoGPT and vidiff's diffusion models scored by the same `vidiff eval` (the same
prompts and seeds per split, in-distribution and held-out colour-shape pairs) on the 2 shared CPU
cores of the development machine. Made by `make leaderboard` (`benchmarks/leaderboard.py`, {when}).
Read it with [evaluation.md](evaluation.md): adherence is the share of clips whose colour, shape and
direction all match the prompt; flicker and jitter are medians (lower is steadier); FD / KID use
vidiff's shipped video features against the real clips of each split, next to the real-vs-real floor
at the same N (compare FD only at equal N).

## Measured here (N = {n} per split)

{measured}

**Mode collapse** is measured, not assumed: "same-prompt diversity" is the mean RMS pixel distance
between the clips one prompt gives under 8 seeds (8 prompts, 224 pairs), with the count of
near-identical pairs (RMS < 0.01); real MovingShapes clips sharing a caption differ by
{real_div} on the same measure. **Codebook collapse**, and what the codes can express at best (the
VQ-VAE's reconstruction of the same clips):

{extras}

Commands (training with `OMP_NUM_THREADS=1`):

{commands}

## Recorded elsewhere (not re-measured here)

{recorded}

## Reading it

The GAN and VideoGPT rows trained on one thread each of the 2-core machine, side by side (68 and
98 min: about 70-100 thread-minutes); the shipped latent DiT took 52 min on both threads (~104
thread-minutes, plus its VAE's 44 min), the shipped pixel U-Net about 3 hours plus distillation. So
the latent DiT is the diffusion row at a comparable budget; the U-Net had more. These are small CPU
budgets: they show where each family stands after them, not what each can reach.
"""


if __name__ == "__main__":
    main()
