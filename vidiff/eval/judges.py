"""Small networks that evaluation trusts: the shape judge, the digit judge and the video feature net.

This module holds the networks and loads the shipped weights (safetensors in ``vidiff/assets/``, a few
hundred kB together); :mod:`vidiff.eval.judge_training` trains them (``vidiff eval-judges``), on data
vidiff generates itself. Each file's metadata stores its held-out accuracy (docs/evaluation.md lists
the shipped files').

- **Shape judge**: a 3-layer CNN on 16x16 soft-alpha crops (:func:`vidiff.eval.extract.crop_alpha`)
  trained *only* on ground-truth renders. Inputs are colour- and scale-normalised, so it judges the
  silhouette alone.
- **Digit judge**: the same CNN on 16x16 crops of scikit-learn's bundled ``load_digits`` images,
  rendered as MovingDigits draws them.
- **Video feature net**: a small 3D-CNN (C3D-like, Tran et al. 2015) whose penultimate 128-d
  activation is the feature for Fréchet distance / KID (the role I3D plays in FVD, Unterthiner
  et al. 2018), trained with attribute heads (colour, shape, direction) and a frame-order head, so
  that both content and temporal corruption move the features.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
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


def save_weights(module: nn.Module, path: Path, meta: dict) -> None:
    """Write ``module``'s weights as safetensors with ``meta`` (JSON) in the file's metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_safetensors(state, path, metadata={"vidiff": json.dumps(meta)})


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"judge weights {path} not found; train them with `vidiff eval-judges`"
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
