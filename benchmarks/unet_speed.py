"""Train-step speed of vidiff's UNet3D presets vs lucidrains' video-diffusion-pytorch ``Unet3D``.

For ``unet-tiny`` and ``unet-small`` and a peer ``Unet3D`` sized to a similar parameter count, on the
same input (B=4, 3x16x32x32, unconditional) and 2 CPU threads, this prints: parameters, train step
time (forward + backward + AdamW step on an MSE loss; median of repeats after warm-up), its matmul/conv FLOPs, training
samples/s, and the no-grad forward time (one sampler step for the batch). Ratios are vidiff / peer.

Each side runs in its own subprocess: vidiff in the project's ``.venv``, the peer in its own venv
``benchmarks/.venv-peer`` (``python benchmarks/unet_speed.py --setup`` creates it; commands below).
video-diffusion-pytorch imports torchvision at module import for its GIF / dataset helpers only, and
there is no CPU torchvision wheel here, so the peer worker installs a **minimal stand-in
``torchvision`` module** (``transforms.ToTensor`` and empty ``utils``) before importing it; nothing
the benchmark runs touches it (shared with ``time_to_quality.py`` in ``benchmarks/peer.py``).

    python3 -m venv benchmarks/.venv-peer
    benchmarks/.venv-peer/bin/pip install torch==2.13.0            # first: the CPU build, no CUDA
    benchmarks/.venv-peer/bin/pip install --no-deps video-diffusion-pytorch==0.7.0
    benchmarks/.venv-peer/bin/pip install einops einops-exts rotary-embedding-torch tqdm pillow numpy

(``--no-deps`` skips its transformers/sentencepiece/torchvision requirements: only its BERT text
helper and GIF helpers need them.) Run: ``.venv/bin/python benchmarks/unet_speed.py``.
Timings on a shared machine are noisy; the median of ``--repeats`` steps is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from peer import (
    import_peer,
    require_peer_venv,
    run_worker,
    setup,
    size_unet3d,
    vidiff_python,
)

SCRIPT = Path(__file__).resolve()
SHAPE = (4, 3, 16, 32, 32)  # B, C, T, H, W


# --------------------------------------------------------------------------------------------------
# Workers (run inside one venv each)


def _time_model(torch, net, forward, repeats: int, warmup: int) -> dict:
    """Median train step (MSE + backward + AdamW) and median no-grad forward, in seconds."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*SHAPE, generator=g)
    target = torch.randn(*SHAPE, generator=g)
    t = torch.rand(SHAPE[0], generator=g)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    net.train()

    def step():
        loss = (forward(x, t) - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # Matmul/conv FLOPs of one train step, counted during an extra untimed step: a measure the
    # shared machine's load cannot blur (memory-bound ops such as norms are not counted).
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    steps = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        step()
        if i >= warmup:
            steps.append(time.perf_counter() - t0)
    net.eval()
    fwd = []
    with torch.no_grad():
        for i in range(1 + repeats):
            t0 = time.perf_counter()
            forward(x, t)
            if i >= 1:
                fwd.append(time.perf_counter() - t0)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "gflop": counter.get_total_flops() / 1e9,
        "step_s": statistics.median(steps),
        "fwd_s": statistics.median(fwd),
        "threads": torch.get_num_threads(),
    }


def worker_vidiff(preset: str, repeats: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(2)
    from vidiff.models import build_model

    torch.manual_seed(0)
    net = build_model("unet3d", preset)
    res = _time_model(torch, net, lambda x, t: net(x, t * 1000), repeats, warmup)
    return {"model": f"vidiff {preset}", "config": "preset, unconditional", **res}


def worker_peer(target_params: int, repeats: int, warmup: int) -> dict:
    vdp = import_peer()
    import torch

    torch.set_num_threads(2)
    dim, heads, _ = size_unet3d(torch, vdp.Unet3D, target_params)
    torch.manual_seed(0)
    net = vdp.Unet3D(dim=dim, attn_heads=heads)
    res = _time_model(torch, net, lambda x, t: net(x, t * 1000), repeats, warmup)
    return {
        "model": "video-diffusion-pytorch Unet3D",
        "config": f"dim={dim}, attn_heads={heads}",
        **res,
    }


# --------------------------------------------------------------------------------------------------
# Driver


def _run_worker(python, args: list[str]) -> dict:
    return run_worker(python, SCRIPT, args, threads=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", action="store_true", help="create benchmarks/.venv-peer and exit")
    ap.add_argument("--presets", nargs="+", default=["unet-tiny", "unet-small"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--warmup", type=int, default=1, help="untimed steps after the FLOP-counting one"
    )
    ap.add_argument("--worker", choices=["vidiff", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--target-params", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.setup:
        setup()
        return
    if a.worker == "vidiff":
        print(json.dumps(worker_vidiff(a.preset, a.repeats, a.warmup)))
        return
    if a.worker == "peer":
        print(json.dumps(worker_peer(a.target_params, a.repeats, a.warmup)))
        return

    peer_py = require_peer_venv("unet_speed.py")
    vidiff_py = vidiff_python()
    rep = ["--repeats", str(a.repeats), "--warmup", str(a.warmup)]
    rows = []
    for preset in a.presets:
        ours = _run_worker(vidiff_py, ["--worker", "vidiff", "--preset", preset, *rep])
        peer = _run_worker(
            peer_py, ["--worker", "peer", "--target-params", str(ours["params"]), *rep]
        )
        rows.append((ours, peer))
        print(f"done: {preset}", file=sys.stderr, flush=True)

    b = SHAPE[0]
    print(
        f"\nTrain step on B={b}, input {SHAPE[1]}x{SHAPE[2]}x{SHAPE[3]}x{SHAPE[4]} (C x T x H x W), "
        f"{rows[0][0]['threads']} CPU threads, median of {a.repeats} after {a.warmup} warm-up; "
        "GFLOP = matmul/conv FLOPs of one train step (load-independent)\n"
    )
    cols = [
        ("model", 32),
        ("config", 24),
        ("params", 7),
        ("GFLOP/step", 10),
        ("train step s", 12),
        ("train samples/s", 15),
        ("fwd s (no grad)", 15),
    ]
    print(
        "| "
        + " | ".join(f"{n:<{w}}" if k < 2 else f"{n:>{w}}" for k, (n, w) in enumerate(cols))
        + " |"
    )
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")

    def line(values):
        widths = [w for _, w in cols]
        cells = [
            f"{v:<{w}}" if k < 2 else f"{v:>{w}}" for k, (v, w) in enumerate(zip(values, widths))
        ]
        print("| " + " | ".join(cells) + " |")

    for ours, peer in rows:
        for r in (ours, peer):
            line(
                [
                    r["model"],
                    r["config"],
                    f"{r['params'] / 1e6:.2f}M",
                    f"{r['gflop']:.0f}",
                    f"{r['step_s']:.2f}",
                    f"{b / r['step_s']:.2f}",
                    f"{r['fwd_s']:.2f}",
                ]
            )
        line(
            [
                "  ratio vidiff / peer",
                "",
                f"{ours['params'] / peer['params']:.2f}",
                f"{ours['gflop'] / peer['gflop']:.2f}",
                f"{ours['step_s'] / peer['step_s']:.2f}",
                f"{peer['step_s'] / ours['step_s']:.2f}",
                f"{ours['fwd_s'] / peer['fwd_s']:.2f}",
            ]
        )


if __name__ == "__main__":
    main()
