"""Motion and camera control: the ``trajectory`` and ``camera`` conditionings.

Both are added conditionings (docs/architecture.md, "Adding a conditioning"): a model takes one
when its config lists it, ``model.net.conditions: [trajectory]``, and neither model file names it.

* ``trajectory`` -- kind ``channels``, ``(B, 1, T, H, W)``: a per-frame Gaussian heat map peaking
  on the object's centre (:func:`vidiff.data.trajectory.trajectory_heatmap`), one more input
  channel with zero input weights (ControlNet-style spatial control through the input, as
  MotionCtrl / DragNUWA feed trajectories). Null under guidance: zeros (no path).
* ``camera`` -- kind ``vector``, per frame, ``(B, T, 3)``: the camera's position in frame ``t``
  relative to frame 0, ``(x, y, log zoom)`` (x, y in pixels of the clip, x right, y down; zoom > 1
  is zoomed in), embedded per frame (CameraCtrl / MotionCtrl embed per-frame camera poses) by an
  MLP whose last layer starts at zero. Null under guidance: zeros (a static camera).
* ``camera_warp`` -- kind ``channels``, ``(B, 4, T, H, W)``: the camera per pixel -- frame 0
  carried along the path, and a channel marking the pixels it covers
  (:func:`vidiff.data.camera.warp_first_frame`); four more input channels with zero input weights.
  The network draws what the camera uncovers around what it keeps (render-then-refine, as
  ViewCrafter and CamTrol condition on a rendered view); pixel-space sampling keeps the covered
  pixels (``known_pixels``, RePaint). Null under guidance: zeros (nothing known).
"""

from __future__ import annotations

import torch
from torch import nn

from vidiff.nn.conditioning import CondSpec, register_conditioning

TRAJECTORY, CAMERA, CAMERA_WARP = "trajectory", "camera", "camera_warp"
CAMERA_WARP_CHANNELS = 4  # RGB of frame 0 where frame t sees it, and that mask
CAMERA_DIM = 3  # (x, y, log zoom)
# Feature scale: pixels of a 32-px clip and log zoom to numbers of order 1 for the MLP.
CAMERA_FEATURE_SCALE = (1 / 8, 1 / 8, 8.0)
# and a frame's step from the one before (px/frame, log zoom per frame: 0.5-1.5 px, 1-3 %) to ~1.
VELOCITY_SCALE = (1.0, 1.0, 50.0)


def value_channels(channels: int):
    """``to_channels`` of a conditioning that is its own input channels: the value, or zeros of
    ``channels`` channels when it is absent (the trajectory heat map: no path; the camera per
    pixel: nothing known)."""

    def to_channels(x: torch.Tensor, value: torch.Tensor | None, _mask) -> torch.Tensor:
        if value is None:
            return x.new_zeros(x.shape[0], channels, *x.shape[2:])
        return value.to(x.dtype)

    return to_channels


class CameraEmbedding(nn.Module):
    """``(B, T, 3)`` camera positions -> ``(B, T, width)`` per-frame embeddings; the last layer
    starts at zero, so a model grown by it is unchanged (STYLE 10).

    The MLP sees each frame's position and its velocity (the step from the frame before; frame 0
    takes frame 1's): what a frame's content is, relative to its neighbour, is a local shift by the
    velocity, which the temporal layers can make, while the position alone would ask for a shift
    from frame 0 that grows with time."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer(
            "scale", torch.tensor(CAMERA_FEATURE_SCALE, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "velocity_scale", torch.tensor(VELOCITY_SCALE, dtype=torch.float32), persistent=False
        )
        self.mlp = nn.Sequential(
            nn.Linear(2 * CAMERA_DIM, width), nn.SiLU(), nn.Linear(width, width)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        camera = camera.to(self.scale.dtype)
        step = camera.diff(dim=1) if camera.shape[1] > 1 else torch.zeros_like(camera)
        velocity = torch.cat([step[:, :1], step], dim=1)[:, : camera.shape[1]]
        features = [camera * self.scale, velocity * self.velocity_scale]
        return self.mlp(torch.cat(features, dim=-1))


def _trajectory(config) -> tuple[CondSpec, ...]:
    return (
        CondSpec(
            TRAJECTORY,
            "channels",
            ("B", 1, "T", "H", "W"),
            "conditions",
            null="zeros",
            channels=1,
            to_channels=value_channels(1),
            doc="a per-frame heat map of the object's centre",
        ),
    )


def _camera(config) -> tuple[CondSpec, ...]:
    return (
        CondSpec(
            CAMERA,
            "vector",
            ("B", "T", CAMERA_DIM),
            "conditions",
            null="zeros",
            embed=CameraEmbedding,
            module="camera_embed",
            per_frame=True,
            doc="per-frame camera position (x, y, log zoom) relative to frame 0",
        ),
    )


def warp_known_pixels(warp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the camera per pixel makes known: frame 0's pixels where the camera still sees them;
    the pixels it uncovers are drawn."""
    return warp[:, :3], warp[:, 3:4] < 0.5


def _camera_warp(config) -> tuple[CondSpec, ...]:
    return (
        CondSpec(
            CAMERA_WARP,
            "channels",
            ("B", CAMERA_WARP_CHANNELS, "T", "H", "W"),
            "conditions",
            null="zeros",
            channels=CAMERA_WARP_CHANNELS,
            to_channels=value_channels(CAMERA_WARP_CHANNELS),
            known_pixels=warp_known_pixels,
            doc="frame 0 carried along the camera path, and the pixels it covers",
        ),
    )


register_conditioning(TRAJECTORY, _trajectory)
register_conditioning(CAMERA, _camera)
register_conditioning(CAMERA_WARP, _camera_warp)
