"""Train-step speed of vidiff's UNet3D presets vs lucidrains' video-diffusion-pytorch ``Unet3D`` and
make-a-video-pytorch ``SpaceTimeUnet``, with the CPU's measured matmul peak, side by side.

Every side (a model, or a large matmul) is a long-lived worker subprocess with 2 threads that builds
its model, counts the matmul/conv FLOPs of one train step (an untimed step) and warms up, then waits.
The driver then asks the workers in turn for one timed step each, round after round (A B C A B C ...),
so that the load of a shared machine falls on every side alike, and reports medians. A train step is
forward + backward + AdamW on an MSE loss, on the same input (B=4, 3x16x32x32, unconditional).

Sides (``--sides``):

* ``vidiff:PRESET`` -- a vidiff UNet3D preset; ``vidiff:PRESET+bf16`` runs it under CPU bf16 autocast
  (``train.mixed_precision: bf16``), ``+cl`` with channels-last weights, ``+compile`` through
  ``torch.compile`` (the compile happens during warm-up, untimed).
* ``vdp:PRESET`` -- video-diffusion-pytorch 0.7.0 ``Unet3D`` sized to PRESET's parameter count
  (:func:`peer.size_unet3d`).
* ``mav:DIM`` -- make-a-video-pytorch 0.4.0 ``SpaceTimeUnet(dim=DIM)``, its defaults otherwise
  (4 levels, attention at the last and the middle, time halved at levels 2-4, Lumiere-like).
* ``matmul:fp32`` / ``matmul:bf16`` -- ``--matmul-n`` square matmuls: the achievable peak FLOP/s of
  these 2 threads under the same load, against which a model's FLOP/s is read.

The peers run in their own venv ``benchmarks/.venv-peer`` (``--setup`` creates it; commands in
``peer.SETUP_COMMANDS``). video-diffusion-pytorch imports torchvision for GIF / dataset helpers only,
and there is no CPU torchvision wheel here, so its worker installs a minimal stand-in module first
(``peer.stub_torchvision``). The vidiff worker imports vidiff from this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peer import (
    ROOT,
    import_make_a_video,
    import_peer,
    require_peer_venv,
    setup,
    size_unet3d,
    vidiff_python,
    worker_env,
)

SCRIPT = Path(__file__).resolve()
SHAPE = (4, 3, 16, 32, 32)  # B, C, T, H, W
DEFAULT_SIDES = [
    "vidiff:unet-tiny",
    "vidiff:unet-cpu",
    "mav:18",
    "vdp:unet-tiny",
    "matmul:fp32",
    "matmul:bf16",
]


# --------------------------------------------------------------------------------------------------
# Workers (run inside one venv each)


class ModelBench:
    """A model, its optimiser and fixed inputs; ``train()`` and ``fwd()`` time one step each."""

    def __init__(self, torch, net, forward, bf16: bool = False) -> None:
        self.torch, self.net, self.forward, self.bf16 = torch, net, forward, bf16
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(*SHAPE, generator=g)
        self.target = torch.randn(*SHAPE, generator=g)
        self.t = torch.rand(SHAPE[0], generator=g)
        self.opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def _out(self):
        with self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bf16):
            return self.forward(self.x, self.t * 1000).float()

    def _train_step(self) -> None:
        self.net.train()
        loss = (self._out() - self.target).square().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def prepare(self, warmup: int) -> dict:
        # Matmul/conv FLOPs of one train step, counted during an untimed step: a measure the shared
        # machine's load cannot blur (memory-bound ops such as norms are not counted).
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self._train_step()
        for _ in range(warmup):
            self._train_step()
        self.fwd()
        return {
            "params": sum(p.numel() for p in self.net.parameters()),
            "gflop": counter.get_total_flops() / 1e9,
        }

    def train(self) -> float:
        t0 = time.perf_counter()
        self._train_step()
        return time.perf_counter() - t0

    def fwd(self) -> float:
        self.net.eval()
        t0 = time.perf_counter()
        with self.torch.no_grad():
            self._out()
        return time.perf_counter() - t0


class MatmulBench:
    """``reps`` products of two ``n x n`` matrices: the FLOP/s these threads reach on the best-case
    kernel (``train()`` returns seconds per product; ``gflop`` is one product's work)."""

    def __init__(self, torch, dtype: str, n: int, reps: int = 8) -> None:
        self.torch, self.n, self.reps = torch, n, reps
        dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        g = torch.Generator().manual_seed(0)
        self.a = torch.randn(n, n, generator=g).to(dt)
        self.b = torch.randn(n, n, generator=g).to(dt)

    def prepare(self, warmup: int) -> dict:
        self.train()
        return {"params": 0, "gflop": 2 * self.n**3 / 1e9}

    def train(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.reps):
            self.torch.mm(self.a, self.b)
        return (time.perf_counter() - t0) / self.reps

    def fwd(self) -> float:
        return float("nan")


def build_side(side: str, target_params: int | None, matmul_n: int):
    """``(bench, description)`` for a side spec, in this worker's venv."""
    kind, _, arg = side.partition(":")
    if kind == "vidiff":
        sys.path.insert(0, str(ROOT))  # this checkout's vidiff, not an installed one
        import torch

        from vidiff.models import build_model

        preset, *opts = arg.split("+")
        torch.manual_seed(0)
        net = build_model("unet3d", preset)
        if "cl" in opts:
            net = net.to(memory_format=torch.channels_last)
        fwd = torch.compile(net) if "compile" in opts else net
        bench = ModelBench(torch, net, lambda x, t: fwd(x, t), bf16="bf16" in opts)
        return bench, ", ".join(["preset", *opts])
    if kind == "vdp":
        vdp = import_peer()
        import torch

        dim, heads, _ = size_unet3d(torch, vdp.Unet3D, target_params)
        torch.manual_seed(0)
        net = vdp.Unet3D(dim=dim, attn_heads=heads)
        return ModelBench(torch, net, lambda x, t: net(x, t)), f"dim={dim}, attn_heads={heads}"
    if kind == "mav":
        mav = import_make_a_video()
        import torch

        torch.manual_seed(0)
        net = mav.SpaceTimeUnet(dim=int(arg))
        return ModelBench(torch, net, lambda x, t: net(x, t)), f"dim={arg}, defaults"
    if kind == "matmul":
        import torch

        return MatmulBench(torch, arg, matmul_n), f"{matmul_n}x{matmul_n} @ {matmul_n}x{matmul_n}"
    raise ValueError(f"unknown side {side!r}: expected vidiff:, vdp:, mav: or matmul:")


def serve(side: str, target_params: int | None, warmup: int, matmul_n: int) -> None:
    """Worker loop: build and warm up, print a JSON line, then answer ``train`` / ``fwd`` lines with
    the seconds of one step each until stdin closes."""
    import torch

    torch.set_num_threads(2)
    bench, config = build_side(side, target_params, matmul_n)
    meta = bench.prepare(warmup)
    print(json.dumps({**meta, "config": config, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        seconds = bench.train() if cmd == "train" else bench.fwd()
        print(json.dumps(seconds), flush=True)


# --------------------------------------------------------------------------------------------------
# Driver


class Worker:
    """A running side: its subprocess, what it reported at start and its timings."""

    def __init__(self, side: str, python: Path, args: list[str]) -> None:
        self.side = side
        self.proc = subprocess.Popen(
            [str(python), str(SCRIPT), "--serve", side, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=worker_env(2),
            cwd=ROOT,
        )
        self.meta = self._read()
        self.times: dict[str, list[float]] = {"train": [], "fwd": []}

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.side} exited with {self.proc.wait()}")
        return json.loads(line)

    def time(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        self.times[cmd].append(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _model_name(side: str) -> str:
    kind, _, arg = side.partition(":")
    return {
        "vidiff": f"vidiff {arg.split('+')[0]}",
        "vdp": "video-diffusion-pytorch Unet3D",
        "mav": "make-a-video-pytorch SpaceTimeUnet",
        "matmul": f"matmul peak, {arg}",
    }[kind]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def report(workers: list[Worker], reference: str | None, args, loads: list) -> None:
    b = SHAPE[0]
    peak = next(
        (statistics.median(w.times["train"]) for w in workers if w.side == "matmul:fp32"), None
    )
    peak_gflops = None
    if peak is not None:
        peak_gflops = next(w for w in workers if w.side == "matmul:fp32").meta["gflop"] / peak
    ref = next((w for w in workers if w.side == reference), None)
    print(
        f"\nTrain step on B={b}, input {SHAPE[1]}x{SHAPE[2]}x{SHAPE[3]}x{SHAPE[4]} (C x T x H x W), "
        f"2 CPU threads ({_cpu_name()}), sides interleaved, "
        f"median of {args.repeats} rounds after {args.warmup} warm-up; load average "
        f"{loads[0][0]:.1f} at start, {loads[1][0]:.1f} at end. GFLOP = matmul/conv FLOPs of one "
        "train step (load-independent); % peak = GFLOP/s over the fp32 matmul's GFLOP/s; "
        f"x ref = videos/s over {_model_name(reference) if ref else 'no reference'}'s.\n"
    )
    cols = [
        ("model", 34),
        ("config", 24),
        ("params", 7),
        ("GFLOP/step", 10),
        ("train step s", 12),
        ("videos/s", 8),
        ("x ref videos/s", 14),
        ("GFLOP/s", 7),
        ("% peak", 6),
        ("fwd s", 5),
    ]
    widths = [w for _, w in cols]

    def line(values):
        cells = [
            f"{v:<{w}}" if k < 2 else f"{v:>{w}}" for k, (v, w) in enumerate(zip(values, widths))
        ]
        print("| " + " | ".join(cells) + " |")

    line([n for n, _ in cols])
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for w in workers:
        step = statistics.median(w.times["train"])
        gflops = w.meta["gflop"] / step
        if w.side.startswith("matmul"):
            pct = f"{100 * gflops / peak_gflops:.0f}" if peak_gflops else ""
            cells = [f"{w.meta['gflop']:.1f}", f"{step:.3f}", "", "", f"{gflops:.0f}", pct, ""]
            line([_model_name(w.side), w.meta["config"], "", *cells])
            continue
        vs = ""
        if ref is not None:
            vs = f"{statistics.median(ref.times['train']) / step:.2f}"
        line(
            [
                _model_name(w.side),
                w.meta["config"],
                f"{w.meta['params'] / 1e6:.2f}M",
                f"{w.meta['gflop']:.1f}",
                f"{step:.2f}",
                f"{b / step:.2f}",
                vs,
                f"{gflops:.1f}",
                f"{100 * gflops / peak_gflops:.0f}" if peak_gflops else "",
                f"{statistics.median(w.times['fwd']):.2f}",
            ]
        )
    print("\nper-round train step seconds (spread):")
    for w in workers:
        print(f"  {w.side:24s} " + " ".join(f"{s:.2f}" for s in w.times["train"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", action="store_true", help="create benchmarks/.venv-peer and exit")
    ap.add_argument("--sides", nargs="+", default=DEFAULT_SIDES, help="what to time (docstring)")
    ap.add_argument(
        "--reference", default="mav:18", help="side whose videos/s the others are divided by"
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds over all sides")
    ap.add_argument(
        "--warmup", type=int, default=1, help="untimed steps after the FLOP-counting one"
    )
    ap.add_argument("--matmul-n", type=int, default=2048, help="matrix size of the matmul sides")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--target-params", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.setup:
        setup()
        return
    if a.serve:
        serve(a.serve, a.target_params, a.warmup, a.matmul_n)
        return

    peer_py = None
    if any(s.split(":")[0] in ("vdp", "mav") for s in a.sides):
        peer_py = require_peer_venv("unet_speed.py")
    common = ["--warmup", str(a.warmup), "--matmul-n", str(a.matmul_n)]
    workers: dict[str, Worker] = {}
    try:
        # vidiff sides first: a vdp side is sized to its preset's parameter count
        for side in sorted(a.sides, key=lambda s: s.split(":")[0] != "vidiff"):
            kind, _, arg = side.partition(":")
            extra = []
            if kind == "vdp":
                if f"vidiff:{arg}" not in workers:
                    raise SystemExit(f"side {side} is sized to vidiff:{arg}: add that side too")
                params = workers[f"vidiff:{arg}"].meta["params"]
                extra = ["--target-params", str(params)]
            python = peer_py if kind in ("vdp", "mav") else vidiff_python()
            workers[side] = Worker(side, python, [*common, *extra])
            print(f"ready: {side}", file=sys.stderr, flush=True)
        loads = [os.getloadavg()]
        ordered = [workers[s] for s in a.sides]
        for r in range(a.repeats):
            for w in ordered:
                w.time("train")
            print(f"round {r + 1}/{a.repeats}", file=sys.stderr, flush=True)
        for _ in range(a.repeats):
            for w in ordered:
                if not w.side.startswith("matmul"):
                    w.time("fwd")
        loads.append(os.getloadavg())
    finally:
        for w in workers.values():
            w.close()
    report(ordered, a.reference, a, loads)


if __name__ == "__main__":
    main()
