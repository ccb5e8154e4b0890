"""Long video (issue 19): bouncing ground truth, the extension and keyframe drivers, cross-frame
attention, the --num-frames checks and the long-video probes, on tiny CPU models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidiff.data.balls import BouncingBalls
from vidiff.data.shapes import MovingShapes, bounce_path, render_shape

# -------------------------------------------------------------------------------------------------
# data: walls


def test_walls_default_off_keeps_items():
    """Existing data is unchanged: walls default off, and a walled set draws differently."""
    plain = MovingShapes(4, seed=5)[2]
    assert torch.equal(plain["video"], MovingShapes(4, seed=5, walls=False)[2]["video"])
    assert plain["gt"]["objects"][0]["bounce_frames"] == []
    with pytest.raises(ValueError, match="walls=True"):
        MovingShapes(4, num_frames=64)


def test_bounce_path_reflects_at_walls():
    pos, sign = bounce_path(20.0, 3.0, np.arange(12), r=4.0, size=32.0)
    # 20 -> 23 -> 26, then 29 lies past the wall at 32 - 4 = 28: reflected to 27.
    assert pos[:3].tolist() == [20.0, 23.0, 26.0]
    assert pos[3] == pytest.approx(27.0)  # 29 reflected about the wall at 28
    assert sign[2] == 1 and sign[3] == -1
    assert (pos >= 4).all() and (pos <= 28).all()
    # the step between frames is the speed except across a bounce
    steps = np.abs(np.diff(pos))
    assert np.allclose(steps[sign[:-1] == sign[1:]], 3.0)


@pytest.mark.parametrize("index", range(6))
def test_walls_ground_truth_through_bounces(index):
    ds = MovingShapes(6, num_frames=96, walls=True, seed=2)
    item = ds[index]
    o = item["gt"]["objects"][0]
    r, s = o["radius"], ds.size
    boxes = o["boxes"]
    assert item["video"].shape == (3, 96, 32, 32)
    assert (boxes[:, :2] >= -1e-4).all() and (boxes[:, 2:] <= s + 1e-4).all()  # never leaves
    assert len(o["bounce_frames"]) >= 1  # 96 frames at >= 0.6 px/frame cross 32 px
    # per-frame ground truth is exactly what is drawn: re-render a few frames, bounces included
    for t in [0, *o["bounce_frames"][:2], 95]:
        cx, cy = (boxes[t, 0] + boxes[t, 2]) / 2, (boxes[t, 1] + boxes[t, 3]) / 2
        image, mask = render_shape(o["shape"], o["rgb"], float(cx), float(cy), r, s)
        assert torch.allclose(image, item["video"][:, t], atol=1e-5)
        assert torch.equal(mask, o["masks"][t])
    # velocities: displacement equals velocity between frames without a bounce, and flips sign
    cents = o["centroids"]
    vel = o["velocities"]
    for t in range(95):
        if t + 1 not in o["bounce_frames"]:
            assert torch.allclose(cents[t + 1] - cents[t], vel[t], atol=1e-4)
    for b in o["bounce_frames"]:
        assert torch.allclose(vel[b], -vel[b - 1]) or (vel[b] * vel[b - 1] < 0).any()
    assert item["caption"].endswith(o["direction"])


def test_balls_long_clip():
    item = BouncingBalls(2, num_frames=256, seed=1)[0]
    assert item["video"].shape == (3, 256, 32, 32)
    for o in item["gt"]["objects"]:
        assert (o["boxes"][:, :2] >= -1e-4).all() and (o["boxes"][:, 2:] <= 32 + 1e-4).all()
        assert o["masks"].flatten(1).any(1).all()  # present in every frame
