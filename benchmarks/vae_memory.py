"""Peak decode memory of the causal video VAE: 16 vs 128 frames, tiled vs untiled (CPU).

    OMP_NUM_THREADS=1 python benchmarks/vae_memory.py [--size 64] [--preset vae-tiny]

How memory is measured, two ways, each configuration in a *fresh* Python subprocess (so earlier
runs' allocator caches cannot hide a peak):

* ``tensors``: the decode runs under ``torch.profiler`` with ``profile_memory=True``; the allocation
  and free events, in time order, give the high-water mark of live tensor bytes -- what the decode
  itself needs (the number to compare).
* ``RSS``: the growth of the process's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) over the
  RSS before the decode (taken after a one-latent-pixel warm-up decode, so library and kernel
  loading is not counted): what the process needed at its worst moment, including glibc arenas and
  oneDNN's per-shape primitive caches and scratch space (so tiles of several shapes can *raise* it).

``tracemalloc`` cannot see tensor storage: torch allocates it outside Python's allocator. Frame
counts follow the VAE's rule: 16 and 128 frames are padded to 17 and 129 (``pad_frames``), i.e. 5
and 33 latent frames, and the decode is cropped back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from vidiff.models.vae import CausalVideoVAE, vae_config
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
torch.manual_seed(0)
vae = CausalVideoVAE(vae_config(args["preset"], tile_context=args["context"])).eval()
t = args["frames"]
tp = t + (-(t - 1)) % vae.temporal_compression  # pad rule: 16 -> 17, 128 -> 129
c, tz, h, w = vae.latent_shape(tp, args["size"], args["size"])
z = torch.randn(1, c, tz, h, w)
with torch.no_grad():  # warm up: load kernels / thread pools before the baseline is taken
    vae.decode_latents(z[:, :, :1, :2, :2])
page = 4096
base = int(open("/proc/self/statm").read().split()[1]) * page
t0 = time.perf_counter()
with torch.no_grad():
    video = vae.decode_latents(z, num_frames=t, tile_frames=args["tile_frames"],
                               tile_size=args["tile_size"])
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# Second run under the profiler: the high-water mark of live tensor bytes (allocations minus frees in
# time order) -- what the decode itself holds, without allocator caches or oneDNN scratch space.
from torch.profiler import ProfilerActivity, profile
with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    vae.decode_latents(z, num_frames=t, tile_frames=args["tile_frames"],
                       tile_size=args["tile_size"])
events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                if e.name() == "[memory]")
live = top = 0
for _, n in events:
    live += n
    top = max(top, live)
out_bytes = video.numel() * 4
print(json.dumps({"peak_mb": (peak - base) / 2**20, "tensor_mb": top / 2**20,
                  "out_mb": out_bytes / 2**20, "s": dt, "shape": list(video.shape)}))
"""


def run(preset: str, frames: int, size: int, tile_frames, tile_size, context: int) -> dict:
    args = dict(
        preset=preset,
        frames=frames,
        size=size,
        tile_frames=tile_frames,
        tile_size=tile_size,
        context=context,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="vae-tiny")
    ap.add_argument("--size", type=int, default=64, help="frame side in pixels")
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 128])
    ap.add_argument("--tile-frames", type=int, default=2, help="latent frames per chunk")
    ap.add_argument("--tile-size", type=int, default=32, help="pixel tile side")
    ap.add_argument("--context", type=int, default=16, help="tile halo in pixels")
    a = ap.parse_args()
    modes = [
        ("untiled", None, None),
        (f"time chunks ({a.tile_frames} latent frames)", a.tile_frames, None),
        (f"time chunks + {a.tile_size}px tiles", a.tile_frames, a.tile_size),
    ]
    print(f"{a.preset}, {a.size}x{a.size}, decode under no_grad, 1 thread, a fresh process per row")
    print(
        "tensors = profiler high-water of live tensor bytes; RSS = peak-RSS growth over pre-decode"
    )
    print(
        f"{'frames':>6}  {'mode':<34} {'tensors MB':>10} {'RSS MB':>7} {'output MB':>9} {'time s':>7}"
    )
    for t in a.frames:
        for name, tf, ts in modes:
            r = run(a.preset, t, a.size, tf, ts, a.context)
            print(
                f"{t:>6}  {name:<34} {r['tensor_mb']:>10.1f} {r['peak_mb']:>7.1f} "
                f"{r['out_mb']:>9.1f} {r['s']:>7.2f}"
            )


if __name__ == "__main__":
    main()
