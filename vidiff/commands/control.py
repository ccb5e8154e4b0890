"""The control options of ``vidiff generate``: ``--trajectory`` and ``--camera`` -> cond tensors.

Both are checked against the model's ``config.json`` before its weights load: a model without the
conditioning, a malformed string or a path outside the frame is one line naming the problem.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vidiff.errors import UserError
from vidiff.runtime import DEFAULT_MODEL

ASSETS = DEFAULT_MODEL.parent
# The shipped trajectory model, used by `generate --trajectory` without --model when it is there.
TRAJECTORY_MODEL = ASSETS / "shapes-trajectory"


def control_conditions(
    model: str | Path, trajectory: str | None, camera: str | None
) -> dict[str, torch.Tensor]:
    """``{"trajectory": (1, 1, T, S, S), "camera": (1, T, 3)}`` for the options given, from the
    model folder's config (its frame size, clip length and ``conditions``). The camera path is
    returned as a path; ``VideoPipeline.camera_conditions`` makes the model's camera cond of it."""
    if trajectory is None and camera is None:
        return {}
    from vidiff.config import load_pipeline_config
    from vidiff.data.camera import camera_path, parse_camera_move
    from vidiff.data.trajectory import parse_trajectory, spread_polyline, trajectory_heatmap
    from vidiff.files import CONFIG_NAME
    from vidiff.nn.control import CAMERA, CAMERA_WARP, TRAJECTORY

    try:
        config = load_pipeline_config(Path(model) / CONFIG_NAME)
    except (ValueError, TypeError, KeyError):
        option = "--trajectory" if trajectory is not None else "--camera"
        raise UserError(
            f"{option}: the model {model} is not a diffusion model with that conditioning"
        ) from None
    takes = tuple(config.model.net.get("conditions", ()))
    if CAMERA_WARP in takes:  # the camera per pixel is the camera too
        takes += (CAMERA,)
    size, frames = config.video.size, config.video.num_frames
    out = {}
    for option, key, value in (
        ("--trajectory", TRAJECTORY, trajectory),
        ("--camera", CAMERA, camera),
    ):
        if value is not None and key not in takes and Path(model) == DEFAULT_MODEL:
            shipped = (
                "--model textures-camera" if key == CAMERA else f"--model DIR trained with {key}"
            )
            raise UserError(
                f"{option}: the default model has no {key} conditioning; pass {shipped} "
                "(docs/control.md)"
            )
        if value is not None and key not in takes:
            raise UserError(
                f"{option}: the model {model} was trained without the {key} conditioning "
                f"(its model.net.conditions: {list(takes)}); see docs/control.md"
            )
    if trajectory is not None and config.model.vae_config is not None:
        raise UserError(
            f"--trajectory: the model {model} works on VAE latents; the trajectory heat map is "
            "drawn at pixel resolution, so only pixel-space models take it"
        )
    if trajectory is not None:
        try:
            points = parse_trajectory(trajectory, size)
        except ValueError as e:
            raise UserError(f"--trajectory: {e}") from None
        heat = trajectory_heatmap(spread_polyline(points, frames), size)  # (1, T, S, S)
        out[TRAJECTORY] = heat[None]
    if camera is not None:
        try:
            move, speed = parse_camera_move(camera)
        except ValueError as e:
            raise UserError(f"--camera: {e}") from None
        out[CAMERA] = camera_path(move, speed, frames, size)[None]  # (1, T, 3)
    return out
