"""GPU benchmark: train-step throughput, MFU and sampling latency of the U-Net and DiT presets.

    python benchmarks/gpu.py                      # on a GPU: every preset, bf16, eager and compiled
    python benchmarks/gpu.py --models unet-small dit-small --batch 4 --peak 989e12
    python benchmarks/gpu.py --smoke              # CPU, tiny shapes, seconds: checks the script

For each model and each of ``--compile off on``:

* **train step**: forward under bf16 autocast (fp32 master weights, as the trainer's
  ``mixed_precision: bf16``), an MSE loss against a random target, backward, fused AdamW step;
  the median over ``--steps`` timed steps after ``--warmup`` untimed ones (which include
  ``torch.compile``'s compilation, reported separately as ``compile s``).
* **FLOPs**: one train step (forward + backward, eager) counted by
  ``torch.utils.flop_counter.FlopCounterMode`` -- matmuls, convolutions and attention, the "model
  FLOPs" of MFU (elementwise ops, norms and the optimiser are not counted, so MFU is not inflated
  by them). ``MFU = FLOPs per step / step time / peak``; the peak is the GPU's dense bf16 FLOP/s
  from :data:`PEAK_BF16` by device name, or ``--peak``.
* **sampling**: wall-clock of an 8-step Euler sample (EDM preconditioning, Karras sigmas) of one
  clip, ``torch.no_grad`` and bf16 autocast, median over ``--steps`` runs.
* **memory**: ``torch.cuda.max_memory_allocated`` over the train steps (GPU only).

U-Nets run on pixels ``3 x T x S x S`` (``--frames``, ``--size``); DiTs on VAE-like latents
``4 x T x L x L`` (``--latent-size``; 32 = a 256 x 256 clip through an 8x VAE: 4096 tokens of
patch (1, 2, 2) for 16 frames); every model gets ``--tokens`` text tokens of width 256
(cross-attention and pooled context on). ``--smoke`` uses 2x4x16x16 clips (DiT: 4x4x8x8), one warm-up
and one timed step, and the ``eager`` compile backend (dynamo's graph capture without inductor's
code generation), so a test can run every code path on a CPU in seconds; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from vidiff.diffusion.precond import EDMPrecond  # noqa: E402
from vidiff.diffusion.schedules import get_sigmas_karras  # noqa: E402
from vidiff.models import build_model  # noqa: E402
from vidiff.models.dit import DIT_PRESETS  # noqa: E402
from vidiff.models.unet3d import UNET_PRESETS  # noqa: E402
from vidiff.sampling.samplers import sample_euler  # noqa: E402

# Dense (no sparsity) bf16 tensor-core FLOP/s from the vendors' data sheets, matched by substring
# of torch.cuda.get_device_name(); the first match wins (so "H100 PCIe" precedes "H100").
PEAK_BF16: list[tuple[str, float]] = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
]
CONTEXT_DIM = 256
SAMPLE_STEPS = 8


def peak_for_name(name: str) -> float | None:
    """The dense bf16 peak FLOP/s of a GPU named ``name`` (:data:`PEAK_BF16`), or None."""
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def peak_flops(device: torch.device, override: float | None) -> float | None:
    """``override``, else the data-sheet peak of a known GPU, else None (MFU is then not shown)."""
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


@dataclass
class Case:
    """One model at one input size."""

    name: str  # a preset of UNET_PRESETS or DIT_PRESETS
    arch: str
    shape: tuple[int, int, int, int]  # (C, T, H, W) of one clip


def cases(names: list[str], frames: int, size: int, latent: int, smoke: bool) -> list[Case]:
    out = []
    for name in names:
        if name in UNET_PRESETS:
            shape = (3, 4, 16, 16) if smoke else (3, frames, size, size)
            out.append(Case(name, "unet3d", shape))
        elif name in DIT_PRESETS:
            shape = (4, 4, 8, 8) if smoke else (4, frames, latent, latent)
            out.append(Case(name, "dit", shape))
        else:
            known = ", ".join([*UNET_PRESETS, *DIT_PRESETS])
            raise SystemExit(f"gpu.py: error: unknown model {name!r}; known: {known}")
    return out


def build(case: Case, device: torch.device) -> torch.nn.Module:
    kw = {"context_dim": CONTEXT_DIM}
    if case.arch == "dit":
        kw.update(in_channels=case.shape[0], out_channels=case.shape[0])
    torch.manual_seed(0)
    return build_model(case.arch, case.name, **kw).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """``(seconds of the warm-up calls, median seconds of the timed calls)``."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    _sync(device)
    t_warm = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return t_warm, statistics.median(times)


@dataclass
class Result:
    model: str
    params_m: float
    input: str
    batch: int
    compile: bool
    gflop_step: float
    compile_s: float
    step_s: float
    samples_per_s: float
    tflops: float
    mfu: float | None
    sample_s: float
    mem_gb: float | None


def run_case(case: Case, args, device: torch.device, compiled: bool) -> Result:
    from torch.utils.flop_counter import FlopCounterMode

    net = build(case, device).train()
    params = sum(p.numel() for p in net.parameters())
    b = args.batch
    x = torch.randn(b, *case.shape, device=device)
    target = torch.randn_like(x)
    c_noise = torch.rand(b, device=device) * 1000
    context = torch.randn(b, args.tokens, CONTEXT_DIM, device=device)
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=fused)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    model = torch.compile(net, backend=args.backend) if compiled else net

    def forward_backward():
        with autocast:
            out = model(x, c_noise, context=context)
        (out.float() - target).square().mean().backward()

    def train_step():
        forward_backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:  # eager: the model's own FLOPs
        with autocast:
            out = net(x, c_noise, context=context)
        (out.float() - target).square().mean().backward()
    opt.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    compile_s, step_s = _timed(train_step, device, args.warmup, args.steps)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None

    # sampling: one clip, SAMPLE_STEPS Euler steps through the preconditioned denoiser
    net.eval()
    denoiser = EDMPrecond(model)
    sigmas = get_sigmas_karras(SAMPLE_STEPS, 0.002, 80.0)  # the samplers read it on the host
    noise = torch.randn(1, *case.shape, device=device) * sigmas[0]

    @torch.no_grad()
    def sample():
        with autocast:
            sample_euler(denoiser, noise, sigmas, extra_args={"context": context[:1]})

    _, sample_s = _timed(sample, device, 1, args.steps)
    peak = peak_flops(device, args.peak)
    tflops = flops / step_s / 1e12
    return Result(
        model=case.name,
        params_m=params / 1e6,
        input="x".join(str(d) for d in case.shape),
        batch=b,
        compile=compiled,
        gflop_step=flops / 1e9,
        compile_s=compile_s if compiled else 0.0,
        step_s=step_s,
        samples_per_s=b / step_s,
        tflops=tflops,
        mfu=None if peak is None else flops / step_s / peak,
        sample_s=sample_s,
        mem_gb=mem,
    )


def table(results: list[Result]) -> str:
    head = (
        "| model | params | input (C x T x H x W) | batch | compile | GFLOP/step | step ms "
        "| samples/s | TFLOP/s | MFU | compile s | 8-step sample s | peak mem GB |"
    )
    rows = [head, "|" + "---|" * 13]
    for r in results:
        mfu = "n/a" if r.mfu is None else f"{100 * r.mfu:.1f}%"
        mem = "n/a" if r.mem_gb is None else f"{r.mem_gb:.1f}"
        rows.append(
            f"| {r.model} | {r.params_m:.1f}M | {r.input} | {r.batch} | "
            f"{'on' if r.compile else 'off'} | {r.gflop_step:.1f} | {1000 * r.step_s:.1f} | "
            f"{r.samples_per_s:.1f} | {r.tflops:.2f} | {mfu} | {r.compile_s:.0f} | "
            f"{r.sample_s:.3f} | {mem} |"
        )
    return "\n".join(rows)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=[*UNET_PRESETS, *DIT_PRESETS])
    ap.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"])
    ap.add_argument("--backend", default="inductor", help="torch.compile backend")
    ap.add_argument("--batch", type=int, default=8, help="clips per train step")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64, help="U-Net clip size in pixels")
    ap.add_argument("--latent-size", type=int, default=32, help="DiT latent size")
    ap.add_argument("--tokens", type=int, default=32, help="text tokens per clip")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    ap.add_argument("--peak", type=float, default=None, help="peak FLOP/s for MFU (e.g. 989e12)")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run that checks the script")
    args = ap.parse_args(argv)
    if args.smoke:
        args.models = [m for m in args.models if m in ("unet-tiny", "dit-tiny")] or args.models
        args.batch, args.tokens, args.warmup, args.steps = 1, 4, 1, 1
        args.backend, args.device = "eager", args.device or "cpu"
    for name in ("batch", "frames", "size", "latent_size", "tokens", "steps"):
        if getattr(args, name) < 1:
            flag = name.replace("_", "-")
            ap.error(f"--{flag} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 1:  # the first step builds the optimiser state (and compiles)
        ap.error(f"--warmup must be >= 1, got {args.warmup}")
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    results = []
    for case in cases(args.models, args.frames, args.size, args.latent_size, args.smoke):
        for mode in args.compile:
            results.append(run_case(case, args, device, compiled=mode == "on"))
            print(f"done: {case.name} compile={mode}", file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = peak_flops(device, args.peak)
    print(f"device: {name}; peak {'unknown (--peak)' if peak is None else f'{peak:.3g} FLOP/s'}")
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return results


if __name__ == "__main__":
    main()
