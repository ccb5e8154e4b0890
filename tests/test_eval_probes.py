"""Validity gates for the exact probes: ground truth scores ~perfect, each corruption is caught by the
metric meant to catch it, and the elementary metrics return known values on hand-made inputs."""

import math

import numpy as np
import pytest
import torch

from vidiff.data.balls import BouncingBalls
from vidiff.data.shapes import COLOURS, MovingShapes
from vidiff.eval import probes
from vidiff.eval.extract import alpha_map, detect_objects, track_objects

N = 12


@pytest.fixture(scope="module")
def clips():
    ds = MovingShapes(N, split="train", seed=123)
    return [ds[i] for i in range(N)]


def _score(videos, clips):
    return probes.summarize([probes.score_shapes(v, c["caption"]) for v, c in zip(videos, clips)])


@pytest.fixture(scope="module")
def gt_summary(clips):
    return _score([c["video"] for c in clips], clips)


def test_ground_truth_scores_perfect(gt_summary):
    s = gt_summary
    assert s["adherence"] == 1.0
    assert s["colour_ok"] == s["shape_ok"] == s["direction_ok"] == 1.0
    assert s["flicker"] < 1e-6
    assert s["jitter_median"] < 0.1
    assert s["count_ok"] == 1.0
    assert s["flip_rate"] == 0.0
    assert s["colour_drift"] < 0.02 and s["area_cv"] < 0.08


def test_extraction_matches_ground_truth(clips):
    for c in clips[:4]:
        obj = c["gt"]["objects"][0]
        dets = detect_objects(c["video"])
        cen = np.stack([d[0].centroid for d in dets])
        assert np.abs(cen - obj["centroids"].numpy()).max() < 0.5
        iou = [
            (d[0].mask & m.numpy()).sum() / (d[0].mask | m.numpy()).sum()
            for d, m in zip(dets, obj["masks"])
        ]
        assert min(iou) > 0.95


def test_shuffled_frames_raise_jitter(clips, gt_summary):
    g = torch.Generator().manual_seed(0)
    vids = [c["video"][:, torch.randperm(c["video"].shape[1], generator=g)] for c in clips]
    s = _score(vids, clips)
    assert s["jitter_median"] > 10 * gt_summary["jitter_median"] and s["jitter_median"] > 1.0


def test_frozen_motion_fails_direction(clips):
    vids = [c["video"][:, :1].expand_as(c["video"]) for c in clips]
    s = _score(vids, clips)
    assert s["direction_ok"] == 0.0 and s["adherence"] == 0.0
    assert s["colour_ok"] == 1.0 and s["shape_ok"] == 1.0  # only the meant metric moves


def test_colour_swap_fails_colour(clips):
    names = list(COLOURS)
    vids = []
    for c in clips:
        other = names[(names.index(c["gt"]["objects"][0]["colour"]) + 3) % len(names)]
        a = torch.from_numpy(alpha_map(c["video"]))  # (T, H, W) coverage on black
        vids.append(a[None] * torch.tensor(COLOURS[other])[:, None, None, None])
    s = _score(vids, clips)
    assert s["colour_ok"] == 0.0 and s["adherence"] == 0.0
    assert s["shape_ok"] == 1.0 and s["direction_ok"] == 1.0


def test_noise_raises_flicker(clips, gt_summary):
    g = torch.Generator().manual_seed(0)
    vids = [
        (c["video"] + 0.05 * torch.randn(c["video"].shape, generator=g)).clamp(0, 1) for c in clips
    ]
    s = _score(vids, clips)
    assert s["flicker_median"] > 0.01 > 100 * gt_summary["flicker"]


def test_fit_line_and_direction():
    t = np.arange(10.0)
    c = np.stack([3 + 0.8 * t, 5 + 0 * t], 1)
    p0, v, rms = probes.fit_line(c)
    assert np.allclose(p0, [3, 5]) and np.allclose(v, [0.8, 0]) and rms < 1e-9
    assert probes.direction_of(v, 0.3) == "right"
    assert probes.direction_of(np.array([0.0, -0.5]), 0.3) == "up"
    assert probes.direction_of(np.array([0.1, 0.1]), 0.3) == "static"
    c[::2, 1] += (
        1.0  # alternate frames displaced by 1 px: RMS residual ~0.5 (a little goes into the slope)
    )
    assert 0.48 < probes.fit_line(c)[2] <= 0.5


def test_elementary_metrics():
    assert probes.nearest_colour((0.9, 0.1, 0.8)) == "magenta"
    assert probes.flip_rate(["a", "a", "b", "b", None, "a"]) == pytest.approx(1 / 3)
    assert probes.area_cv(np.array([10.0, 10.0, 10.0])) == 0.0
    assert probes.count_accuracy([1, 1, 2, 0], 1) == 0.5
    ade, fde = probes.ade_fde(np.zeros((5, 2)), np.full((5, 2), [3.0, 4.0]))
    assert ade == fde == 5.0
    # A bounce at frame 5 (x reverses), found within one frame.
    x = np.concatenate([np.arange(6.0), 5 - np.arange(1.0, 5.0)])
    c = np.stack([x, np.zeros_like(x)], 1)
    assert probes.bounce_times(c) == [(5, 0)]
    assert probes.bounce_timing_error(c, c) == 0.0
    shifted = np.stack([np.concatenate([np.arange(8.0), 7 - np.arange(1.0, 3.0)]), np.zeros(10)], 1)
    assert probes.bounce_timing_error(shifted, c) == 2.0


def test_background_flicker_value():
    v = torch.zeros(3, 4, 16, 16)
    v[:, 1::2] = 0.1  # the whole background alternates by 0.1 each frame
    assert probes.background_flicker(v) == pytest.approx(0.1, abs=1e-6)


def test_pure_noise_has_high_finite_flicker():
    noise = torch.rand(3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    s = probes.score_shapes(noise, "a red circle moving left")
    assert 0.2 < s["flicker"] < 0.5 and s["correct"] == 0.0


def test_caption_errors_are_clear():
    with pytest.raises(ValueError, match="purple"):
        probes.score_shapes(torch.zeros(3, 4, 32, 32), "a purple circle moving left")


def test_missing_object_is_wrong():
    clip = MovingShapes(1, seed=1)[0]
    s = probes.score_shapes(torch.zeros_like(clip["video"]), clip["caption"])
    assert s["correct"] == 0.0 and s["count_ok"] == 0.0


def test_two_objects_matched_by_hungarian():
    ds = MovingShapes(12, seed=7, num_objects=2)
    scored = 0
    for i in range(len(ds)):
        it = ds[i]
        first, second = (o["masks"].numpy() for o in it["gt"]["objects"])
        if ((first & ~second).sum(axis=(1, 2)) < 12).mean() > 0.25:
            continue  # the first object is mostly hidden behind the second: nobody could tell
        s = probes.score_shapes(it["video"], it["caption"])
        assert s["correct"] == 1.0, s
        scored += 1
    assert scored >= 6


def test_balls_physics_against_rollout():
    ds = BouncingBalls(4, num_frames=24, seed=3, min_balls=1, max_balls=1)
    for i in range(4):
        it = ds[i]
        ref = it["gt"]["objects"][0]["centroids"].numpy()[None]
        roll = probes.rollout_from_frames(it["video"], 4)
        # The rollout from 4 observed frames reproduces the simulator's ground truth.
        assert np.abs(roll - ref).max() < 0.5
        s = probes.score_balls(it["video"], it["caption"], reference=roll, num_cond_frames=4)
        assert s["ade"] < 0.3 and s["count_ok"] == 1.0
        assert math.isnan(s["bounce_err"]) or s["bounce_err"] <= 1.0
        # Frozen after the conditioning frames: the prediction drifts away from the rollout.
        frozen = it["video"].clone()
        frozen[:, 4:] = frozen[:, 3:4]
        bad = probes.score_balls(frozen, it["caption"], reference=roll, num_cond_frames=4)
        assert bad["ade"] > s["ade"] + 2 and bad["fde"] > 5


def test_balls_two_against_ground_truth():
    it = BouncingBalls(1, num_frames=16, seed=5, min_balls=2, max_balls=2)[0]
    ref = np.stack([o["centroids"].numpy() for o in it["gt"]["objects"]])
    s = probes.score_balls(it["video"], it["caption"], reference=ref)
    assert s["ade"] < 0.5 and s["correct"] == 1.0
    swapped = probes.score_balls(it["video"].flip(2), it["caption"], reference=ref)  # upside down
    assert swapped["ade"] > 2


def test_tracks_keep_identity_by_colour():
    ds = MovingShapes(2, seed=11, num_objects=2)
    it = ds[0]
    tracks = track_objects(detect_objects(it["video"]), 2)
    for tr in tracks:
        cols = tr.colours[tr.present]
        assert np.abs(cols - cols[0]).max() < 0.05


def test_digits_ground_truth_and_wrong_prompt():
    from vidiff.data.digits import MovingDigits

    ds = MovingDigits(10, split="heldout", seed=9)  # digit images the judge never saw
    gt = probes.summarize(
        [probes.score_digits(ds[i]["video"], ds[i]["caption"]) for i in range(10)]
    )
    assert gt["adherence"] >= 0.9 and gt["flicker"] < 1e-6 and gt["count_ok"] == 1.0
    wrong = [
        probes.score_digits(
            ds[i]["video"], f"the digit {(ds[i]['gt']['objects'][0]['label'] + 1) % 10} bouncing"
        )
        for i in range(10)
    ]
    assert probes.summarize(wrong)["adherence"] <= 0.1
