"""Synthetic datasets: determinism, shapes, ground truth that agrees with the pixels, the hold-out."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch

from vidiff.data import build_dataset, collate
from vidiff.data.balls import BouncingBalls, simulate_balls
from vidiff.data.digits import MovingDigits
from vidiff.data.render import coverage_centroid
from vidiff.data.shapes import (
    COLOURS,
    DIRECTIONS,
    HELDOUT_PAIRS,
    SHAPES,
    MovingShapes,
    parse_caption,
    render_shape,
    vocabulary,
)


def pixel_centroid(video: torch.Tensor, rgb) -> np.ndarray:
    """Colour-coverage-weighted centroid (T, 2) of a single object on black: coverage = pixel / rgb."""
    cov = (video.sum(0) / sum(rgb)).numpy()  # (T, H, W)
    return coverage_centroid(cov)


# ---------------------------------------------------------------------------------------------------
# MovingShapes


def test_shapes_items_shapes_dtypes_and_determinism():
    ds = MovingShapes(20, seed=1)
    item = ds[7]
    assert item["video"].shape == (3, 16, 32, 32) and item["video"].dtype == torch.float32
    assert item["video"].min() >= 0 and item["video"].max() <= 1
    obj = item["gt"]["objects"][0]
    assert obj["centroids"].shape == (16, 2) and obj["boxes"].shape == (16, 4)
    assert obj["masks"].shape == (16, 32, 32) and obj["masks"].dtype == torch.bool
    again = MovingShapes(20, seed=1)
    _ = again[3]  # access order must not matter
    assert torch.equal(again[7]["video"], item["video"]) and again[7]["caption"] == item["caption"]
    other = MovingShapes(20, seed=2)[7]
    assert not torch.equal(other["video"], item["video"])
    small = MovingShapes(4, num_frames=5, size=48)[0]
    assert small["video"].shape == (3, 5, 48, 48)
    with pytest.raises(IndexError):
        ds[20]


def test_shapes_ground_truth_agrees_with_pixels():
    ds = MovingShapes(80, seed=0)
    worst = 0.0
    for i in range(len(ds)):
        item = ds[i]
        (obj,) = item["gt"]["objects"]
        video, rgb, r = item["video"], obj["rgb"], obj["radius"]
        worst = max(
            worst, float(np.abs(pixel_centroid(video, rgb) - obj["centroids"].numpy()).max())
        )
        # masks are exactly "coverage > 0.5", recovered from the pixels
        cov = video.sum(0) / sum(rgb)
        assert torch.equal(obj["masks"], cov > 0.5 + 1e-6) or torch.equal(
            obj["masks"], cov > 0.5 - 1e-6
        )
        # the colour is the named palette colour, and nothing else is drawn
        assert torch.allclose(video.amax((1, 2, 3)), torch.tensor(rgb), atol=1e-6)
        # the whole object stays inside the frame in every frame
        boxes = obj["boxes"]
        assert boxes.min() >= -1e-4 and boxes.max() <= 32 + 1e-4
        assert torch.allclose(boxes[:, 2] - boxes[:, 0], torch.tensor(2 * r), atol=1e-4)
        # constant velocity, in the captioned direction, speed and radius in range
        steps = obj["centroids"].diff(dim=0)
        assert torch.allclose(
            steps, torch.tensor(obj["velocity"]).float().expand_as(steps), atol=1e-4
        )
        ux, uy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[obj["direction"]]
        assert obj["velocity"][0] * ux + obj["velocity"][1] * uy == pytest.approx(obj["speed"])
        assert 0.6 <= obj["speed"] <= 1.0 and 4 <= r <= 6
        assert parse_caption(item["caption"]) == [
            {"colour": obj["colour"], "shape": obj["shape"], "direction": obj["direction"]}
        ]
    assert worst < 0.5  # measured ~0.13 (4x4 supersampling)


def test_render_shape_areas_and_triangle_centroid():
    s, r = 64, 10.0
    for shape, area in [
        ("circle", math.pi * r * r),
        ("square", 4 * r * r),
        ("triangle", 2 * r * r),
    ]:
        image, mask = render_shape(shape, (0.0, 1.0, 1.0), 31.3, 30.7, r, s)
        assert image.shape == (3, s, s) and mask.shape == (s, s) and mask.dtype == torch.bool
        assert image[0].max() == 0 and torch.equal(image[1], image[2])
        assert float(image[1].sum()) == pytest.approx(
            area, rel=0.02
        )  # coverage integrates the area
        assert abs(int(mask.sum()) - area) < 0.1 * area
        cx, cy = coverage_centroid(image[1][None].numpy())[0]
        expected_cy = 30.7 + (r / 3 if shape == "triangle" else 0)  # area centroid
        # 4x4 supersampling places edges to 1/4 px, so the centroid may be off by up to 1/8 px
        assert cx == pytest.approx(31.3, abs=0.13) and cy == pytest.approx(expected_cy, abs=0.13)
    # anti-aliased: a circle at a sub-pixel position has partial-coverage pixels
    image, _ = render_shape("circle", (1, 1, 1), 10.3, 10.6, 4.2, 20)
    assert ((image[0] > 0.05) & (image[0] < 0.95)).sum() > 10
    with pytest.raises(ValueError, match="hexagon"):
        render_shape("hexagon", (1, 1, 1), 5, 5, 2, 16)


def test_dataset_frames_equal_render_shape():
    item = MovingShapes(3, seed=5)[2]
    (obj,) = item["gt"]["objects"]
    r = obj["radius"]
    for t in (0, 9):
        cx, cy = obj["boxes"][t, :2].double() + r  # box centre
        image, mask = render_shape(obj["shape"], obj["rgb"], float(cx), float(cy), r, 32)
        assert torch.allclose(image, item["video"][:, t], atol=1e-4)
        assert torch.equal(mask, obj["masks"][t])


def test_heldout_pairs_never_in_train_and_only_in_heldout():
    train = MovingShapes(1500, split="train", seed=0)
    seen = set()
    for i in range(len(train)):
        # sampling happens before rendering; reading the caption is enough and fast
        for o in parse_caption(train[i]["caption"]):
            seen.add((o["colour"], o["shape"]))
    assert not seen & set(HELDOUT_PAIRS)
    assert len(seen) == len(COLOURS) * len(SHAPES) - len(HELDOUT_PAIRS)  # every train pair occurs
    held = MovingShapes(400, split="heldout", seed=0)
    pairs, directions = set(), set()
    for i in range(len(held)):
        for o in parse_caption(held[i]["caption"]):
            pairs.add((o["colour"], o["shape"]))
            directions.add(o["direction"])
    assert pairs == set(HELDOUT_PAIRS) and directions == set(DIRECTIONS)
    two = MovingShapes(300, split="train", num_objects=2, seed=0)
    for i in range(len(two)):
        objs = parse_caption(two[i]["caption"])
        assert len(objs) == 2 and objs[0]["colour"] != objs[1]["colour"]
        assert not {(o["colour"], o["shape"]) for o in objs} & set(HELDOUT_PAIRS)


def test_two_objects_and_scaling():
    item = MovingShapes(5, num_objects=2, seed=4)[0]
    objs = item["gt"]["objects"]
    assert len(objs) == 2 and " and " in item["caption"]
    assert [(o["colour"], o["shape"], o["direction"]) for o in objs] == [
        (p["colour"], p["shape"], p["direction"]) for p in parse_caption(item["caption"])
    ]
    big = MovingShapes(40, size=64, seed=0)
    for i in range(40):
        o = big[i]["gt"]["objects"][0]
        assert 8 <= o["radius"] <= 12 and 1.2 <= o["speed"] <= 2.0
    with pytest.raises(ValueError, match="num_frames"):
        MovingShapes(4, num_frames=60)
    with pytest.raises(ValueError, match="split"):
        MovingShapes(4, split="test")


def test_parse_caption_and_vocabulary():
    assert parse_caption("a red circle moving right and a blue square moving up") == [
        {"colour": "red", "shape": "circle", "direction": "right"},
        {"colour": "blue", "shape": "square", "direction": "up"},
    ]
    for bad in ["a purple circle moving right", "red circle moving right", "a red circle", ""]:
        with pytest.raises(ValueError, match="cannot parse"):
            parse_caption(bad)
    vocab = set(vocabulary())
    for i in range(50):
        assert set(MovingShapes(50, num_objects=2)[i]["caption"].split()) <= vocab


# ---------------------------------------------------------------------------------------------------
# BouncingBalls


def test_simulate_balls_reflects_exactly_and_records_bounces():
    cents, vels, bounces = simulate_balls([[5.0, 16.0]], [[-1.5, 0.0]], [2.0], 32, 6)
    # x: 5 -> 3.5 -> 2 (touches the wall at 2) -> 0.5 reflects to 3.5 -> 5 -> 6.5
    assert np.allclose(cents[:, 0, 0], [5.0, 3.5, 2.0, 3.5, 5.0, 6.5])
    assert np.allclose(vels[:, 0, 0], [-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])
    assert bounces == [[3]]
    rng = np.random.default_rng(0)
    pos = rng.uniform(8, 24, size=(3, 2))
    vel = rng.uniform(-1.5, 1.5, size=(3, 2))
    radii = np.array([3.0, 4.0, 3.5])
    for collisions in (False, True):
        cents, vels, bounces = simulate_balls(pos, vel, radii, 32, 300, collisions)
        assert cents.shape == (300, 3, 2) and vels.shape == (300, 3, 2)
        assert (cents >= radii[None, :, None] - 1e-9).all() and (
            cents <= 32 - radii[None, :, None] + 1e-9
        ).all()
        energy = (radii[None] ** 2 * (vels**2).sum(-1)).sum(-1)  # elastic: kinetic energy conserved
        assert np.allclose(energy, energy[0])
        for k in range(3):  # velocity changes exactly at the recorded bounce frames
            changed = np.flatnonzero(np.abs(np.diff(vels[:, k], axis=0)).sum(-1) > 1e-9) + 1
            assert changed.tolist() == bounces[k]
        assert sum(map(len, bounces)) > 10
    # the same call is deterministic and distinct from the collision-free rollout
    a = simulate_balls(pos, vel, radii, 32, 300, True)[0]
    assert np.array_equal(a, simulate_balls(pos, vel, radii, 32, 300, True)[0])
    with pytest.raises(ValueError, match="fit"):
        simulate_balls([[5.0, 5.0]], [[1.0, 0.0]], [20.0], 32, 4)


def test_balls_ground_truth_agrees_with_pixels_and_simulator():
    ds = BouncingBalls(40, num_frames=24, seed=0)
    counts = set()
    for i in range(len(ds)):
        item = ds[i]
        objs = item["gt"]["objects"]
        counts.add(len(objs))
        assert item["video"].shape == (3, 24, 32, 32)
        assert len({o["colour"] for o in objs}) == len(objs)
        word = {1: "one ball", 2: "two balls", 3: "three balls"}[len(objs)]
        assert item["caption"] == f"{word} bouncing"
        radii = np.array([o["radius"] for o in objs])
        start = np.stack([o["centroids"][0].double().numpy() for o in objs])
        v0 = np.stack([o["velocity"] for o in objs])
        cents, _, bounces = simulate_balls(start, v0, radii, 32, 24)
        for k, o in enumerate(objs):
            assert np.allclose(cents[:, k], o["centroids"].numpy(), atol=1e-4)
            assert bounces[k] == o["bounce_frames"]
        if len(objs) == 1:
            (o,) = objs
            err = np.abs(pixel_centroid(item["video"], o["rgb"]) - o["centroids"].numpy()).max()
            assert err < 0.5
    assert counts == {1, 2, 3}
    long = BouncingBalls(2, num_frames=200, collisions=True, min_balls=3, seed=1)[1]
    assert long["video"].shape == (3, 200, 32, 32) and long["gt"]["collisions"] is True
    assert torch.equal(
        long["video"],
        BouncingBalls(2, num_frames=200, collisions=True, min_balls=3, seed=1)[1]["video"],
    )


# ---------------------------------------------------------------------------------------------------
# MovingDigits


def test_digits_load_offline_and_ground_truth(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = MovingDigits(30, seed=0, num_digits=1)
    for i in range(len(ds)):
        item = ds[i]
        (o,) = item["gt"]["objects"]
        video = item["video"]
        assert video.shape == (3, 16, 32, 32)
        assert torch.equal(video[0], video[1]) and torch.equal(
            video[1], video[2]
        )  # grayscale as RGB
        assert item["caption"] == f"the digit {o['label']} bouncing"
        err = np.abs(coverage_centroid(video[0].numpy()) - o["centroids"].numpy()).max()
        assert err < 1e-3  # integer sprite positions: exact
        assert torch.equal(o["masks"], video[0] > 0.5)
        m = o["masks"][0]
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert o["boxes"][0].tolist() == [
            xs.min().item(),
            ys.min().item(),
            xs.max().item() + 1,
            ys.max().item() + 1,
        ]
        assert o["sample"] % 5 != 0  # train split never uses held-out images
    held = MovingDigits(20, split="heldout", num_digits=2, size=64)
    for i in range(len(held)):
        item = held[i]
        objs = item["gt"]["objects"]
        assert item["video"].shape == (3, 16, 64, 64) and len(objs) == 2
        assert all(o["sample"] % 5 == 0 for o in objs)
        assert item["caption"] == f"the digits {objs[0]['label']} and {objs[1]['label']} bouncing"


# ---------------------------------------------------------------------------------------------------
# registry and batching


def test_build_dataset_and_collate():
    with pytest.raises(ValueError, match="balls.*digits.*folder.*images.*shapes"):
        build_dataset("mnist")
    with pytest.raises(ValueError, match="length"):
        build_dataset("shapes", length=4)
    ds = build_dataset("shapes", num_items=4, num_frames=8)
    batch = collate([ds[i] for i in range(3)])
    assert batch["video"].shape == (3, 3, 8, 32, 32)
    assert len(batch["caption"]) == 3 and len(batch["gt"]) == 3
    assert isinstance(build_dataset("digits", num_items=2), MovingDigits)
    assert isinstance(build_dataset("balls", num_items=2), BouncingBalls)
    with pytest.raises(ValueError, match="different shapes"):
        collate([ds[0], MovingShapes(1, num_frames=4)[0]])


def test_every_caption_word_is_in_its_vocabulary():
    """The trainer builds the text vocabulary from these lists: a missing word would fail at sampling."""
    from vidiff.data import balls, digits, shapes
    from vidiff.models.text import WordTokenizer

    for module, kwargs in [(shapes, {"num_objects": 2}), (balls, {}), (digits, {"num_digits": 2})]:
        tok = WordTokenizer(module.vocabulary())
        name = {"shapes": "shapes", "balls": "balls", "digits": "digits"}[
            module.__name__.rsplit(".", 1)[1]
        ]
        data = build_dataset(name, num_items=40, **kwargs)
        for i in range(len(data)):
            tok.encode_one(data[i]["caption"])  # raises ValueError naming an unknown word


def test_shapes_new_colours_are_drawn_for_their_share_and_named_by_their_word():
    from vidiff.data.shapes import MovingShapes

    plain = MovingShapes(16, num_frames=4, size=16)
    again = MovingShapes(16, num_frames=4, size=16, new_colours=None)
    assert all(torch.equal(plain[i]["video"], again[i]["video"]) for i in range(4))
    purple = {"purple": [0.5, 0.0, 1.0]}
    every = MovingShapes(16, num_frames=4, size=16, new_colours=purple)
    none = MovingShapes(16, num_frames=4, size=16, new_colours=purple, new_colour_share=0.0)
    for i in range(16):
        item = every[i]
        (obj,) = item["gt"]["objects"]
        assert item["caption"].startswith("a purple ") and obj["rgb"] == (0.5, 0.0, 1.0)
        inside = item["video"][:, 0][:, obj["masks"][0]]  # (3, pixels) of the object's frame 0
        assert torch.allclose(inside.amax(1), torch.tensor([0.5, 0.0, 1.0]), atol=0.05), i
        assert "purple" not in none[i]["caption"]
    for bad, match in [({"red": [1, 0, 0]}, "not in"), ({"pink": [1, 2, 0]}, r"\[r, g, b\]")]:
        with pytest.raises(ValueError, match=match):
            MovingShapes(4, num_frames=4, size=16, new_colours=bad)
