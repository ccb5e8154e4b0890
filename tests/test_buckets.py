"""Native sizes and lengths in training (issue 20, item 7): ``data.buckets`` draws one clip shape per
step (seeded: the same on every process and after a resume), MovingShapes draws non-square frames,
and a DiT trained on buckets samples a shape it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_dit import _micro_pipeline
from vidiff.config import load_config
from vidiff.data.shapes import MovingShapes
from vidiff.eval import probes
from vidiff.pipeline import VideoPipeline
from vidiff.train.buckets import (
    Bucket,
    BucketedClips,
    bucket_batches,
    parse_buckets,
)
from vidiff.train.checkpoint import load_state
from vidiff.train.data import DataPlan, Layout, build_train_datasets, draw_bucket, train_batches
from vidiff.train.loop import train

MICRO_DIT = [
    "model.arch=dit",
    "model.preset=dit-tiny",
    "model.net={hidden_size: 16, depth: 1, head_dim: 8, mlp_ratio: 2.0, patch_size: [1, 2, 2]}",
    "model.text={dim: 16, depth: 1, num_heads: 2}",
    "data.num_frames=4",
    "data.size=8",
    "data.num_items=64",
    "data.buckets=[4x8x8, 2x8x12]",
    "diffusion.parameterization=flow",
    "diffusion.sampler=euler",
    "diffusion.steps=2",
    "train.batch_size=2",
    "train.lr=0.001",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.sample_every=0",
]


def test_parse_buckets_and_batches():
    buckets = parse_buckets(["16x32x48", {"num_frames": 8, "height": 48, "width": 32}, " 8x32x32"])
    assert buckets == [Bucket(16, 32, 48), Bucket(8, 48, 32), Bucket(8, 32, 32)]
    assert [str(b) for b in buckets] == ["16x32x48", "8x48x32", "8x32x32"]
    assert buckets[2].size == 32 and buckets[0].size == (32, 48)
    assert bucket_batches(buckets, 8, 1, "fixed") == [8, 8, 8]
    # tokens: 8 clips of the largest shape; the others as many as carry its pixels x frames
    assert bucket_batches(buckets, 8, 1, "tokens") == [8, 16, 24]
    assert bucket_batches(buckets, 8, 4, "tokens") == [8, 16, 24]
    assert bucket_batches([Bucket(16, 32, 48), Bucket(12, 32, 32)], 8, 4, "tokens") == [8, 16]
    for bad, match in [
        (["16x32"], "entry '16x32'"),
        (["0x8x8"], "entry '0x8x8'"),
        ([{"num_frames": 4, "size": 8}], "entry"),
        (["4x8x8", "4x8x8"], "4x8x8 twice"),
        ("4x8x8", "must be a list"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_buckets(bad)
    with pytest.raises(ValueError, match="bucket_batch"):
        bucket_batches(buckets, 8, 1, "pixels")


def test_bucket_draw_is_seeded_and_positions_follow_batches():
    draws = [draw_bucket(3, s, 3) for s in range(300)]
    assert draws == [draw_bucket(3, s, 3) for s in range(300)]  # a pure function of (seed, step)
    assert all(80 < draws.count(b) < 120 for b in range(3))
    assert draws != [draw_bucket(4, s, 3) for s in range(300)]
    assert all(draw_bucket(3, s, 1) == 0 for s in range(10))
    plan = DataPlan(3, Layout(4), 100, None, 0.0, [4, 8, 12])
    pos: dict[str, int] = {}
    total = 0
    for s in range(20):
        keys = plan.keys(s, pos)[0]
        assert len(keys) == [4, 8, 12][draws[s]] and {k[4] for k in keys} == {draws[s]}
        total += len(keys)
        pos = plan.advance(s, pos)
    assert pos == {"video": total}
    # processes split every bucket's batch as one process with all of it
    two = [DataPlan(3, Layout(4, 2, p), 100, None, 0.0, [4, 8, 12]) for p in range(2)]
    assert two[0].keys(5, pos)[0] + two[1].keys(5, pos)[0] == plan.keys(5, pos)[0]
    # no buckets: the plan and keys are what they were, bucket 0
    assert DataPlan(3, Layout(4), 100, None, 0.0).keys(0, {})[0][0][4] == 0


def test_bucketed_batches_resume_in_the_same_sequence():
    cfg = load_config(None, MICRO_DIT)
    videos, _ = build_train_datasets(cfg.data, 0)
    assert isinstance(videos, BucketedClips)
    plan = DataPlan(0, Layout(2), len(videos), None, 0.0, [2, 2])

    def shapes(start, positions, n):
        it = train_batches(plan, videos, start_step=start, positions=positions)
        return [next(it)[0] for _ in range(n)]

    full = shapes(0, {}, 8)
    seen = [tuple(b["video"].shape[2:]) for b in full]
    assert set(seen) == {(4, 8, 8), (2, 8, 12)}
    assert seen == [[(4, 8, 8), (2, 8, 12)][plan.bucket(s)] for s in range(8)]
    pos: dict[str, int] = {}
    for s in range(5):
        pos = plan.advance(s, pos)
    for a, b in zip(full[5:], shapes(5, pos, 3)):
        assert torch.equal(a["video"], b["video"]) and a["seed"] == b["seed"]


def test_bucketed_training_resumes_exactly(tmp_path):
    """4 steps straight equal 2 steps, a resume, and 2 more: the same buckets, data and weights."""
    args = [*MICRO_DIT, "train.ckpt_every=2"]

    def run(out, steps, resume=False):
        cfg = load_config(None, [*args, f"train.out_dir={out}", f"train.steps={steps}"])
        torch.manual_seed(0)
        return train(cfg, resume=resume, progress=False)

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4, resume=True)
    assert straight.step == resumed.step == 4
    plan = DataPlan(0, Layout(2), 64, None, 0.0, [2, 2])
    assert {plan.bucket(s) for s in range(4)} == {0, 1}  # both shapes were trained on
    a, b = load_state(tmp_path / "a"), load_state(tmp_path / "b")
    assert a["data_position"] == b["data_position"] == {"video": 8}
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    # a DiT trained on two shapes samples a third it never saw
    video = straight.model.generate(["a red circle moving right"], [0], num_frames=3, size=(12, 8))
    assert video.shape == (1, 3, 3, 12, 8) and torch.isfinite(video).all()
    assert straight.model.generate(["a red circle"], [0]).shape == (1, 3, 4, 8, 8)


def test_buckets_are_checked_in_one_line(tmp_path):
    def start(*extra):
        cfg = load_config(None, [*MICRO_DIT, f"train.out_dir={tmp_path / 'r'}", *extra])
        return train(cfg, progress=False)

    with pytest.raises(ValueError, match=r"data.buckets entry 4x8x9: size 8x9: .*width of 2"):
        start("data.buckets=[4x8x8, 4x8x9]")
    with pytest.raises(ValueError, match="only a DiT"):
        start("model.arch=unet3d", "model.preset=unet-tiny", "model.net={}")
    with pytest.raises(ValueError, match=r"entry 40x8x12: MovingShapes: 40 frames do not fit"):
        start("data.buckets=[4x8x8, 40x8x12]")
    with pytest.raises(ValueError, match="data.image_root"):
        start(f"data.image_root={tmp_path}", "data.image_ratio=0.5")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_moving_shapes_non_square_frames():
    square = MovingShapes(num_items=8, size=32, num_frames=16)
    same = MovingShapes(num_items=8, size=(32, 32), num_frames=16)
    for i in range(8):
        assert torch.equal(square[i]["video"], same[i]["video"])
        assert square[i]["gt"]["size"] == same[i]["gt"]["size"] == 32
    for h, w in [(32, 48), (48, 32)]:
        ds = MovingShapes(num_items=12, size=(h, w), num_frames=16)
        assert ds.scale == 1.0 and ds.size == (h, w)
        for i in range(12):
            item = ds[i]
            assert item["video"].shape == (3, 16, h, w) and item["gt"]["size"] == (h, w)
            for o in item["gt"]["objects"]:
                boxes = o["boxes"].numpy()  # inside the frame in every frame
                assert boxes[:, :2].min() >= -1e-4 and (boxes[:, 2] <= w + 1e-4).all()
                assert (boxes[:, 3] <= h + 1e-4).all()
            # the probes read non-square clips: real clips are judged correct
            assert probes.score_shapes(item["video"], item["caption"])["correct"] == 1
    walls = MovingShapes(num_items=4, size=(32, 64), num_frames=40, walls=True)
    xs = np.concatenate([walls[i]["gt"]["objects"][0]["centroids"][:, 0].numpy() for i in range(4)])
    assert xs.max() > 32  # the wide stage is used
    with pytest.raises(ValueError, match="do not fit in a 32x48 frame"):
        MovingShapes(size=(32, 48), num_frames=40)
    from vidiff.data.balls import BouncingBalls

    with pytest.raises(ValueError, match="BouncingBalls draws square frames only; got size 32x48"):
        BouncingBalls(size=(32, 48))


def test_size_eval_scores_each_shape():
    from vidiff.eval.sizes import parse_shape, size_eval

    pipe = _micro_pipeline()  # 4 frames of 8x8
    rows = size_eval(pipe, [(4, 8, 8), (3, 8, 12)], num_videos=2, steps=1, splits=("train",))
    assert [(r["shape"], r["split"], r["n"]) for r in rows] == [
        ("4x8x8", "train", 2),
        ("3x8x12", "train", 2),
    ]
    assert all(0 <= r["adherence"] <= 1 for r in rows)
    assert parse_shape("16x32x48") == (16, 32, 48)
    with pytest.raises(ValueError, match="clip shape '16x32'"):
        parse_shape("16x32")
    with pytest.raises(ValueError, match="size 8x9"):
        size_eval(pipe, [(4, 8, 9)], num_videos=2)
    assert isinstance(pipe, VideoPipeline)


def test_native_sizes_benchmark_runs(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "native_sizes.py"
    spec = importlib.util.spec_from_file_location("bench_native_sizes", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _micro_pipeline().save(tmp_path / "dit")
    args = [str(tmp_path / "dit"), "--shapes", "4x8x8", "3x8x12", "--num-videos", "2"]
    bench.main([*args, "--steps", "1", "--splits", "train", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "| 4x8x8 | train |" in out and "| 3x8x12 | train |" in out
    assert (tmp_path / "r.json").stat().st_size > 0


def test_checkpoints_from_before_buckets_still_resume():
    """A checkpoint's config written before data.buckets existed lacks the key: it means no buckets."""
    from vidiff.config import to_dict
    from vidiff.train.settings import check_resumable

    cfg = load_config(None, MICRO_DIT[:7])
    stored = to_dict(cfg)
    for key in ("buckets", "bucket_batch"):
        del stored["data"][key]
    check_resumable(cfg, stored)
    with pytest.raises(ValueError, match=r"data.buckets \(\[\] -> \['4x8x8', '2x8x12'\]\)"):
        check_resumable(load_config(None, MICRO_DIT), stored)


def test_buckets_need_the_bucketed_training_set(tmp_path):
    cfg = load_config(None, [*MICRO_DIT, f"train.out_dir={tmp_path / 'r'}"])
    plain = MovingShapes(num_items=8, size=8, num_frames=4)
    with pytest.raises(
        ValueError, match="data.buckets needs the training set built from the config"
    ):
        train(cfg, datasets=(plain, None), progress=False)


def test_latent_dit_trains_on_several_shapes(tmp_path):
    """With a VAE the buckets are pixel shapes of whole latents; the loss takes each as it comes."""
    from tests.test_native_sizes import micro_latent_dit

    pipe = micro_latent_dit(tmp_path)
    for t, h, w in [(5, 16, 16), (9, 16, 24), (1, 24, 16)]:
        video = MovingShapes(num_items=2, size=(h, w), num_frames=t, walls=True)[0]["video"]
        loss = pipe.training_loss(video[None], ["a red circle moving right"], [0])
        assert loss.shape == (1,) and torch.isfinite(loss).all()
        loss.sum().backward()
