"""How fast a video autoencoder learns MovingShapes on CPU: held-out PSNR after a fixed wall-clock.

    OMP_NUM_THREADS=1 python benchmarks/vae_learning.py --variants vae-tiny vae-shapes --minutes 4

Each variant trains from the same seed on the same stream of 17-frame 32 x 32 training clips (batch
4, AdamW, the learning rate warmed up over 50 steps, gradients clipped at 1) with the objective
``vidiff train`` uses (:class:`~vidiff.train.objectives.autoencoder.VAEObjective`), one thread, for
``--minutes`` of wall-clock; every minute it prints the PSNR of posterior-mean reconstructions of 32
held-out shapes clips (:func:`vidiff.eval.reconstruction.reconstruction_metrics`). Variants run
one after the other; give ``--variants`` one name per process and start two processes to use two
cores (each then shares the machine alike; a two-thread job beside a one-thread job slows several
fold).

This is the probe behind docs/latent-dit.md's "Why the first VAE stalled" table: a few minutes say
which design leaves the background-only plateau (~13.8 dB) first, not where each ends.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from vidiff.data import build_dataset
from vidiff.eval.reconstruction import heldout_datasets, reconstruction_metrics
from vidiff.models.vae import CausalVideoVAE, vae_config
from vidiff.train.objectives.autoencoder import VAEObjective

MSE = dict(l1_weight=0.0, l2_weight=1.0, perceptual_weight=0.0)
WIDE = dict(base_channels=32, channel_mult=(1, 2, 2), **MSE)
FRAMES_T2 = dict(WIDE, temporal_downsample=(False, True), time_kernel=(1, 1, 3))
# name -> (preset, overrides): the designs docs/latent-dit.md compares.
VARIANTS = {
    "vae-tiny": ("vae-tiny", {}),  # x4 time, x4 space, 4 channels, L1 + MS-SSIM
    "vae-tiny-16ch": ("vae-tiny", dict(latent_channels=16)),
    "tiny-t2-8ch": (
        "vae-tiny",
        dict(temporal_downsample=(True, False), latent_channels=8, l2_weight=1.0),
    ),  # fmt: skip
    "wide-3d-t1": ("vae-tiny", dict(WIDE, temporal_downsample=(False, False), latent_channels=8)),
    "wide-3d-t2": ("vae-tiny", dict(WIDE, temporal_downsample=(False, True), latent_channels=8)),
    "wide-frames-t2-8ch": ("vae-tiny", dict(FRAMES_T2, latent_channels=8)),
    "wide-frames-t2-16ch": ("vae-tiny", dict(FRAMES_T2, latent_channels=16)),
    "wide-frames-t4": (
        "vae-tiny",
        dict(WIDE, temporal_downsample=(True, True), time_kernel=(1, 3, 3), latent_channels=16),
    ),  # fmt: skip
    "vae-shapes": ("vae-shapes", {}),  # per-frame, x4 space, 8 channels, MSE: the shipped design
}


def run(name: str, minutes: float, batch: int = 4, lr: float = 1e-3) -> list[tuple]:
    torch.manual_seed(0)
    preset, overrides = VARIANTS[name]
    net = CausalVideoVAE(vae_config(preset, **overrides))
    objective = VAEObjective(net)
    data = build_dataset("shapes", num_items=10**6, num_frames=17, size=32, seed=0)
    held = heldout_datasets(32)["shapes"]
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    rows, step, start, next_eval = [], 0, time.perf_counter(), 0.0
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= next_eval or elapsed >= 60 * minutes:
            rows.append((name, step, elapsed, reconstruction_metrics(net, held, 32)["psnr"]))
            print(
                f"{name:20s} step {step:5d}  {elapsed:5.0f} s  PSNR {rows[-1][-1]:.2f} dB",
                flush=True,
            )
            next_eval += 60
            if elapsed >= 60 * minutes:
                return rows
        video = torch.stack([data[step * batch + k]["video"] for k in range(batch)])
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50)
        net.train()
        seeds = list(range(step * batch, (step + 1) * batch))
        loss = objective.training_loss(video, seeds=seeds).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["vae-tiny", "vae-shapes"], choices=VARIANTS)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for name in args.variants for r in run(name, args.minutes, lr=args.lr)]
    print("\n| variant | steps | seconds | held-out PSNR dB |\n|---|---|---|---|")
    for name in args.variants:
        last = [r for r in rows if r[0] == name][-1]
        print(f"| {name} | {last[1]} | {last[2]:.0f} | {last[3]:.2f} |")


if __name__ == "__main__":
    main()
