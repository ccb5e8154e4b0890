"""Peak memory and time of one unet-tiny train step vs clip length, with and without checkpointing.

    python benchmarks/long_clip_memory.py [--frames 16 64 128 256 512] [--modes none temporal blocks]
    python benchmarks/long_clip_memory.py --timing [--rounds 2]   # time vs T, side by side

One train step = forward + MSE loss + backward + AdamW step of the bare ``unet-tiny`` network
(unconditional, B=1, 3 x T x 32 x 32, float32, 1 CPU thread). Modes: ``none``; ``temporal``
(``temporal_checkpointing``: the temporal convs and temporal attention recompute their inside in
the backward pass); ``blocks`` (``gradient_checkpointing``: every U-Net level recomputes);
``both``. Every (T, mode) runs in a *fresh* subprocess, so no earlier allocation hides a peak:

* ``peak RSS`` is the process's peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``), what
  the step needs from the machine, including torch's own ~0.3 GB of libraries;
* ``step RSS`` is its growth over the RSS after building the model and one 2-frame warm-up step;
* ``s/step`` the median of ``--repeats`` timed steps after one untimed step at the same T.

On a shared machine those times drift with the load between subprocesses, so ``--timing``
measures time alone, in *one* process: one model per mode, then ``--rounds`` rounds that each time
one step at every T in turn (interleaved, so load changes hit every T alike); it prints the median
s/step, ms per frame and the ratio of each T's time per frame to the shortest clip's (1.0 at every
T = time linear in T).

glibc keeps freed blocks of up to 32 MB in its heap for reuse (its mmap threshold grows with the
largest block freed), so with its defaults the RSS of a long-clip step is far above the tensors it
holds (``blocks`` at T=128: 0.26 GB of live tensors at the peak, measured with ``torch.profiler``
``profile_memory``, but 1.2 GB peak RSS). The children therefore run with
``MALLOC_MMAP_THRESHOLD_=131072`` (``--mmap-threshold``; 0 keeps glibc's default): blocks over 128 KB
are mapped and unmapped, so RSS follows what the step needs. Long-clip training on CPU should set it
too; GPU memory is not affected (CUDA's caching allocator).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, statistics, sys, time, torch
from vidiff.models import build_model
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
torch.manual_seed(0)
mode = args["mode"]
net = build_model(
    "unet3d", "unet-tiny",
    temporal_checkpointing=mode in ("temporal", "both"),
    gradient_checkpointing=mode in ("blocks", "both"),
).train()
opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

def step(t):
    x = torch.randn(1, 3, t, 32, 32)
    loss = (net(x, torch.full((1,), 500.0)) - x).square().mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)

step(2)  # warm-up: kernels, thread pool, optimiser state
base = int(open("/proc/self/statm").read().split()[1]) * 4096
t = args["frames"]
step(t)
times = []
for _ in range(args["repeats"]):
    t0 = time.perf_counter()
    step(t)
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_gb": peak / 2**30, "step_gb": (peak - base) / 2**30,
                  "s": statistics.median(times)}))
"""


def run(frames: int, mode: str, repeats: int, mmap_threshold: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if mmap_threshold > 0:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    args = json.dumps({"frames": frames, "mode": mode, "repeats": repeats})
    res = subprocess.run(
        [sys.executable, "-c", CHILD, args], capture_output=True, text=True, env=env
    )
    if res.returncode != 0:
        raise RuntimeError(f"T={frames} mode={mode} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


TIMING = r"""
import json, statistics, sys, time, torch
from vidiff.models import build_model
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
nets = {}
for mode in args["modes"]:
    torch.manual_seed(0)
    net = build_model(
        "unet3d", "unet-tiny",
        temporal_checkpointing=mode in ("temporal", "both"),
        gradient_checkpointing=mode in ("blocks", "both"),
    ).train()
    nets[mode] = (net, torch.optim.AdamW(net.parameters(), lr=1e-4))

def step(mode, t):
    net, opt = nets[mode]
    x = torch.randn(1, 3, t, 32, 32)
    t0 = time.perf_counter()
    loss = (net(x, torch.full((1,), 500.0)) - x).square().mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0

times = {(m, t): [] for m in args["modes"] for t in args["frames"]}
for m in args["modes"]:
    for t in args["frames"]:
        step(m, t)  # warm-up: kernels for this shape, optimiser state
for _ in range(args["rounds"]):
    for m in args["modes"]:
        for t in args["frames"]:
            times[(m, t)].append(step(m, t))
print(json.dumps([[m, t, statistics.median(v)] for (m, t), v in times.items()]))
"""


def timing(frames: list[int], modes: list[str], rounds: int, mmap_threshold: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if mmap_threshold > 0:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    args = json.dumps({"frames": frames, "modes": modes, "rounds": rounds})
    res = subprocess.run(
        [sys.executable, "-c", TIMING, args], capture_output=True, text=True, env=env
    )
    if res.returncode != 0:
        raise RuntimeError(f"timing run failed:\n{res.stderr[-2000:]}")
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    print("| mode | T | s/step (median) | ms per frame | per-frame time / shortest clip's |")
    print("|------|---|-----------------|--------------|----------------------------------|")
    first = {}
    for mode, t, s in rows:
        per_frame = s / t
        first.setdefault(mode, per_frame)
        print(
            f"| {mode} | {t} | {s:.2f} | {1000 * per_frame:.0f} | {per_frame / first[mode]:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 64, 128, 256, 512])
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["none", "temporal", "blocks"],
        choices=["none", "temporal", "blocks", "both"],
    )
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--mmap-threshold", type=int, default=131072, help="0: glibc's default")
    ap.add_argument("--timing", action="store_true", help="time only, all T in one process")
    ap.add_argument("--rounds", type=int, default=2, help="--timing: interleaved rounds")
    args = ap.parse_args()
    if args.timing:
        timing(args.frames, args.modes, args.rounds, args.mmap_threshold)
        return
    print("| T | mode | peak RSS GB | step RSS GB | s/step | s/step per frame (ms) |")
    print("|---|------|-------------|-------------|--------|-----------------------|")
    for t in args.frames:
        for mode in args.modes:
            r = run(t, mode, args.repeats, args.mmap_threshold)
            print(
                f"| {t} | {mode} | {r['peak_gb']:.2f} | {r['step_gb']:.2f} | {r['s']:.2f} "
                f"| {1000 * r['s'] / t:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
