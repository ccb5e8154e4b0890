"""Shared helpers for the benchmarks against lucidrains' video-diffusion-pytorch (the "peer") and,
in ``unet_speed.py``, his make-a-video-pytorch ``SpaceTimeUnet`` (installed in the same venv).

Imported by ``unet_speed.py`` and ``time_to_quality.py`` both in the project's ``.venv`` (the driver)
and inside the peer's own venv ``benchmarks/.venv-peer`` (the workers), so this module imports only
the standard library at import time.

video-diffusion-pytorch imports torchvision at module import for its GIF / dataset helpers only, and
there is no CPU torchvision wheel here, so :func:`import_peer` first installs a **minimal stand-in
``torchvision`` module** (``transforms.ToTensor`` and empty ``utils``); nothing the benchmarks run
touches it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "benchmarks" / ".venv-peer"
PEER_PY = PEER_VENV / "bin" / "python"
VIDIFF_PY = ROOT / ".venv" / "bin" / "python"
PEER_VERSION = "0.7.0"
MAKE_A_VIDEO_VERSION = "0.4.0"
SETUP_COMMANDS = [
    [sys.executable, "-m", "venv", str(PEER_VENV)],
    [str(PEER_VENV / "bin" / "pip"), "install", "torch==2.13.0"],
    [
        str(PEER_VENV / "bin" / "pip"),
        "install",
        "--no-deps",
        f"video-diffusion-pytorch=={PEER_VERSION}",
    ],
    [
        str(PEER_VENV / "bin" / "pip"),
        "install",
        "einops",
        "einops-exts",
        "rotary-embedding-torch",
        "tqdm",
        "pillow",
        "numpy",
    ],
    # make-a-video-pytorch's only other requirement, classifier-free-guidance-pytorch (text
    # conditioning through downloaded encoders), is never imported by its SpaceTimeUnet.
    [
        str(PEER_VENV / "bin" / "pip"),
        "install",
        "--no-deps",
        f"make-a-video-pytorch=={MAKE_A_VIDEO_VERSION}",
        "packaging",
    ],
]


def setup() -> None:
    """Create ``benchmarks/.venv-peer`` (CPU torch first, then the peer without its extras)."""
    for cmd in SETUP_COMMANDS:
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def require_peer_venv(script: str) -> Path:
    """The peer venv's python, or exit with the command that creates it."""
    if not PEER_PY.exists():
        raise SystemExit(f"{PEER_VENV} is missing: run `python benchmarks/{script} --setup` first")
    return PEER_PY


def vidiff_python() -> Path:
    """The project's venv python (the current interpreter when there is no ``.venv``)."""
    return VIDIFF_PY if VIDIFF_PY.exists() else Path(sys.executable)


def stub_torchvision() -> None:
    """Minimal stand-in for torchvision: video-diffusion-pytorch imports it for GIF/dataset helpers
    only (``T.ToTensor()`` is evaluated as a default argument at import); no CPU torchvision exists."""
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.utils = types.ModuleType("torchvision.utils")

    class ToTensor:  # only instantiated at import; never called by the benchmarks
        def __call__(self, img):
            raise NotImplementedError("torchvision stand-in (benchmarks/peer.py)")

    tv.transforms.ToTensor = ToTensor
    sys.modules.update(
        {"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.utils": tv.utils}
    )


def import_peer():
    """``video_diffusion_pytorch`` imported behind the torchvision stand-in, warnings silenced."""
    stub_torchvision()
    import warnings

    warnings.filterwarnings("ignore")
    import video_diffusion_pytorch

    return video_diffusion_pytorch


def import_make_a_video():
    """``make_a_video_pytorch`` (its ``SpaceTimeUnet``), warnings silenced."""
    import warnings

    warnings.filterwarnings("ignore")
    import make_a_video_pytorch

    return make_a_video_pytorch


def size_unet3d(torch, unet3d, target_params: int, **kwargs) -> tuple[int, int, int]:
    """``(dim, attn_heads, params)`` of the peer ``Unet3D`` closest to ``target_params`` (log ratio).

    The peer's attention width is heads x 32 regardless of ``dim``; its default (8 heads) alone is
    ~3M parameters, so for small targets fewer heads are allowed. Prefer the default heads on ties.
    ``kwargs`` (e.g. ``cond_dim``) go to every candidate.
    """

    def count(dim: int, heads: int) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in unet3d(dim=dim, attn_heads=heads, **kwargs).parameters())

    cands = []
    for d in range(8, 129, 8):
        for h in (8, 4, 2):
            n = count(d, h)
            cands.append((abs(math.log(n / target_params)) + (0.02 if h != 8 else 0.0), d, h, n))
    _, dim, heads, n = min(cands)
    return dim, heads, n


def worker_env(threads: int) -> dict:
    """The environment of a worker subprocess: ``threads`` BLAS/OpenMP threads, no PYTHONPATH."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("PYTHONPATH", None)
    return env


def run_worker(
    python: Path,
    script: Path,
    args: list[str],
    threads: int = 2,
    stream_stderr: bool = False,
) -> dict:
    """Run ``python script *args`` with ``threads`` BLAS/OpenMP threads; its last stdout line is JSON.

    With ``stream_stderr`` the worker's stderr (progress) goes straight to ours, else it is captured
    and shown only when the worker fails.
    """
    out = subprocess.run(
        [str(python), str(script), *args],
        stdout=subprocess.PIPE,
        stderr=None if stream_stderr else subprocess.PIPE,
        text=True,
        env=worker_env(threads),
        cwd=ROOT,
    )
    if out.returncode != 0:
        detail = "" if stream_stderr else f"\n{out.stderr[-4000:]}"
        raise RuntimeError(f"worker {script.name} {' '.join(args[:2])} failed{detail}")
    return json.loads(out.stdout.strip().splitlines()[-1])
