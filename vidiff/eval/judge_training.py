"""Training of the evaluation networks of :mod:`vidiff.eval.judges`, on data vidiff generates itself.

Reproduce the shipped weights with ``vidiff eval-judges all`` (or ``python -m
vidiff.eval.judge_training {shape,digit,video,all} [--out DIR] [--seed S]``); on one busy CPU core the
shape judge takes ~1-2 min, the digit judge ~1-3 min, the video feature net ~3-4 min. Each prints its
held-out accuracy, which is also stored in the file's metadata.

- **Shape judge**: trained *only* on ground-truth renders (the data layer's supersampled rasteriser)
  at random sub-pixel positions, radii, frame sizes and palette colours.
- **Digit judge**: on crops of scikit-learn's ``load_digits`` (8x8, 1797 images), upscaled to random
  sizes and positions as MovingDigits does, passed through the same extraction; every fifth image
  (MovingDigits' held-out split) is held out.
- **Video feature net**: on MovingShapes training clips with attribute heads (colour, shape,
  direction) and a frame-order head (intact vs shuffled / frozen / stuttering frames).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from vidiff.data import shapes as shapes_data
from vidiff.data.render import coverage
from vidiff.eval.judges import (
    ASSETS,
    DIGIT_JUDGE,
    SHAPE_JUDGE,
    VIDEO_FEATURES,
    CropNet,
    FeatureNetConfig,
    Judge,
    VideoFeatureNet,
    object_crop,
    save_weights,
)

# ------------------------------------------------------------------------------------------------
# training data: ground-truth renders only


def _crops(n: int, seed: int, render, **crop_options) -> tuple[np.ndarray, np.ndarray]:
    """``n`` judge crops with labels of frames ``render(rng) -> (frame (C, H, W), label)`` draws
    (``crop_options`` go to :func:`object_crop`); a frame without a croppable object is drawn again."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
        frame, label = render(rng)
        crop = object_crop(frame, **crop_options)
        if crop is not None:
            xs.append(crop)
            ys.append(label)
    return np.stack(xs), np.array(ys)


def render_shape_crops(
    n: int, seed: int, sizes: tuple[int, ...] = (32, 48, 64), augment: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` judge crops of ground-truth renders with labels: random shape, palette colour, frame
    size, radius (the MovingShapes range [4, 6] px at 32 px, widened by 15% each way, scaled with
    the size) and sub-pixel position fully inside the frame. ``augment`` blurs (sigma <= 0.7 px)
    and/or adds pixel noise (sigma <= 0.03) to half of them."""
    shapes = shapes_data.SHAPES
    palette = np.array(list(shapes_data.COLOURS.values()), np.float32)

    def render(rng: np.random.Generator) -> tuple[np.ndarray, int]:
        k = int(rng.integers(len(shapes)))
        s = int(rng.choice(sizes))
        r = rng.uniform(3.4, 6.9) * s / 32
        cx, cy = rng.uniform(r + 1, s - r - 1, size=2)
        cov = coverage(shapes[k], np.array([cx]), np.array([cy]), r, s, 4)[0]  # (H, W)
        if augment and rng.random() < 0.5:
            # Mild blur and pixel noise on half of the renders, so the judge reads a slightly soft
            # silhouette (as a generator draws it) the same way; the shapes themselves stay exact.
            cov = ndimage.gaussian_filter(cov, rng.uniform(0.0, 0.7))
        frame = cov[None] * palette[rng.integers(len(palette))][:, None, None]
        if augment and rng.random() < 0.5:
            frame = np.clip(frame + rng.normal(0, rng.uniform(0, 0.03), frame.shape), 0, 1)
        return frame, k

    return (*_crops(n, seed, render), list(shapes))


def render_digit_crops(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` judge crops of ``load_digits`` images (8x8 in 0..16) rendered as MovingDigits does:
    bilinearly upscaled to a random 10-26 px, at a random integer position in a 32 or 64 px frame."""

    def render(rng: np.random.Generator) -> tuple[np.ndarray, int]:
        i = int(rng.integers(len(images)))
        side = int(rng.integers(10, 27))
        img = torch.from_numpy(images[i].reshape(1, 1, 8, 8).astype(np.float32) / 16)
        up = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
        s = 64 if side > 16 else int(rng.choice([32, 64]))
        frame = np.zeros((1, s, s), np.float32)
        x0, y0 = rng.integers(1, s - side - 1, size=2)
        frame[0, y0 : y0 + side, x0 : x0 + side] = up.clamp(0, 1).numpy()
        return frame, int(labels[i])

    return _crops(n, seed, render, threshold=0.25, bridge=1)


def _optimise(
    net: nn.Module, loss_at, steps: int, lr: float, log_every: int, t0: float
) -> nn.Module:
    """Train ``net`` on ``loss_at(step)`` for ``steps`` AdamW steps (weight decay 1e-4, a one-cycle
    schedule peaking at ``lr``), printing the loss every ``log_every`` steps; returns it in eval mode."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for step in range(steps):
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            print(f"  step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)
    return net.eval()


def _fit(
    net: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, seed: int, t0: float, lr: float = 3e-3
) -> nn.Module:
    """Fit a crop classifier on ``(x, y)`` with batches of 128 drawn from ``seed``."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x)[:, None].float(), torch.from_numpy(y).long()
    g = torch.Generator().manual_seed(seed)

    def loss_at(step: int) -> torch.Tensor:
        idx = torch.randint(len(xt), (128,), generator=g)
        return F.cross_entropy(net(xt[idx]), yt[idx])

    return _optimise(net, loss_at, steps, lr, log_every=500, t0=t0)


CROP_JUDGES = {"shape": SHAPE_JUDGE, "digit": DIGIT_JUDGE}  # kind -> the shipped weights file


def train_crop_judge(
    kind: str,
    out: str | Path | None = None,
    num_train: int = 12000,
    steps: int = 2500,
    seed: int = 0,
    num_val: int = 2000,
) -> float:
    """Train a :class:`CropNet` judge, save it to ``out`` (default: the shipped file of ``kind``)
    with its held-out accuracy, and return that accuracy.

    ``kind`` ``"shape"``: on ground-truth renders (augmented), held out: fresh renders. ``"digit"``:
    on the ``load_digits`` images of MovingDigits' train split (index % 5 != 0), held out: renders of
    the held-out images (index % 5 == 0).
    """
    if kind not in CROP_JUDGES:
        raise ValueError(f"unknown crop judge {kind!r}; expected one of {sorted(CROP_JUDGES)}")
    t0 = time.time()
    if kind == "shape":
        x, y, labels = render_shape_crops(num_train, seed=seed, augment=True)
        train = (x, y)
        heldout = render_shape_crops(num_val, seed=seed + 10_000)[:2]
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        held = np.arange(len(d.images)) % 5 == 0
        train = render_digit_crops(d.images[~held], d.target[~held], num_train, seed)
        heldout = render_digit_crops(d.images[held], d.target[held], num_val, seed + 10_000)
        labels = [str(i) for i in range(10)]
    out = Path(out) if out is not None else CROP_JUDGES[kind]
    net = _fit(CropNet(len(labels)), *train, steps, seed, t0)
    xv, yv = heldout
    acc = float((Judge(net, labels).logits(xv).argmax(1).numpy() == yv).mean())
    meta = {"labels": labels, "width": 32, "heldout_accuracy": acc, "seed": seed}
    save_weights(net, out, meta)
    print(f"{kind} judge: held-out accuracy {acc:.4f} ({time.time() - t0:.0f}s) -> {out}")
    return acc


def corrupt_order(video: torch.Tensor, kind: int, g: torch.Generator) -> torch.Tensor:
    """Temporal corruptions for the frame-order head, on (C, T, H, W): 0 intact, 1 shuffled
    frames, 2 frozen (first frame repeated), 3 stutter (a random frame held for a few frames)."""
    t = video.shape[1]
    if kind == 0:
        return video
    if kind == 1:
        perm = torch.randperm(t, generator=g)
        while t > 1 and bool((perm == torch.arange(t)).all()):
            perm = torch.randperm(t, generator=g)
        return video[:, perm]
    if kind == 2:
        return video[:, :1].expand_as(video).clone()
    idx = torch.arange(t)
    s = int(torch.randint(1, max(2, t - 3), (1,), generator=g))
    n = int(torch.randint(3, 6, (1,), generator=g))
    idx[s : s + n] = s
    return video[:, idx]


def _shapes_training_clips(n: int, seed: int):
    ds = shapes_data.MovingShapes(n, split="train", seed=seed)
    return [ds[i] for i in range(n)]


def train_feature_net(
    out: str | Path = VIDEO_FEATURES,
    num_clips: int = 3000,
    steps: int = 800,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, float]:
    """Train the video feature network on MovingShapes training clips, save it, return the
    held-out head accuracies."""
    t0 = time.time()
    colours, shapes, directions = shapes_data.COLOURS, shapes_data.SHAPES, shapes_data.DIRECTIONS
    items = _shapes_training_clips(num_clips + 256, seed)
    videos = torch.stack([it["video"] for it in items])
    attrs = [shapes_data.parse_caption(it["caption"])[0] for it in items]
    lab = {
        "colour": torch.tensor([list(colours).index(a["colour"]) for a in attrs]),
        "shape": torch.tensor([list(shapes).index(a["shape"]) for a in attrs]),
        "direction": torch.tensor([list(directions).index(a["direction"]) for a in attrs]),
    }
    print(f"  {len(items)} clips {tuple(videos.shape[1:])} in {time.time() - t0:.0f}s", flush=True)
    cfg = FeatureNetConfig(
        num_colours=len(colours), num_shapes=len(shapes), num_directions=len(directions)
    )
    torch.manual_seed(seed)
    net = VideoFeatureNet(cfg)
    g = torch.Generator().manual_seed(seed)

    def batch(idx: torch.Tensor):
        kinds = torch.randint(0, cfg.num_orders, (len(idx),), generator=g)
        kinds[: len(idx) // 2] = 0  # half intact, so attribute heads mostly see real motion
        x = torch.stack([corrupt_order(videos[i], int(k), g) for i, k in zip(idx.tolist(), kinds)])
        ys = {k: v[idx] for k, v in lab.items()}
        ys["order"] = kinds
        return x, ys

    def loss_fn(outs, ys):
        intact = ys["order"] == 0
        total = F.cross_entropy(outs["order"], ys["order"])
        for k in ("colour", "shape"):
            total = total + F.cross_entropy(outs[k], ys[k])
        # Direction is undefined for temporally corrupted clips: learn it on intact ones only.
        if intact.any():
            total = total + F.cross_entropy(outs["direction"][intact], ys["direction"][intact])
        return total

    def loss_at(step: int) -> torch.Tensor:
        x, ys = batch(torch.randint(num_clips, (batch_size,), generator=g))
        return loss_fn(net(x), ys)

    _optimise(net, loss_at, steps, lr=2e-3, log_every=100, t0=t0)
    with torch.no_grad():
        x, ys = batch(torch.arange(num_clips, num_clips + 256))
        outs = net(x)
        intact = ys["order"] == 0
        acc = {
            k: float(
                (outs[k].argmax(1) == ys[k])
                .float()[intact if k == "direction" else slice(None)]
                .mean()
            )
            for k in outs
        }
    meta = {
        "config": asdict(cfg),
        "heldout_accuracy": acc,
        "seed": seed,
        "num_clips": num_clips,
        "steps": steps,
    }
    save_weights(net, Path(out), meta)
    print(f"video features: held-out accuracy {acc} ({time.time() - t0:.0f}s) -> {out}")
    return acc


def train_judges(which: str = "all", *, out: str = str(ASSETS), seed: int = 0) -> dict:
    """Retrain the evaluation networks (shape | digit | video | all) into OUT; returns their
    held-out accuracies. The shipped weights are ``train_judges("all")`` with seed 0."""
    if which not in ("shape", "digit", "video", "all"):
        raise ValueError(f"unknown judge {which!r}; expected shape, digit, video or all")
    folder = Path(out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small nets: one thread is as fast and leaves the other core free
    try:
        acc: dict = {}
        if which in ("shape", "all"):
            acc["shape"] = train_crop_judge("shape", folder / SHAPE_JUDGE.name, seed=seed)
        if which in ("digit", "all"):
            acc["digit"] = train_crop_judge("digit", folder / DIGIT_JUDGE.name, seed=seed)
        if which in ("video", "all"):
            acc["video"] = train_feature_net(folder / VIDEO_FEATURES.name, seed=seed)
        return acc
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m vidiff.eval.judge_training", description=__doc__.splitlines()[0]
    )
    p.add_argument("which", choices=["shape", "digit", "video", "all"])
    p.add_argument("--out", default=str(ASSETS), help="folder for the .safetensors files")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_judges(args.which, out=args.out, seed=args.seed)


if __name__ == "__main__":
    main()
