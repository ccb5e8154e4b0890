"""The one place that samples: a fixed, seeded prompt set per split, generation, and scoring.

Metrics stay pure functions (:mod:`vidiff.eval.probes`, :mod:`vidiff.eval.frechet`); this module
builds the evaluation set (prompts, seeds and the matching real clips), calls the pipeline, and
hands every video to the right probe.

The prompt set is the real clips' captions: for split ``s`` and ``N`` videos the real clips are items
``0..N-1`` of the dataset built with :data:`EVAL_DATA_SEED`, and items ``N..2N-1`` form a second,
disjoint real set for the real-vs-real floor of FD/KID. Video ``i`` is generated with seed
``seed * 1_000_003 + i`` (:func:`video_seed`), so a video depends only on (model, prompt, seed,
sampler settings). With ``all_prompts`` (MovingShapes only) the prompts are instead every caption
of the split (:func:`all_shapes_prompts`), each ``seeds_per_prompt`` times in a row, and the real
clips are the first items of the dataset, as many as there are videos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vidiff.eval import probes

EVAL_DATA_SEED = 20240  # the evaluation clips never share a seed with training (seed 0)
DATASETS = ("shapes", "balls", "digits")
NUM_COND_FRAMES = 4  # BouncingBalls continuation: frames given to the model


def video_seed(seed: int, index: int) -> int:
    """Sampling seed of the ``index``-th video of an evaluation run with base ``seed``."""
    return seed * 1_000_003 + index


@dataclass
class EvalSet:
    """Prompts, seeds and the real clips they come from, for one split."""

    dataset: str
    split: str
    prompts: list[str]
    seeds: list[int]
    real: torch.Tensor  # (N, C, T, H, W): the clips the prompts came from
    real_floor: torch.Tensor  # (N, C, T, H, W): a disjoint real set of the same size
    gts: list[dict | None] = field(default_factory=list)
    real_captions: list[str] = field(default_factory=list)  # the real clips' (default: prompts)


def build_real_dataset(
    dataset: str, split: str, num_items: int, num_frames: int, size: int | tuple[int, int]
):
    """The synthetic dataset that evaluation compares against (same frames and size as the model;
    ``size`` S or (H, W), non-square for MovingShapes)."""
    from vidiff.data import build_dataset

    if dataset not in DATASETS:
        raise ValueError(f"unknown eval dataset {dataset!r}; expected one of {DATASETS}")
    return build_dataset(
        dataset,
        num_items=num_items,
        split=split,
        num_frames=num_frames,
        size=size,
        seed=EVAL_DATA_SEED,
    )


SPLITS = ("train", "heldout")


def check_splits(splits) -> None:
    """A ValueError unless ``splits`` names one or more of :data:`SPLITS`."""
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"--splits {list(splits)}: expected one or more of {list(SPLITS)}")


def all_shapes_prompts(split: str) -> list[str]:
    """Every single-object MovingShapes caption of ``split``: its colour-shape pairs x directions."""
    from vidiff.data import shapes as shapes_data

    check_splits([split])
    pairs = shapes_data.TRAIN_PAIRS if split == "train" else shapes_data.HELDOUT_PAIRS
    return [
        shapes_data.caption_for([{"colour": c, "shape": s, "direction": d}])
        for c, s in pairs
        for d in shapes_data.DIRECTIONS
    ]


def eval_sets(
    dataset: str,
    num_videos: int,
    num_frames: int,
    size: int | tuple[int, int],
    seed: int = 0,
    splits: tuple[str, ...] = SPLITS,
    all_prompts: bool = False,
    seeds_per_prompt: int = 1,
) -> list[EvalSet]:
    """The fixed evaluation sets: ``train`` (in-distribution) and ``heldout`` for every dataset
    (MovingShapes' held-out split holds the unseen colour-shape pairs; BouncingBalls' and
    MovingDigits' hold independent clips and unseen digit images). A set does not depend on which
    other splits are asked for. ``all_prompts``: every MovingShapes caption of the split
    ``seeds_per_prompt`` times instead of ``num_videos`` sampled ones."""
    if num_videos < 2:
        raise ValueError(f"num_videos must be >= 2 (FD needs a covariance), got {num_videos}")
    if all_prompts and dataset != "shapes":
        raise ValueError(f"--all-prompts enumerates MovingShapes captions; got --dataset {dataset}")
    if seeds_per_prompt < 1 or (seeds_per_prompt > 1 and not all_prompts):
        raise ValueError(f"--seeds-per-prompt {seeds_per_prompt}: needs --all-prompts and >= 1")
    check_splits(splits)
    out = []
    for split in splits:
        prompts = None
        if all_prompts:
            prompts = [p for p in all_shapes_prompts(split) for _ in range(seeds_per_prompt)]
            num_videos = len(prompts)
        ds = build_real_dataset(dataset, split, 2 * num_videos, num_frames, size)
        items = [ds[i] for i in range(2 * num_videos)]
        out.append(
            EvalSet(
                dataset=dataset,
                split=split,
                prompts=prompts or [it["caption"] for it in items[:num_videos]],
                seeds=[video_seed(seed, i) for i in range(num_videos)],
                real=torch.stack([it["video"] for it in items[:num_videos]]),
                real_floor=torch.stack([it["video"] for it in items[num_videos:]]),
                gts=[None if all_prompts else it["gt"] for it in items[:num_videos]],
                real_captions=[it["caption"] for it in items[:num_videos]],
            )
        )
    return out


def _gt_centroids(gt: dict | None) -> np.ndarray | None:
    if not gt or not gt.get("objects"):
        return None
    try:
        return np.stack([np.asarray(o["centroids"], dtype=np.float64) for o in gt["objects"]])
    except (KeyError, TypeError, ValueError):
        return None


def score_video(
    dataset: str,
    video: torch.Tensor,
    caption: str,
    gt: dict | None = None,
    num_cond_frames: int = 0,
) -> dict:
    """Score one video with the probe of its dataset (see :mod:`vidiff.eval.probes`)."""
    if dataset == "shapes":
        return probes.score_shapes(video, caption)
    if dataset == "digits":
        return probes.score_digits(video, caption)
    if dataset == "balls":
        if num_cond_frames >= 2:
            n = len(gt["objects"]) if gt and gt.get("objects") else None
            ref = probes.rollout_from_frames(video, num_cond_frames, num_balls=n)
            return probes.score_balls(
                video, caption, reference=ref, num_cond_frames=num_cond_frames
            )
        return probes.score_balls(video, caption, reference=_gt_centroids(gt))
    raise ValueError(f"unknown eval dataset {dataset!r}; expected one of {DATASETS}")


def score_videos(
    dataset: str,
    videos: torch.Tensor | Sequence[torch.Tensor],
    captions: Sequence[str],
    gts: Sequence[dict | None] | None = None,
    num_cond_frames: int = 0,
) -> list[dict]:
    """Per-video verdicts for a batch ``(N, C, T, H, W)`` (or a list of clips)."""
    if len(videos) != len(captions):
        raise ValueError(f"{len(videos)} videos but {len(captions)} captions")
    gts = list(gts) if gts is not None else [None] * len(captions)
    return [
        score_video(dataset, v, c, g, num_cond_frames) for v, c, g in zip(videos, captions, gts)
    ]


def generate(
    pipeline,
    es: EvalSet,
    steps: int | None = None,
    sampler: str | None = None,
    cfg: float | None = None,
    noise_correlation: float | None = None,
    batch_size: int = 16,
    done: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, float, int]:
    """Sample the set's videos; returns ``(videos (N, C, T, H, W), seconds per video,
    number of conditioning frames)``. BouncingBalls is a continuation task when the model takes
    known frames (the first :data:`NUM_COND_FRAMES` real frames are given). ``done(n)`` is called
    after each batch of ``n`` videos (a progress bar)."""
    known, mask, k = None, None, 0
    frame_cond = bool(getattr(getattr(pipeline.config, "model", None), "frame_conditioning", False))
    if es.dataset == "balls" and frame_cond:
        k = NUM_COND_FRAMES
        known = es.real
        mask = torch.zeros(len(es.prompts), es.real.shape[2], dtype=torch.bool)
        mask[:, :k] = True
    t0 = time.perf_counter()
    kwargs = dict(steps=steps, sampler=sampler, cfg=cfg, noise_correlation=noise_correlation)
    t, h, w = es.real.shape[2:]
    if (t, h, w) != (pipeline.num_frames, pipeline.size, pipeline.size):
        kwargs.update(num_frames=t, size=(h, w))  # a set of another shape (a DiT's native sizes)
    batches = []
    for start in range(0, len(es.prompts), batch_size):
        part = slice(start, start + batch_size)
        batches.append(
            pipeline.generate(
                es.prompts[part],
                es.seeds[part],
                known_frames=None if known is None else known[part],
                frame_mask=None if mask is None else mask[part],
                batch_size=batch_size,
                **kwargs,
            )
        )
        if done is not None:
            done(len(batches[-1]))
    videos = torch.cat(batches)
    dt = (time.perf_counter() - t0) / max(1, len(es.prompts))
    return videos.float().clamp(0, 1).cpu(), dt, k


def distribution(gen: torch.Tensor, es: EvalSet, seed: int = 0, i3d=None) -> dict[str, float]:
    """FD / KID of generated vs real clips on the shipped video features, with the real-vs-real
    floor at the same N (NaN, with the reason, when the feature net is missing); with ``i3d`` (an
    :class:`~vidiff.eval.frechet.InceptionI3d`), also the standard FVD and its floor."""
    from vidiff.eval.frechet import distribution_metrics, fd, i3d_features
    from vidiff.eval.judges import load_feature_net, video_features

    try:
        net = load_feature_net()
    except FileNotFoundError as e:
        out = {"n": len(gen), "fd": math.nan, "kid": math.nan, "fd_note": str(e)}
    else:
        out = distribution_metrics(
            video_features(gen, net),
            video_features(es.real, net),
            video_features(es.real_floor, net),
            seed,
        )
    if i3d is not None:
        if gen.shape[2] < 9:
            out["fvd_note"] = f"FVD needs >= 9 frames, clips have {gen.shape[2]}"
        else:
            f_real = i3d_features(es.real, i3d)
            out["fvd"] = fd(i3d_features(gen, i3d), f_real)
            out["fvd_floor"] = fd(i3d_features(es.real_floor, i3d), f_real)
    return out
