"""Forward+backward time and peak memory of the video DiT against frame count, per attention mode.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_scaling.py            # < 8 minutes
    .venv/bin/python benchmarks/attention_scaling.py --frames 8 16 --repeats 2    # quick look

A fixed small :class:`vidiff.models.dit.VideoDiT` (hidden 64, 4 blocks, 2 heads of 32, patch 1x2x2)
on a 4-channel 16x16 "latent" (8 x 8 = 64 tokens per frame), batch 1, one CPU thread, for
T = 8 ... 128 frames (L = 64 T tokens) and three attention modes:

* ``full``       -- every block attends over all L tokens (Sora / Wan): O(L^2) = O(T^2) compute;
* ``factorized`` -- spatial blocks (64 tokens of one frame) alternate with temporal blocks (T tokens
  at one position) (Latte): O(T * 64^2 + 64 * T^2), linear until T approaches 64;
* ``windowed``   -- whole-frame spatial blocks alternate with 4x4x4-token spatio-temporal windows
  (WALT): O(L * 64), linear in T.

**Time** is the median of ``--repeats`` forward+backward passes after one warm-up. **Peak memory** is
measured honestly for CPU, where torch has no allocator statistics (and ``tracemalloc`` does not see
its allocations): every point runs in a fresh subprocess, which resets the kernel's resident-set
high-water mark (``/proc/self/clear_refs`` <- 5) right before its first forward+backward and reports
``VmHWM - VmRSS(before)`` -- activations, gradients and kernel workspaces of that step, in MiB. Next to
it, ``attn logits`` is the analytic size of the attention-probability tensors a non-fused (math)
kernel would hold per forward (sum over blocks of windows x heads x N^2 x 4 bytes): torch's fused CPU
SDPA kernel (flash-style, no mask here) never materialises them, so RSS grows only linearly even for
full attention while its *time* stays quadratic.

Points predicted (from the previous point of the same mode and its growth rate) to take longer than
``--cap-s`` per forward+backward, or to overrun the ``--budget-s`` of the whole run, are skipped and
marked ``skip``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

MODES = ("full", "factorized", "windowed")
SIZE, CHANNELS, PATCH = 16, 4, (1, 2, 2)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _model_config(mode: str):
    from vidiff.models.dit import DiTConfig

    return DiTConfig(
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        patch_size=PATCH,
        hidden_size=64,
        depth=4,
        head_dim=32,
        mlp_ratio=4.0,
        attention=mode,
        window_size=(4, 4, 4),
        spatial_window=None,  # WALT: the spatial window is the whole frame
        context_dim=None,
    )


def attention_logit_bytes(mode: str, frames: int) -> int:
    """Bytes of attention probabilities (fp32) a non-fused kernel holds in one forward."""
    from vidiff.models.dit import plan_windows

    cfg = _model_config(mode)
    grid = (frames // PATCH[0], SIZE // PATCH[1], SIZE // PATCH[2])
    total = 0
    for window, shift in cfg.block_windows():
        plan = plan_windows(grid, window, shift)
        n_windows = math.prod(p // w for p, w in zip(plan.padded, plan.window))
        total += n_windows * cfg.heads * plan.tokens**2 * 4
    return total


def worker(mode: str, frames: int, repeats: int) -> dict:
    """One (mode, T) point, in its own process so its memory high-water mark is its own."""
    import torch

    from vidiff.models.dit import VideoDiT

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = VideoDiT(_model_config(mode)).train()
    x = torch.randn(1, CHANNELS, frames, SIZE, SIZE)
    c = torch.full((1,), 500.0)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(x, c).square().mean().backward()

    try:  # reset VmHWM to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    step()  # first pass: measures memory, doubles as the warm-up
    first = time.perf_counter() - t0
    peak_mib = (_status_kib("VmHWM") - rss0) / 1024 if reset else float("nan")
    times = [first] if repeats == 0 else []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "mode": mode,
        "frames": frames,
        "tokens": frames // PATCH[0] * (SIZE // PATCH[1]) * (SIZE // PATCH[2]),
        "time_s": statistics.median(times),
        "peak_mib": peak_mib,
        "attn_mib": attention_logit_bytes(mode, frames) / 2**20,
    }


def _run_point(mode: str, frames: int, repeats: int, timeout: float) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", mode, str(frames), "--repeats", str(repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=timeout, check=True
        )
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{mode} T={frames} failed:\n{e.stderr[-2000:]}") from e
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--repeats", type=int, default=3, help="timed passes after the first")
    p.add_argument(
        "--cap-s", type=float, default=20.0, help="skip points slower than this per pass"
    )
    p.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget of the run")
    p.add_argument("--worker", nargs=2, metavar=("MODE", "T"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats)))
        return

    start = time.perf_counter()
    rows: list[dict] = []
    startup = 5.0  # seconds to start a worker (import torch), refined as we go
    for mode in args.modes:
        prev: list[dict] = []
        for frames in sorted(args.frames):
            if len(prev) >= 2:  # local growth exponent from the last two points
                a, b = prev[-2], prev[-1]
                k = math.log(b["time_s"] / a["time_s"]) / math.log(b["frames"] / a["frames"])
                predicted = b["time_s"] * (frames / b["frames"]) ** max(k, 1.0)
            elif prev:
                predicted = prev[-1]["time_s"] * (frames / prev[-1]["frames"]) ** 2
            else:
                predicted = 0.0
            cost = startup + predicted * (args.repeats + 1) * 1.2
            left = args.budget_s - (time.perf_counter() - start)
            if predicted > args.cap_s or cost > left:
                why = f"~{predicted:.0f}s/pass" if predicted > args.cap_s else "budget"
                rows.append({"mode": mode, "frames": frames, "skip": why})
                print(f"{mode:>10} T={frames:<4} skipped ({why})", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            r = _run_point(mode, frames, args.repeats, timeout=max(left, 1.0))
            if r is None:
                rows.append({"mode": mode, "frames": frames, "skip": "timeout"})
                continue
            startup = 0.5 * startup + 0.5 * max(
                time.perf_counter() - t0 - r["time_s"] * (args.repeats + 1), 0.5
            )
            rows.append(r)
            prev.append(r)
            print(
                f"{mode:>10} T={frames:<4} {r['time_s']:.3f}s {r['peak_mib']:.0f} MiB",
                file=sys.stderr,
            )

    print(
        f"\nVideoDiT fwd+bwd, batch 1, {CHANNELS}x T x {SIZE}x{SIZE}, patch {PATCH}, hidden 64, "
        f"4 blocks, 1 CPU thread, median of {args.repeats}; peak = RSS high-water delta (MiB); "
        "attn logits = analytic fp32 attention-probability bytes of a non-fused kernel (MiB)\n"
    )
    head = f"| {'T':>4} | {'tokens':>6} |" + "".join(
        f" {m + ' s':>14} | {m + ' MiB':>14} | {'attn logits':>11} |" for m in args.modes
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for frames in sorted(args.frames):
        cells = [f"| {frames:>4} | {frames * (SIZE // PATCH[1]) * (SIZE // PATCH[2]):>6} |"]
        for mode in args.modes:
            r = next(r for r in rows if r["mode"] == mode and r["frames"] == frames)
            attn = attention_logit_bytes(mode, frames) / 2**20
            if "skip" in r:
                cells.append(f" {'skip ' + r['skip']:>14} | {'-':>14} | {attn:>11.0f} |")
            else:
                cells.append(f" {r['time_s']:>14.3f} | {r['peak_mib']:>14.1f} | {attn:>11.0f} |")
        print("".join(cells))
    print(f"\ntotal wall-clock {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
