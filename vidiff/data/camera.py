"""CameraMoves: camera moves over real photographs, with the camera path as ground truth.

A clip is a square window moving over a photograph: a pan (left, right, up, down) at a speed in
pixels per frame of the clip, a zoom (in, out) at a speed in percent per frame, or a static
camera. The photographs are the sample images that installable packages ship -- scikit-learn's
``load_sample_images`` (a core dependency) and scikit-image's ``skimage.data`` (the ``camera``
extra) -- so nothing is downloaded. :data:`HELDOUT_PHOTOS` never occur in the ``train`` split; the
``heldout`` split uses only them.

The camera of frame ``t`` is its position relative to frame 0, ``(x, y, log zoom)``: x, y in clip
pixels (x right, y down), zoom > 1 zoomed in. A camera panning left moves the picture right in the
frame. Items: ``{"video": (3, T, S, S), "caption": "a photo", "gt": {move, speed, camera (T, 3),
photo}, "cond": {"camera": (T, 3)}}`` -- a pure function of ``(seed, split, index)``. With
``warp=True`` the cond also holds ``camera_warp`` ``(4, T, S, S)``: frame 0 carried along the path
(:func:`warp_first_frame`), the per-pixel form of the camera that camera models take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from .synthetic import SyntheticClips

MOVES = ("pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out", "static")
PAN_DIRECTIONS = {"pan-left": (-1, 0), "pan-right": (1, 0), "pan-up": (0, -1), "pan-down": (0, 1)}
# Speed ranges of the dataset and the default of `--camera NAME`: px/frame at a 32-px clip (pans,
# scaled with the clip) and percent per frame (zooms).
PAN_SPEED, ZOOM_SPEED = (0.5, 1.5), (1.0, 3.0)
DEFAULT_SPEED = {"pan": 1.0, "zoom": 2.0, "static": 0.0}
TRAIN_PHOTOS = ("china", "astronaut", "coffee", "rocket", "hubble_deep_field", "motorcycle")
HELDOUT_PHOTOS = ("flower", "chelsea")
CAPTION = "a photo"
WINDOW = 1.25  # the window's side at zoom 1, in clip sizes: room for zooming in
PHOTO_SIDE = 4  # photos are resized to a short side of this many clip sizes


def vocabulary() -> list[str]:
    """The words of the captions."""
    return CAPTION.split()


def move_kind(move: str) -> str:
    """``pan``, ``zoom`` or ``static``."""
    return move.split("-")[0]


def parse_camera_move(text: str) -> tuple[str, float]:
    """``NAME[:SPEED]`` -> ``(move, speed)``; a bad name or speed is a ``ValueError`` naming it."""
    name, _, speed_text = str(text).strip().lower().partition(":")
    if name not in MOVES:
        raise ValueError(f"unknown camera move {name!r}; expected one of {list(MOVES)}[:SPEED]")
    kind = move_kind(name)
    if not speed_text:
        return name, DEFAULT_SPEED[kind]
    try:
        speed = float(speed_text)
    except ValueError:
        speed = math.nan
    if kind == "static" or not (math.isfinite(speed) and speed > 0):
        raise ValueError(
            f"camera speed {speed_text!r} of {name!r}: give a positive number (px/frame for "
            "pans, percent per frame for zooms; none for static)"
        )
    return name, speed


def camera_path(move: str, speed: float, num_frames: int, size: int) -> torch.Tensor:
    """The ``(T, 3)`` camera ``(x, y, log zoom)`` of a constant move; ``speed`` in clip px/frame
    (pans) or percent per frame (zooms)."""
    if move not in MOVES:
        raise ValueError(f"unknown camera move {move!r}; expected one of {list(MOVES)}")
    t = torch.arange(num_frames, dtype=torch.float32)
    path = torch.zeros(num_frames, 3)
    if move in PAN_DIRECTIONS:
        ux, uy = PAN_DIRECTIONS[move]
        path[:, 0], path[:, 1] = ux * speed * t, uy * speed * t
    elif move != "static":
        sign = 1.0 if move == "zoom-in" else -1.0
        path[:, 2] = sign * math.log1p(speed / 100) * t
    return path


@cache
def _photo(name: str) -> torch.Tensor:
    """A sample photograph, ``(3, H, W)`` float32 in [0, 1], from the package that ships it."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        try:
            import skimage.data
        except ImportError:
            raise ValueError(
                "the camera dataset needs scikit-image's sample photos: pip install scikit-image "
                "(vidiff's `camera` extra)"
            ) from None
        image = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(
            skimage.data, name
        )()  # fmt: skip
    return torch.from_numpy(np.array(image[..., :3])).permute(2, 0, 1).float() / 255


@cache
def photo_at(name: str, size: int) -> torch.Tensor:
    """Photo ``name`` resized (antialiased) to a short side of ``PHOTO_SIDE * size`` px."""
    image = _photo(name)
    scale = PHOTO_SIDE * size / min(image.shape[1:])
    hw = [max(1, round(d * scale)) for d in image.shape[1:]]
    return F.interpolate(image[None], size=hw, mode="bilinear", antialias=True)[0].clamp(0, 1)


def render_camera(photo: torch.Tensor, start: tuple[float, float], path: torch.Tensor, size: int):
    """Frames ``(3, T, S, S)`` of a camera on ``photo`` ``(3, H, W)``: frame t's window is centred
    at ``start`` (photo px) plus the path's (x, y) in window units, side ``WINDOW * S / zoom``."""
    _, h, w = photo.shape
    base = WINDOW * size  # window side at zoom 1, photo px
    u = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5  # (S,) in (-1/2, 1/2)
    side = base * torch.exp(-path[:, 2])  # (T,)
    cx = start[0] + path[:, 0] * base / size  # (T,)
    cy = start[1] + path[:, 1] * base / size
    gx = (cx[:, None] + u[None] * side[:, None]) * 2 / w - 1  # (T, S), align_corners=False
    gy = (cy[:, None] + u[None] * side[:, None]) * 2 / h - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)  # (T,S,S,2)
    frames = F.grid_sample(
        photo[None].expand(len(path), -1, -1, -1), grid, mode="bilinear", align_corners=False
    )  # (T, 3, S, S)
    return frames.permute(1, 0, 2, 3).clamp(0, 1).contiguous()


def warp_first_frame(
    frame: torch.Tensor, path: torch.Tensor, padding: str = "zeros"
) -> torch.Tensor:
    """Frame 0 carried along a camera path: ``(B, 4, T, H, W)`` = the RGB of frame 0 where frame
    ``t`` sees what frame 0 saw (zero elsewhere) and a fourth channel marking those pixels.

    ``frame`` ``(B, 3, H, W)`` (or ``(3, H, W)``) in [0, 1], ``path`` ``(B, T, 3)`` (or ``(T, 3)``)
    as :func:`camera_path` gives it, x in px of the width, y of the height. The geometry is
    :func:`render_camera`'s: a pixel at window coordinate ``u`` of frame ``t`` shows the photo at
    ``c_t + u side_t``, which is window coordinate ``((c_t - c_0) + u side_t) / side_0`` of frame
    0. Pans uncover a strip, zooming out a border; the rest is exact up to bilinear resampling
    (zooming in magnifies). This is the camera rendered into the clip, which a network refines
    and completes (render-then-refine, as ViewCrafter and CamTrol render a point cloud).
    ``padding="border"`` fills the uncovered pixels with frame 0's nearest edge pixel instead.
    """
    if frame.ndim == 3:
        frame = frame[None]
    if path.ndim == 2:
        path = path[None]
    b, _, h, w = frame.shape
    t = path.shape[1]
    path = path.to(frame.dtype)
    rel = path - path[:, :1]  # (B, T, 3) from frame 0
    zoom = torch.exp(-path[..., 2:3])  # side_t / base: (B, T, 1)
    zoom0 = torch.exp(path[:, :1, 2:3])  # base / side_0
    axes = []
    for n, k in ((w, 0), (h, 1)):
        u = (torch.arange(n, dtype=frame.dtype, device=frame.device) + 0.5) / n - 0.5  # (n,)
        u0 = (rel[..., k : k + 1] / n + u * zoom) * zoom0  # (B, T, n): frame-0 window coords
        axes.append(2 * u0)  # grid_sample units, align_corners=False
    gx = axes[0][:, :, None, :].expand(b, t, h, w)
    gy = axes[1][:, :, :, None].expand(b, t, h, w)
    grid = torch.stack([gx, gy], -1).reshape(b * t, h, w, 2)
    source = frame[:, None].expand(b, t, 3, h, w).reshape(b * t, 3, h, w)
    rgb = F.grid_sample(source, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    # seen: between frame 0's outermost pixel centres (beyond them bilinear reads the padding)
    inner = torch.tensor([1 - 1 / w, 1 - 1 / h], dtype=frame.dtype, device=frame.device) + 1e-4
    seen = (grid.abs() <= inner).all(-1).to(frame.dtype)[:, None]  # (B*T, 1, H, W)
    rgb = rgb.clamp(0, 1) * (seen if padding == "zeros" else 1)
    out = torch.cat([rgb, seen], 1).reshape(b, t, 4, h, w)
    return out.permute(0, 2, 1, 3, 4).contiguous()


@dataclass(eq=False)
class CameraMoves(SyntheticClips):
    """Camera moves over sample photographs (see the module docstring). ``warp``: also give the
    per-pixel camera (``cond["camera_warp"]``); ``warp_dropout``: the share of items whose warp is
    zeros (nothing known), so that a model also draws a clip's first frame itself."""

    moves: tuple[str, ...] = MOVES
    warp: bool = False
    warp_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [m for m in self.moves if m not in MOVES]
        if bad or not self.moves:
            raise ValueError(f"unknown camera moves {bad}; expected some of {list(MOVES)}")
        if not 0 <= self.warp_dropout <= 1:
            raise ValueError(f"warp_dropout must be in [0, 1], got {self.warp_dropout}")
        self.moves = tuple(self.moves)
        self.photos = TRAIN_PHOTOS if self.split == "train" else HELDOUT_PHOTOS

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        s, t = self.size, self.num_frames
        name = self.photos[rng.integers(len(self.photos))]
        move = self.moves[rng.integers(len(self.moves))]
        kind = move_kind(move)
        if kind == "pan":
            speed = rng.uniform(*PAN_SPEED) * self.scale
        elif kind == "zoom":
            speed = rng.uniform(*ZOOM_SPEED)
        else:
            speed = 0.0
        path = camera_path(move, speed, t, s)
        photo = photo_at(name, s)
        # Start anywhere that keeps every frame's window inside the photo.
        base = WINDOW * s
        half = base * torch.exp(-path[:, 2]) / 2
        lo_x = float((half - path[:, 0] * base / s).max())
        hi_x = photo.shape[2] - float((half + path[:, 0] * base / s).max())
        lo_y = float((half - path[:, 1] * base / s).max())
        hi_y = photo.shape[1] - float((half + path[:, 1] * base / s).max())
        start = (rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y))
        video = render_camera(photo, start, path, s)
        gt = {"move": move, "speed": speed, "camera": path, "photo": name, "start": start}
        cond = {"camera": path}
        if self.warp:  # drawn last: items without it are unchanged
            drop = rng.random() < self.warp_dropout
            warp = warp_first_frame(video[:, 0], path)[0]
            cond["camera_warp"] = torch.zeros_like(warp) if drop else warp
        return {"video": video, "caption": CAPTION, "gt": gt, "cond": cond}
