"""Time to quality: prompt adherence against training wall-clock, vidiff vs video-diffusion-pytorch.

Both sides learn text-to-video on the **same MovingShapes training clips**, exported once with
``vidiff data export shapes --split train --fmt gif`` (GIF round-trips the synthetic palette
bit-exactly), on ``--threads`` CPU threads (default 2), one side after the other, never at once:

* **vidiff** — the CPU recipe ``configs/shapes-unet-tiny.yaml`` (unet-tiny + built-in text encoder,
  v-prediction, cosine schedule, CFG 3, dpmpp_2m 32 steps), trained by the same function ``vidiff
  train`` calls (:func:`vidiff.train.loop.train`) with the overrides ``data.name=folder
  data.root=<export> train.out_dir=<out>/vidiff/run`` (the exported clips through the folder loader,
  captions from a ``metadata.jsonl`` written next to the export's ``manifest.jsonl``), checkpoints
  and sample sheets off, and an ``after_step`` hook that snapshots the EMA weights at the evaluation
  points and stops the run when the budget is spent.
* **peer** — lucidrains' ``video-diffusion-pytorch`` 0.7.0 (``benchmarks/.venv-peer``;
  ``python benchmarks/unet_speed.py --setup``) ``Unet3D`` sized to vidiff's parameter count (same
  search as ``unet_speed.py``) inside its own ``GaussianDiffusion`` (cosine schedule, eps
  prediction, its default L1 loss, ancestral DDPM sampler, clip_denoised). Its own ``Trainer`` calls
  ``.cuda()``, so the loop here re-creates it on CPU: Adam at its default LR 1e-4, its EMA (decay
  0.995 every 10 steps, a plain copy before step 2000), batch 8 as vidiff's recipe (its default is 32
  with 2 accumulation steps, ~8x slower per step on CPU). **Timesteps: 50**, not its default 1000
  (``--peer-timesteps``): its sampler walks every training timestep with 2 network calls (CFG), and
  its network took ~3x vidiff's time per call here, so 1000 steps made scoring days long;
  this trains and samples a 50-level DDPM on the same cosine schedule (coarser noise levels:
  somewhat lower sample quality than 1000 levels would give, in exchange for a measurable run).
  **Text conditioning:** the peer's only text encoder is a BERT helper that needs downloaded weights
  (none offline here), so it is conditioned through its ``cond_dim`` input on a fixed caption
  embedding built here: a bag-of-words count vector over the MovingShapes vocabulary
  (``vidiff.data.shapes.vocabulary()``; colour, shape and direction words are disjoint, so a
  one-object caption is encoded exactly). Its classifier-free guidance is used as it ships: captions
  dropped to its learned null embedding with ``null_cond_prob = 0.1`` in training (vidiff's
  ``p_uncond``) and ``cond_scale = 3`` at sampling (vidiff's ``cfg``; ``--peer-cfg``).
  video-diffusion-pytorch imports torchvision at import for its GIF helpers only; there is no CPU
  torchvision wheel here, so its workers install a **minimal stand-in ``torchvision`` module**
  (``benchmarks/peer.py``; nothing here calls it).

**The clock.** Each side trains in its own subprocess for ``--budget-min`` minutes of *training*
wall-clock, counted from just before the trainer is built (data indexing/decoding and model building
count, for both; imports and the peer's size search do not). Every ``--eval-every-min`` minutes of that clock (checked after each optimiser step)
the worker pauses the clock, saves the EMA weights, and resumes: saving is excluded, and no sampling
or scoring happens while training. Every side trains first, back to back (``--stage train``, the
timed stage: give it the machine). Then, per side, a second subprocess samples every snapshot on the
fixed prompt set, and ``vidiff eval --videos DIR --manifest FILE`` scores each snapshot's videos
(``--stage score``: untimed, so it may share the machine, and may use other ``--threads``;
``--jobs`` samples several snapshots at once; a sampled snapshot's ``sampling.json`` marks it done).

**Prompts and seeds.** The prompt set is exactly the one ``vidiff eval --model`` uses
(:func:`vidiff.eval.runner.eval_sets`): ``--num-videos`` captions of the in-distribution (``train``)
split and as many of the held-out split (colour-shape pairs never seen in training), with seeds
``seed * 1_000_003 + i``; the same prompts and seeds for both sides, each drawing video ``i``'s noise
from a generator seeded with its seed. Videos are written as lossless vidiff PNG filmstrips with a
manifest row ``{path, prompt, split, seed}``; ``vidiff eval`` scores each row under its ``split``.

Outputs under ``--out`` (default ``benchmarks/out/time_to_quality/``): ``results.json`` (every point:
training seconds, steps, adherence in-distribution and held-out, flicker, jitter), ``adherence.png``
(adherence vs training minutes, both sides) and per point the videos and ``vidiff eval``'s report.
The closing note gives the ratio of wall-clock to reach ``--target`` in-distribution adherence, or
each side's adherence at equal wall-clock when one never gets there.

    .venv/bin/python benchmarks/time_to_quality.py                      # 2 x 60 min + scoring
    .venv/bin/python benchmarks/time_to_quality.py --sides peer         # one side; reuses the other's
    .venv/bin/python benchmarks/time_to_quality.py --stage train        # timed stage only, then:
    .venv/bin/python benchmarks/time_to_quality.py --stage score --threads 1 --jobs 2
    .venv/bin/python benchmarks/time_to_quality.py --report-only        # re-print and re-plot
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/time_to_quality.py --budget-min 2 --eval-every-min 1 \
        --num-videos 4 --threads 1 --num-clips 64 --peer-timesteps 10 --out /tmp/ttq   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from peer import (
    PEER_VERSION,
    ROOT,
    import_peer,
    require_peer_venv,
    run_worker,
    size_unet3d,
    vidiff_python,
)

SCRIPT = Path(__file__).resolve()
DEFAULT_OUT = ROOT / "benchmarks" / "out" / "time_to_quality"
DEFAULT_CONFIG = ROOT / "configs" / "shapes-unet-tiny.yaml"
SIDES = ("vidiff", "peer")
LABELS = {"vidiff": "vidiff unet-tiny (CPU recipe)", "peer": "video-diffusion-pytorch Unet3D"}
NUM_FRAMES, SIZE, FPS = 16, 32, 8


# --------------------------------------------------------------------------------------------------
# Shared by the workers (no vidiff import: the peer's venv does not have it)


class TrainClock:
    """Training wall-clock that can be paused (snapshots do not count as training)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.paused = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 - self.paused

    @contextlib.contextmanager
    def pause(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - t


def eval_points(budget_s: float, every_s: float) -> list[float]:
    """Training seconds at which to snapshot: every ``every_s`` and at the end of the budget."""
    if budget_s <= 0 or every_s <= 0:
        raise ValueError(f"budget and eval interval must be positive, got {budget_s}, {every_s}")
    n = int(budget_s // every_s + 1e-9)
    pts = [every_s * k for k in range(1, n + 1)]
    if not pts or budget_s - pts[-1] > 1e-6:
        pts.append(budget_s)
    return pts


def bag_of_words(caption: str, vocab: list[str]) -> list[float]:
    """The peer's caption embedding: word counts over the MovingShapes vocabulary.

    An unknown word is a ``ValueError`` naming it and the vocabulary (never a silent zero)."""
    index = {w: i for i, w in enumerate(vocab)}
    vec = [0.0] * len(vocab)
    for word in caption.lower().split():
        if word not in index:
            raise ValueError(f"word {word!r} of {caption!r} is not in the vocabulary {vocab}")
        vec[index[word]] += 1.0
    return vec


def prompts_digest(prompts: list[dict]) -> str:
    """Names a prompt set (captions, splits, seeds): videos sampled for another set are stale."""
    return hashlib.sha1(json.dumps(prompts, sort_keys=True).encode()).hexdigest()[:16]


def pending_snapshots(side_dir: str | Path, prompts: list[dict], only: str | None = None):
    """``(index, path)`` of the snapshots still to sample: ``only`` ("0,2"; default all) minus those
    whose ``sampling.json`` names this prompt set (a finished snapshot is not sampled again)."""
    res = json.loads((Path(side_dir) / "train.json").read_text())
    keep = None if only is None else {int(k) for k in only.split(",")}
    digest = prompts_digest(prompts)
    todo = []
    for k, snap in enumerate(res["snapshots"]):
        done = Path(snap["path"]) / "sampling.json"
        if done.is_file() and json.loads(done.read_text()).get("prompts") == digest:
            continue
        if keep is None or k in keep:
            todo.append((k, Path(snap["path"])))
    return todo


def save_videos(path: Path, videos, seconds: float, prompts: list[dict]) -> None:
    """``videos.npy`` (uint8), then ``sampling.json``, the mark that the snapshot is sampled."""
    import numpy as np

    np.save(path / "videos.npy", videos)
    meta = {"prompts": prompts_digest(prompts), "sec_per_video": seconds / len(videos)}
    (path / "sampling.json").write_text(json.dumps(meta))
    print(f"sampled {path} ({seconds:.0f} s)", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# vidiff workers (project venv)


def worker_vidiff_train(a: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    from vidiff.config import load_config
    from vidiff.train.loop import Hooks, train

    clock = TrainClock()  # started after imports, as the peer's

    side = Path(a.side_dir)
    overrides = [
        "data.name=folder",
        f"data.root={a.clips}",
        f"train.out_dir={side / 'run'}",
        # stopped by the budget; the recipe's LR cool-down (train.decay_steps) is never reached, so
        # the LR is constant after warm-up, as a time budget (not a step count) requires
        "train.steps=1000000000",
        "train.ckpt_every=1000000000",  # no resumable checkpoints: snapshots only
        "train.sample_every=0",
        "train.log_every=25",
        *a.override,
    ]
    cfg = load_config(a.config, overrides)
    points = eval_points(a.budget_s, a.every_s)
    snaps: list[dict] = []
    params = [0]

    def after_step(step: int, ema_model) -> bool:
        """Snapshot at each evaluation point of training time; stop when the budget is spent."""
        t = clock.elapsed()
        if t >= points[len(snaps)]:
            with clock.pause():
                path = side / "snapshots" / f"{len(snaps):02d}"
                ema_model.save(path)  # an exported model folder: config.json + model.safetensors
                params[0] = sum(p.numel() for p in ema_model.parameters())
            snaps.append({"train_s": t, "steps": step, "path": str(path)})
            print(f"vidiff: snapshot {len(snaps)} at {t:.0f} s, step {step}", file=sys.stderr)
        return len(snaps) == len(points)

    train(cfg, hooks=Hooks(after_step=after_step), progress=False)
    return {
        "side": "vidiff",
        "config": f"{Path(a.config).name} + " + " ".join(overrides),
        "params": params[0],
        "threads": torch.get_num_threads(),
        "snapshots": snaps,
    }


def worker_vidiff_sample(a: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    from vidiff.pipeline import VideoPipeline

    prompts = json.loads(Path(a.prompts).read_text())
    todo = pending_snapshots(a.side_dir, prompts, a.only)
    for _, path in todo:
        pipe = VideoPipeline.load(path)
        t0 = time.perf_counter()
        vids = pipe.generate(
            [p["prompt"] for p in prompts], [p["seed"] for p in prompts], batch_size=a.sample_batch
        )
        dt = time.perf_counter() - t0
        save_videos(path, (vids.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), dt, prompts)
    return {"sampled": [k for k, _ in todo]}


# --------------------------------------------------------------------------------------------------
# peer workers (benchmarks/.venv-peer)


def _read_gif(path: Path):
    """A GIF as uint8 ``(C, T, H, W)`` with PIL (the peer's venv has no PyAV)."""
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    return np.stack(frames).transpose(3, 0, 1, 2)


def _peer_model(vdp, meta: dict):
    unet = vdp.Unet3D(dim=meta["dim"], attn_heads=meta["heads"], cond_dim=meta["cond_dim"])
    return vdp.GaussianDiffusion(
        unet, image_size=meta["size"], num_frames=meta["num_frames"], timesteps=meta["timesteps"]
    )


def worker_peer_train(a: argparse.Namespace) -> dict:
    vdp = import_peer()
    import numpy as np
    import torch
    from video_diffusion_pytorch.video_diffusion_pytorch import EMA

    torch.set_num_threads(a.threads)
    side = Path(a.side_dir)
    clips_dir = Path(a.clips)
    vocab = json.loads(Path(a.vocab).read_text())
    # The size search (48 meta-device builds) is the benchmark's own work: before the clock.
    dim, heads, _ = size_unet3d(torch, vdp.Unet3D, a.target_params, cond_dim=len(vocab))
    clock = TrainClock()
    rows = [json.loads(x) for x in (clips_dir / "manifest.jsonl").read_text().splitlines() if x]
    clips = torch.from_numpy(np.stack([_read_gif(clips_dir / r["path"]) for r in rows]))
    if tuple(clips.shape[1:]) != (3, NUM_FRAMES, SIZE, SIZE):
        raise ValueError(f"exported clips are {tuple(clips.shape[1:])}, expected 3x16x32x32")
    conds = torch.tensor([bag_of_words(r["caption"], vocab) for r in rows])

    torch.manual_seed(a.seed)
    meta = {
        "dim": dim,
        "heads": heads,
        "cond_dim": len(vocab),
        "size": SIZE,
        "num_frames": NUM_FRAMES,
        "timesteps": a.peer_timesteps,
    }
    diffusion = _peer_model(vdp, meta)
    opt = torch.optim.Adam(diffusion.parameters(), lr=a.peer_lr)
    # The peer Trainer's EMA: decay 0.995 every 10 steps, a plain copy before step 2000.
    ema, ema_model = EMA(0.995), copy.deepcopy(diffusion)
    g = torch.Generator().manual_seed(a.seed)
    points = eval_points(a.budget_s, a.every_s)
    snaps: list[dict] = []
    order: list[int] = []
    step = 0
    diffusion.train()
    while len(snaps) < len(points):
        if len(order) < a.peer_batch_size:  # epochs without replacement, seeded
            order += torch.randperm(len(rows), generator=g).tolist()
        idx, order = order[: a.peer_batch_size], order[a.peer_batch_size :]
        video = clips[idx].float() / 255  # GaussianDiffusion.forward maps [0, 1] -> [-1, 1]
        loss = diffusion(video, cond=conds[idx], null_cond_prob=a.p_uncond)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 10 == 0:
            if step < 2000:
                ema_model.load_state_dict(diffusion.state_dict())
            else:
                ema.update_model_average(ema_model, diffusion)
        step += 1
        if step % 25 == 0:
            print(f"peer: step {step} loss {loss.item():.4f}", file=sys.stderr)
        t = clock.elapsed()
        if t >= points[len(snaps)]:
            with clock.pause():
                path = side / "snapshots" / f"{len(snaps):02d}"
                path.mkdir(parents=True, exist_ok=True)
                torch.save(ema_model.state_dict(), path / "ema.pt")
                (path / "meta.json").write_text(json.dumps(meta))
            snaps.append({"train_s": t, "steps": step, "path": str(path)})
            print(f"peer: snapshot {len(snaps)} at {t:.0f} s, step {step}", file=sys.stderr)
    return {
        "side": "peer",
        "config": (
            f"video-diffusion-pytorch {PEER_VERSION} Unet3D(dim={dim}, attn_heads={heads}, "
            f"cond_dim={len(vocab)}), GaussianDiffusion(timesteps={a.peer_timesteps}, l1), "
            f"Adam lr={a.peer_lr:g}, batch {a.peer_batch_size}, null_cond_prob={a.p_uncond:g}"
        ),
        "params": sum(p.numel() for p in diffusion.denoise_fn.parameters()),
        "threads": torch.get_num_threads(),
        "snapshots": snaps,
    }


def _peer_sample(diffusion, cond, seeds: list[int], cond_scale: float):
    """The peer's ancestral sampler (``GaussianDiffusion.p_sample_loop``) with each video's noise
    drawn from its own seeded generator, so that a video depends on its prompt and seed only."""
    import torch

    gens = [torch.Generator().manual_seed(s) for s in seeds]
    shape = (diffusion.channels, diffusion.num_frames, diffusion.image_size, diffusion.image_size)

    def randn():
        return torch.stack([torch.randn(shape, generator=gen) for gen in gens])

    x = randn()
    for i in reversed(range(diffusion.num_timesteps)):
        t = torch.full((len(seeds),), i, dtype=torch.long)
        mean, _, log_var = diffusion.p_mean_variance(
            x=x, t=t, clip_denoised=True, cond=cond, cond_scale=cond_scale
        )
        x = mean + (0.5 * log_var).exp() * randn() if i > 0 else mean
    return ((x + 1) / 2).clamp(0, 1)


def worker_peer_sample(a: argparse.Namespace) -> dict:
    vdp = import_peer()
    import torch

    torch.set_num_threads(a.threads)
    vocab = json.loads(Path(a.vocab).read_text())
    prompts = json.loads(Path(a.prompts).read_text())
    cond = torch.tensor([bag_of_words(p["prompt"], vocab) for p in prompts])
    seeds = [p["seed"] for p in prompts]
    todo = pending_snapshots(a.side_dir, prompts, a.only)
    for _, path in todo:
        diffusion = _peer_model(vdp, json.loads((path / "meta.json").read_text()))
        diffusion.load_state_dict(torch.load(path / "ema.pt"))
        diffusion.eval()
        t0 = time.perf_counter()
        with torch.inference_mode():
            vids = torch.cat(
                [
                    _peer_sample(
                        diffusion,
                        cond[s : s + a.sample_batch],
                        seeds[s : s + a.sample_batch],
                        a.peer_cfg,
                    )
                    for s in range(0, len(prompts), a.sample_batch)
                ]
            )
        dt = time.perf_counter() - t0
        save_videos(path, (vids * 255).round().to(torch.uint8).numpy(), dt, prompts)
    return {"sampled": [k for k, _ in todo]}


# --------------------------------------------------------------------------------------------------
# Driver (project venv)


def export_clips(out: Path, n: int, seed: int, threads: int) -> Path:
    """``vidiff data export shapes`` (train split, GIF) once, plus a ``metadata.jsonl`` for vidiff's
    folder loader; reused when an export of the same size and seed is already there."""
    import subprocess

    clips = out / "data" / f"shapes-train-n{n}-seed{seed}"
    manifest = clips / "manifest.jsonl"
    if not manifest.is_file():
        cmd = [str(vidiff_python()), "-m", "vidiff.cli", "data", "export", "shapes"]
        cmd += ["--n", str(n), "--split", "train", "--seed", str(seed)]
        cmd += ["--out", str(clips), "--fmt", "gif", "--num-frames", str(NUM_FRAMES)]
        cmd += ["--size", str(SIZE)]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env=_env(threads), cwd=ROOT)
    rows = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]
    with open(clips / "metadata.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"path": r["path"], "caption": r["caption"]}) + "\n")
    return clips


def _env(threads: int) -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def prompt_set(num_videos: int, seed: int) -> list[dict]:
    """``vidiff eval``'s fixed prompt set: in-distribution and held-out captions and their seeds."""
    from vidiff.eval.runner import eval_sets

    return [
        {"split": es.split, "prompt": p, "seed": s}
        for es in eval_sets("shapes", num_videos, NUM_FRAMES, SIZE, seed)
        for p, s in zip(es.prompts, es.seeds)
    ]


def vidiff_params(config: str, overrides: list[str], vocab: list[str]) -> int:
    """Parameters of the vidiff pipeline the config builds (network + text encoder)."""
    from vidiff.config import load_config
    from vidiff.pipeline import VideoPipeline

    cfg = load_config(config, overrides)
    cfg.model.text = {**cfg.model.text, "vocab": vocab}
    return sum(p.numel() for p in VideoPipeline(cfg.pipeline_config()).parameters())


def score_snapshot(snap: dict, prompts: list[dict], threads: int) -> dict:
    """Write the snapshot's videos as PNG filmstrips + manifest and run ``vidiff eval --videos``."""
    import subprocess

    import numpy as np

    from vidiff.data.video_io import write_video

    path = Path(snap["path"])
    vids = np.load(path / "videos.npy")
    vdir = path / "videos"
    shutil.rmtree(vdir, ignore_errors=True)
    vdir.mkdir(parents=True)
    with open(vdir / "manifest.jsonl", "w", encoding="utf-8") as f:
        for i, (p, v) in enumerate(zip(prompts, vids)):
            name = f"{p['split']}_{i:04d}.png"
            write_video(v, vdir / name, fps=FPS)
            f.write(json.dumps({"path": name, **p}) + "\n")
    cmd = [str(vidiff_python()), "-m", "vidiff.cli", "eval", "--videos", str(vdir)]
    cmd += ["--manifest", str(vdir / "manifest.jsonl"), "--out", str(path / "eval")]
    subprocess.run(cmd, check=True, env=_env(threads), cwd=ROOT, stdout=subprocess.DEVNULL)
    m = json.loads((path / "eval" / "metrics.json").read_text())
    keys = ("adherence", "adherence_heldout", "flicker_median", "flicker_median_heldout")
    keys += ("jitter_median", "jitter_median_heldout", "fd", "fd_heldout")
    keys += ("colour_ok", "shape_ok", "direction_ok")  # what adherence is made of (in-distribution)
    return {k: m.get(k, math.nan) for k in keys}


def _worker_args(side: str, a: argparse.Namespace, clips: Path, vocab_file: Path,
                 prompts_file: Path) -> list[str]:  # fmt: skip
    return [
        "--side-dir", str(a.out / side), "--clips", str(clips), "--vocab", str(vocab_file),
        "--prompts", str(prompts_file), "--threads", str(a.threads), "--seed", str(a.seed),
        "--budget-s", str(a.budget_min * 60), "--every-s", str(a.eval_every_min * 60),
        "--peer-batch-size", str(a.peer_batch_size), "--sample-batch", str(a.sample_batch),
        "--config", str(a.config),
        "--target-params", str(a.target_params), "--peer-timesteps", str(a.peer_timesteps),
        "--peer-lr", str(a.peer_lr), "--peer-cfg", str(a.peer_cfg), "--p-uncond", str(a.p_uncond),
        *[x for o in a.override for x in ("--override", o)],
    ]  # fmt: skip


def _python(side: str) -> Path:
    return vidiff_python() if side == "vidiff" else require_peer_venv("unet_speed.py")


def train_side(side: str, a: argparse.Namespace, clips: Path, vocab_file: Path,
               prompts_file: Path) -> None:  # fmt: skip
    """The timed stage: train ``side`` for the budget, snapshotting; writes ``SIDE/train.json``."""
    side_dir = a.out / side
    shutil.rmtree(side_dir, ignore_errors=True)
    side_dir.mkdir(parents=True)
    args = _worker_args(side, a, clips, vocab_file, prompts_file)
    print(f"== {side}: training {a.budget_min:g} min", file=sys.stderr, flush=True)
    res = run_worker(_python(side), SCRIPT, ["--worker", f"{side}-train", *args], a.threads, True)
    res.update(budget_min=a.budget_min, eval_every_min=a.eval_every_min)
    (side_dir / "train.json").write_text(json.dumps(res, indent=2))


def score_side(side: str, a: argparse.Namespace, clips: Path, vocab_file: Path,
               prompts_file: Path) -> dict:  # fmt: skip
    """The untimed stage: sample and score every snapshot in ``SIDE/train.json``; the record."""
    side_dir = a.out / side
    train_json = side_dir / "train.json"
    if not train_json.is_file():
        raise SystemExit(f"{train_json} is missing: run --stage train for {side} first")
    res = json.loads(train_json.read_text())
    args = _worker_args(side, a, clips, vocab_file, prompts_file)
    t0 = time.time()
    prompts = json.loads(prompts_file.read_text())
    todo = [k for k, _ in pending_snapshots(side_dir, prompts)]
    jobs = max(1, min(a.jobs, len(todo)))
    print(f"== {side}: sampling {len(todo)} of {len(res['snapshots'])} snapshots, {jobs} at once",
          file=sys.stderr, flush=True)  # fmt: skip

    def sample(ks: list[int]) -> dict:
        only = ["--only", ",".join(map(str, ks))]
        return run_worker(_python(side), SCRIPT, ["--worker", f"{side}-sample", *args, *only],
                          a.threads, True)  # fmt: skip

    # The snapshots still to sample (no sampling.json yet), dealt round-robin to the workers.
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(sample, [todo[j::jobs] for j in range(jobs) if todo[j::jobs]]))
    points = []
    for snap in res["snapshots"]:
        smp = json.loads((Path(snap["path"]) / "sampling.json").read_text())
        smp.pop("prompts")
        scores = score_snapshot(snap, prompts, a.threads)
        points.append({"train_s": snap["train_s"], "steps": snap["steps"], **scores, **smp})
        print(f"== {side}: {_fmt_point(points[-1])}", file=sys.stderr, flush=True)
    rec = {k: res[k] for k in ("side", "config", "params", "threads")}
    rec.update(points=points, scoring_wall_s=time.time() - t0, scoring_threads=a.threads)
    rec.update(scoring_jobs=jobs)
    rec.update(budget_min=res.get("budget_min", a.budget_min))
    rec.update(eval_every_min=res.get("eval_every_min", a.eval_every_min))
    rec.update(num_videos=a.num_videos, target=a.target)
    (side_dir / "result.json").write_text(json.dumps(rec, indent=2))
    return rec


def _fmt_point(p: dict) -> str:
    return (
        f"{p['train_s'] / 60:.1f} min, step {p['steps']}: adherence {p['adherence']:.3f} "
        f"(held-out {p['adherence_heldout']:.3f}), flicker {p['flicker_median']:.4f}"
    )


def first_at(points: list[dict], target: float) -> int | None:
    """Index of the first evaluation point at or above ``target`` in-distribution adherence."""
    return next((k for k, p in enumerate(points) if p["adherence"] >= target), None)


def time_to(points: list[dict], target: float) -> float | None:
    """Training seconds of the first evaluation point at or above ``target`` adherence."""
    k = first_at(points, target)
    return None if k is None else points[k]["train_s"]


def _at(p: dict) -> str:
    return (
        f"{p['adherence']:.3f} (held-out {p['adherence_heldout']:.3f}) at "
        f"{p['train_s'] / 60:.1f} min"
    )


def closing_note(recs: dict, target: float) -> str:
    """The ratio of wall-clock to reach ``target``, or adherence at equal wall-clock. Both sides
    snapshot at the same nominal training times, so point ``k`` of one pairs with point ``k`` of the
    other (actual times overshoot the nominal ones by at most one optimiser step)."""
    if set(recs) != set(SIDES):
        return "(one side only: no comparison)"
    ours, peer = recs["vidiff"]["points"], recs["peer"]["points"]
    k_ours, k_peer = first_at(ours, target), first_at(peer, target)
    if k_ours is not None and k_peer is not None:
        t_ours, t_peer = ours[k_ours]["train_s"], peer[k_peer]["train_s"]
        return (
            f"Time to {target:.0%} in-distribution adherence: vidiff {t_ours / 60:.1f} min, peer "
            f"{t_peer / 60:.1f} min -> the peer needs {t_peer / t_ours:.2f}x vidiff's wall-clock "
            f"(resolution: one evaluation interval)."
        )
    lines = []
    if k_ours is None and k_peer is None:
        lines.append(f"Neither side reaches {target:.0%} within the budget.")
    for name, k, other, other_name in (
        ("vidiff", k_ours, peer, "peer"),
        ("peer", k_peer, ours, "vidiff"),
    ):
        if k is not None:
            mine = (ours if name == "vidiff" else peer)[k]
            got = _at(other[k]) if k < len(other) else "not measured"
            lines.append(
                f"{name} reaches {target:.0%} at {mine['train_s'] / 60:.1f} min; {other_name} "
                f"never does within the budget; at equal wall-clock {other_name} has {got}."
            )
    n = min(len(ours), len(peer))
    if n:
        lines.append(
            f"At the end of the budget: vidiff {_at(ours[n - 1])}, peer {_at(peer[n - 1])}."
        )
    return " ".join(lines)


def print_table(recs: dict) -> None:
    r = next(iter(recs.values()))  # the conditions each side recorded
    print(
        f"\nAdherence vs training wall-clock: {r['threads']} CPU thread(s), budget "
        f"{r['budget_min']:g} min, evaluation every {r.get('eval_every_min', math.nan):g} min, "
        f"{r.get('num_videos', '?')} videos per split (in-distribution / held-out), same prompts "
        "and seeds for both sides\n"
    )
    cols = [("model", 30), ("params", 7), ("train min", 9), ("steps", 6), ("adherence", 9),
            ("held-out", 8), ("colour", 6), ("shape", 5), ("direction", 9), ("flicker", 7),
            ("jitter px", 9), ("s/video", 7)]  # fmt: skip
    print("| " + " | ".join(f"{n:<{w}}" if k == 0 else f"{n:>{w}}" for k, (n, w) in
                            enumerate(cols)) + " |")  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
    for side, rec in recs.items():
        for p in rec["points"]:
            cells = [
                LABELS[side],
                f"{rec['params'] / 1e6:.2f}M",
                f"{p['train_s'] / 60:.1f}",
                str(p["steps"]),
                f"{p['adherence']:.3f}",
                f"{p['adherence_heldout']:.3f}",
                f"{p.get('colour_ok', math.nan):.2f}",
                f"{p.get('shape_ok', math.nan):.2f}",
                f"{p.get('direction_ok', math.nan):.2f}",
                f"{p['flicker_median']:.4f}",
                f"{p['jitter_median']:.2f}",
                f"{p['sec_per_video']:.1f}",
            ]
            widths = [w for _, w in cols]
            print("| " + " | ".join(f"{c:<{w}}" if k == 0 else f"{c:>{w}}"
                                    for k, (c, w) in enumerate(zip(cells, widths))) + " |")  # fmt: skip


def plot(recs: dict, target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for side, colour in zip(SIDES, ("tab:blue", "tab:orange")):
        if side not in recs:
            continue
        pts = recs[side]["points"]
        x = [p["train_s"] / 60 for p in pts]
        label = f"{LABELS[side]} ({recs[side]['params'] / 1e6:.1f}M), in-distribution"
        ax.plot(x, [p["adherence"] for p in pts], "o-", color=colour, label=label)
        ax.plot(x, [p["adherence_heldout"] for p in pts], "s--", color=colour,
                label=f"{side}, held-out pairs", alpha=0.7)  # fmt: skip
    ax.axhline(target, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="training wall-clock (min)", ylabel="prompt adherence", ylim=(-0.02, 1.02))
    ax.set_title("MovingShapes: adherence vs training time (vidiff eval)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure(a: argparse.Namespace) -> dict:
    """Export the clips and fix the prompt set; train every side in turn, then sample and score."""
    if "peer" in a.sides:
        require_peer_venv("unet_speed.py")
    a.out.mkdir(parents=True, exist_ok=True)
    from vidiff.data.shapes import vocabulary

    vocab = vocabulary()
    clips = export_clips(a.out, a.num_clips, a.seed, a.threads)
    prompts = prompt_set(a.num_videos, a.seed)
    for p in prompts:  # the peer's embedding must cover every prompt (a clear error otherwise)
        bag_of_words(p["prompt"], vocab)
    vocab_file, prompts_file = a.out / "vocab.json", a.out / "prompts.json"
    vocab_file.write_text(json.dumps(vocab))
    prompts_file.write_text(json.dumps(prompts, indent=1))
    overrides = ["data.name=folder", f"data.root={clips}", *a.override]
    files = (clips, vocab_file, prompts_file)
    if a.stage in ("all", "train"):  # the timed stage, every side back to back
        a.target_params = vidiff_params(a.config, overrides, vocab)
        for side in a.sides:
            train_side(side, a, *files)
    if a.stage == "train":
        return {}
    return {side: score_side(side, a, *files) for side in a.sides}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-min", type=float, default=60.0, help="training minutes per side")
    ap.add_argument("--eval-every-min", type=float, default=15.0, help="minutes between points")
    ap.add_argument("--num-videos", type=int, default=32, help="videos per split per point")
    ap.add_argument("--target", type=float, default=0.9, help="in-distribution adherence target")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of every subprocess")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    ap.add_argument(
        "--stage",
        choices=("all", "train", "score"),
        default="all",
        help="train (the timed part, the machine to itself), score (untimed: may share it), or both",
    )
    ap.add_argument(
        "--report-only", action="store_true", help="only re-print/plot the results under --out"
    )
    ap.add_argument("--num-clips", type=int, default=4096, help="exported training clips")
    ap.add_argument("--seed", type=int, default=0, help="export, training and eval seed")
    ap.add_argument(
        "--peer-batch-size",
        type=int,
        default=8,
        help="peer training batch (vidiff: its config's, 8)",
    )
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="vidiff recipe")
    ap.add_argument("--override", action="append", default=[], help="extra vidiff override")
    ap.add_argument("--peer-timesteps", type=int, default=50, help="GaussianDiffusion timesteps")
    ap.add_argument("--peer-lr", type=float, default=1e-4)
    ap.add_argument("--peer-cfg", type=float, default=3.0, help="the peer's cond_scale")
    ap.add_argument("--p-uncond", type=float, default=0.1, help="the peer's null_cond_prob")
    ap.add_argument("--sample-batch", type=int, default=16, help="sampling batch (both sides)")
    ap.add_argument("--jobs", type=int, default=1, help="sampling processes at once (score stage)")
    for name in ("worker", "side-dir", "clips", "vocab", "prompts", "only"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("budget-s", "every-s"):
        ap.add_argument(f"--{name}", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--target-params", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        fn = {
            "vidiff-train": worker_vidiff_train,
            "vidiff-sample": worker_vidiff_sample,
            "peer-train": worker_peer_train,
            "peer-sample": worker_peer_sample,
        }[a.worker]
        print(json.dumps(fn(a)))
        return

    if a.budget_min <= 0 or a.eval_every_min <= 0 or a.eval_every_min > a.budget_min:
        raise SystemExit("need 0 < --eval-every-min <= --budget-min")
    if a.num_videos < 2:
        raise SystemExit("--num-videos must be >= 2 (vidiff eval's FD needs a covariance)")
    a.out = a.out.resolve()
    recs = {}
    if not a.report_only:
        recs = measure(a)
        if a.stage == "train":
            print(f"trained {', '.join(a.sides)} under {a.out}; next: --stage score")
            return
    for side in SIDES:  # a side measured by an earlier call (--sides) joins the report
        f = a.out / side / "result.json"
        if side not in recs and f.is_file():
            recs[side] = json.loads(f.read_text())
    recs = {s: recs[s] for s in SIDES if s in recs}
    if not recs:
        raise SystemExit(f"no results under {a.out}")

    print_table(recs)
    note = closing_note(recs, a.target)
    print("\n" + note)
    for side, rec in recs.items():
        print(f"{side}: {rec['config']}")
    plot(recs, a.target, a.out / "adherence.png")
    summary = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "sides": recs,
        "note": note,
        "target": a.target,
        "time_to_target_s": {s: time_to(r["points"], a.target) for s, r in recs.items()},
    }
    (a.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {a.out / 'results.json'} and {a.out / 'adherence.png'}")


if __name__ == "__main__":
    main()
