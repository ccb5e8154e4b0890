"""Small networks that evaluation trusts: the shape judge, the digit judge and the video feature net.

All three are trained offline, here, on data vidiff generates itself, and shipped as safetensors in
``vidiff/assets/`` (a few hundred kB together). Reproduce the shipped weights with::

    python -m vidiff.eval.judges shape     # -> vidiff/assets/shape_judge.safetensors    (~1-2 min)
    python -m vidiff.eval.judges digit     # -> vidiff/assets/digit_judge.safetensors    (~1-3 min)
    python -m vidiff.eval.judges video     # -> vidiff/assets/video_features.safetensors (~3-4 min)
    python -m vidiff.eval.judges all [--out DIR] [--seed S]

(times on one busy CPU core; each prints its held-out accuracy, which is also stored in the file's
metadata; the shipped files' accuracies are in docs/evaluation.md).

- **Shape judge**: a 3-layer CNN on 16x16 soft-alpha crops (:func:`vidiff.eval.extract.crop_alpha`)
  trained *only* on ground-truth renders (the data layer's supersampled rasteriser) at random
  sub-pixel positions, radii, frame sizes and palette colours. Inputs are colour- and
  scale-normalised, so it judges the silhouette alone.
- **Digit judge**: the same CNN on 16x16 crops of scikit-learn's bundled ``load_digits`` (8x8, 1797
  images), upscaled to random sizes and positions as MovingDigits does, passed through the same
  extraction; every fifth image (MovingDigits' held-out split) is held out.
- **Video feature net**: a small 3D-CNN (C3D-like, Tran et al. 2015) whose penultimate 128-d
  activation is the feature for Fréchet distance / KID (the role I3D plays in FVD, Unterthiner
  et al. 2018). Trained on MovingShapes training clips with attribute heads (colour, shape,
  direction) and a frame-order head (intact vs shuffled / frozen / stuttering frames), so that
  both content and temporal corruption move the features.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from scipy import ndimage
from torch import nn

from vidiff.eval.extract import alpha_map, crop_alpha, detect_objects
from vidiff.files import save_safetensors

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHAPE_JUDGE = ASSETS / "shape_judge.safetensors"
DIGIT_JUDGE = ASSETS / "digit_judge.safetensors"
VIDEO_FEATURES = ASSETS / "video_features.safetensors"
CROP = 16  # judge input side


# ------------------------------------------------------------------------------------------------
# the crop classifier (shape and digit judges)


class CropNet(nn.Module):
    """A small CNN classifying (N, 1, 16, 16) alpha crops."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),  # 8x8
            nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),  # 4x4
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(width * 16, 64),
            nn.SiLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Judge:
    """Callable ``judge(crops (N, 16, 16)) -> list[label]`` around a trained :class:`CropNet`."""

    def __init__(self, net: CropNet, labels: list[str]):
        self.net = net.eval()
        self.labels = list(labels)

    @torch.no_grad()
    def logits(self, crops: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
        if x.ndim != 3 or x.shape[1:] != (CROP, CROP):
            raise ValueError(f"judge expects crops (N, {CROP}, {CROP}), got {tuple(x.shape)}")
        with one_thread():
            return self.net(x[:, None])

    def __call__(self, crops: np.ndarray | torch.Tensor) -> list[str]:
        if len(crops) == 0:
            return []
        return [self.labels[i] for i in self.logits(crops).argmax(1).tolist()]


@contextmanager
def one_thread():
    """Run tiny CPU ops on one thread: for a few 16x16 crops, intra-op threads only add
    synchronisation, which costs 10x on a busy machine (measured: 15 vs 170 ms per video)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _save(module: nn.Module, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_safetensors(state, path, metadata={"vidiff": json.dumps(meta)})


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"judge weights {path} not found; train them with `python -m vidiff.eval.judges`"
        )
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("vidiff", "{}"))
    return load_file(str(path)), meta


_CACHE: dict[str, object] = {}


def _load_judge(path: Path) -> Judge:
    key = str(path)
    if key not in _CACHE:
        state, meta = _load(path)
        net = CropNet(len(meta["labels"]), width=meta.get("width", 32))
        net.load_state_dict(state)
        _CACHE[key] = Judge(net, meta["labels"])
    return _CACHE[key]  # type: ignore[return-value]


def load_shape_judge(path: str | Path | None = None) -> Judge:
    """The shipped shape judge (circle / square / triangle), or one saved at ``path``."""
    return _load_judge(Path(path) if path else SHAPE_JUDGE)


def load_digit_judge(path: str | Path | None = None) -> Judge:
    """The shipped digit judge (labels ``"0"`` .. ``"9"``), or one saved at ``path``."""
    return _load_judge(Path(path) if path else DIGIT_JUDGE)


def object_crop(frame: np.ndarray, threshold: float = 0.5, bridge: int = 0) -> np.ndarray | None:
    """The judge input for the largest object of one frame ``(C, H, W)``: exactly the crop the
    probes take (soft alpha inside the dilated component, square box crop, 16x16)."""
    video = frame[:, None]
    dets = detect_objects(video, threshold=threshold, bridge=bridge)[0]
    if not dets:
        return None
    d = dets[0]
    return crop_alpha(alpha_map(video)[0] * d.mask_dilated(), d.box, CROP)


# ------------------------------------------------------------------------------------------------
# training data: ground-truth renders only


def _coverage_fn():
    """The data layer's anti-aliased rasteriser ``coverage(kind, cx, cy, r, size, supersample)``."""
    from vidiff.data.render import coverage

    return coverage


def render_shape_crops(
    n: int, seed: int, sizes: tuple[int, ...] = (32, 48, 64), augment: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` judge crops of ground-truth renders with labels: random shape, palette colour, frame
    size, radius (the MovingShapes range [4, 6] px at 32 px, widened by 15% each way, scaled with
    the size) and sub-pixel position fully inside the frame. ``augment`` blurs (sigma <= 0.7 px)
    and/or adds pixel noise (sigma <= 0.03) to half of them."""
    from vidiff.eval.probes import vocabulary

    coverage = _coverage_fn()
    colours, shapes, _ = vocabulary()
    palette = np.array(list(colours.values()), np.float32)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
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
        crop = object_crop(frame)
        if crop is None:
            continue
        xs.append(crop)
        ys.append(k)
    return np.stack(xs), np.array(ys), list(shapes)


def render_digit_crops(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` judge crops of ``load_digits`` images (8x8 in 0..16) rendered as MovingDigits does:
    bilinearly upscaled to a random 10-26 px, at a random integer position in a 32 or 64 px frame."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
        i = int(rng.integers(len(images)))
        side = int(rng.integers(10, 27))
        img = torch.from_numpy(images[i].reshape(1, 1, 8, 8).astype(np.float32) / 16)
        up = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
        s = 64 if side > 16 else int(rng.choice([32, 64]))
        frame = np.zeros((1, s, s), np.float32)
        x0, y0 = rng.integers(1, s - side - 1, size=2)
        frame[0, y0 : y0 + side, x0 : x0 + side] = up.clamp(0, 1).numpy()
        crop = object_crop(frame, threshold=0.25, bridge=1)
        if crop is None:
            continue
        xs.append(crop)
        ys.append(int(labels[i]))
    return np.stack(xs), np.array(ys)


def _fit(
    net: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, seed: int, lr: float = 3e-3
) -> nn.Module:
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x)[:, None].float(), torch.from_numpy(y).long()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for step in range(steps):
        idx = torch.randint(len(xt), (128,), generator=g)
        loss = F.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"  step {step:5d} loss {loss.item():.4f}", flush=True)
    return net.eval()


def _accuracy(judge: Judge, x: np.ndarray, y: np.ndarray) -> float:
    return float((judge.logits(x).argmax(1).numpy() == y).mean())


def train_shape_judge(
    out: str | Path = SHAPE_JUDGE,
    num_train: int = 12000,
    steps: int = 2500,
    seed: int = 0,
    num_val: int = 2000,
) -> float:
    """Train the shape judge on ground-truth renders, save it, return held-out accuracy."""
    t0 = time.time()
    x, y, labels = render_shape_crops(num_train, seed=seed, augment=True)
    xv, yv, _ = render_shape_crops(num_val, seed=seed + 10_000)
    net = _fit(CropNet(len(labels)), x, y, steps, seed)
    acc = _accuracy(Judge(net, labels), xv, yv)
    _save(net, Path(out), {"labels": labels, "width": 32, "heldout_accuracy": acc, "seed": seed})
    print(f"shape judge: held-out accuracy {acc:.4f} ({time.time() - t0:.0f}s) -> {out}")
    return acc


def train_digit_judge(
    out: str | Path = DIGIT_JUDGE,
    num_train: int = 12000,
    steps: int = 2500,
    seed: int = 0,
    num_val: int = 2000,
) -> float:
    """Train the digit judge on the ``load_digits`` images of MovingDigits' train split (index % 5
    != 0), save it, return accuracy on renders of the held-out images (index % 5 == 0)."""
    from sklearn.datasets import load_digits

    t0 = time.time()
    d = load_digits()
    held = np.arange(len(d.images)) % 5 == 0
    x, y = render_digit_crops(d.images[~held], d.target[~held], num_train, seed)
    xv, yv = render_digit_crops(d.images[held], d.target[held], num_val, seed + 10_000)
    labels = [str(i) for i in range(10)]
    net = _fit(CropNet(10), x, y, steps, seed)
    acc = _accuracy(Judge(net, labels), xv, yv)
    _save(net, Path(out), {"labels": labels, "width": 32, "heldout_accuracy": acc, "seed": seed})
    print(f"digit judge: held-out accuracy {acc:.4f} ({time.time() - t0:.0f}s) -> {out}")
    return acc


# ------------------------------------------------------------------------------------------------
# the video feature network for Fréchet distance / KID


@dataclass
class FeatureNetConfig:
    frames: int = 16  # every input is resampled to frames x size x size
    size: int = 32
    width: int = 16
    dim: int = 128  # feature dimension
    num_colours: int = 7
    num_shapes: int = 3
    num_directions: int = 4
    num_orders: int = 4  # intact, shuffled, frozen, stutter


class VideoFeatureNet(nn.Module):
    """A small C3D-style 3D-CNN; :meth:`features` is the 128-d embedding used for FD / KID.

    Inputs are ``(B, C, T, H, W)`` in [0, 1] (grey is repeated to RGB), resampled trilinearly to
    ``frames x size x size`` so videos of any shape map to the same feature space.
    """

    def __init__(self, config: FeatureNetConfig | None = None):
        super().__init__()
        self.config = c = config or FeatureNetConfig()
        w = c.width

        def block(i: int, o: int, stride) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(i, o, 3, stride=stride, padding=1), nn.GroupNorm(4, o), nn.SiLU()
            )

        self.body = nn.Sequential(
            block(3, w, (1, 2, 2)),  # 16 x 16 x 16
            block(w, 2 * w, (2, 2, 2)),  # 8 x 8 x 8
            block(2 * w, 4 * w, (2, 2, 2)),  # 4 x 4 x 4
        )
        self.proj = nn.Linear(4 * w * 2, c.dim)
        self.heads = nn.ModuleDict(
            {
                "colour": nn.Linear(c.dim, c.num_colours),
                "shape": nn.Linear(c.dim, c.num_shapes),
                "direction": nn.Linear(c.dim, c.num_directions),
                "order": nn.Linear(c.dim, c.num_orders),
            }
        )

    def prepare(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5:
            raise ValueError(f"expected videos (B, C, T, H, W), got shape {tuple(video.shape)}")
        if video.shape[1] == 1:
            video = video.expand(-1, 3, -1, -1, -1)
        if video.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {video.shape[1]}")
        c = self.config
        if tuple(video.shape[2:]) != (c.frames, c.size, c.size):
            video = F.interpolate(
                video, size=(c.frames, c.size, c.size), mode="trilinear", align_corners=False
            )
        return video * 2 - 1

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) in [0, 1] -> (B, dim) features."""
        h = self.body(self.prepare(video.float()))
        # Mean and max over space-time: the max keeps sparse events (a stutter) visible.
        pooled = torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)
        return torch.tanh(self.proj(pooled))

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(video)
        return {k: head(f) for k, head in self.heads.items()}


def load_feature_net(path: str | Path | None = None) -> VideoFeatureNet:
    """The shipped video feature network (or one saved at ``path``), in eval mode."""
    path = Path(path) if path else VIDEO_FEATURES
    key = f"features:{path}"
    if key not in _CACHE:
        state, meta = _load(path)
        net = VideoFeatureNet(FeatureNetConfig(**meta["config"]))
        net.load_state_dict(state)
        _CACHE[key] = net.eval()
    return _CACHE[key]  # type: ignore[return-value]


@torch.no_grad()
def video_features(
    videos: torch.Tensor, net: VideoFeatureNet | None = None, batch_size: int = 64
) -> np.ndarray:
    """Features ``(N, dim)`` (float64) of videos ``(N, C, T, H, W)`` in [0, 1]."""
    net = net or load_feature_net()
    outs = [net.features(videos[i : i + batch_size]) for i in range(0, len(videos), batch_size)]
    return torch.cat(outs).double().numpy()


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
    from vidiff.data.shapes import MovingShapes

    ds = MovingShapes(n, split="train", seed=seed)
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
    from vidiff.eval.probes import parse_shapes_caption, vocabulary

    t0 = time.time()
    colours, shapes, directions = vocabulary()
    items = _shapes_training_clips(num_clips + 256, seed)
    videos = torch.stack([it["video"] for it in items])
    attrs = [parse_shapes_caption(it["caption"])[0] for it in items]
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
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
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

    net.train()
    for step in range(steps):
        x, ys = batch(torch.randint(num_clips, (batch_size,), generator=g))
        loss = loss_fn(net(x), ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)
    net.eval()
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
    _save(net, Path(out), meta)
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
            acc["shape"] = train_shape_judge(folder / SHAPE_JUDGE.name, seed=seed)
        if which in ("digit", "all"):
            acc["digit"] = train_digit_judge(folder / DIGIT_JUDGE.name, seed=seed)
        if which in ("video", "all"):
            acc["video"] = train_feature_net(folder / VIDEO_FEATURES.name, seed=seed)
        return acc
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m vidiff.eval.judges", description=__doc__.splitlines()[0]
    )
    p.add_argument("which", choices=["shape", "digit", "video", "all"])
    p.add_argument("--out", default=str(ASSETS), help="folder for the .safetensors files")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_judges(args.which, out=args.out, seed=args.seed)


if __name__ == "__main__":
    main()
