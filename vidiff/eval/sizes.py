"""Quality per clip shape: the exact probes of a synthetic set, at each ``T x H x W`` asked for.

A DiT trained on several shapes (``data.buckets``, :mod:`vidiff.train.buckets`) or on one samples
others too; this measures how well, shape by shape, including shapes it never saw. Each shape gets
the same fixed prompt sets as ``vidiff eval`` (:func:`vidiff.eval.runner.eval_sets`, drawn at that
shape) and the same probes; no Fréchet distance (the shipped feature nets take 16 x 32 x 32 clips).
"""

from __future__ import annotations

from collections.abc import Sequence

from vidiff.eval import probes
from vidiff.eval.runner import eval_sets, generate, score_videos


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"TxHxW"`` (frames x height x width) -> ``(T, H, W)``; one line naming a bad one."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"clip shape {text!r}: expected TxHxW with positive integers, e.g. 16x32x48"
        )
    t, h, w = (int(p) for p in parts)
    return t, h, w


def size_eval(
    pipeline,
    shapes: Sequence[tuple[int, int, int]],
    num_videos: int = 16,
    steps: int | None = None,
    seed: int = 0,
    dataset: str = "shapes",
    splits: tuple[str, ...] = ("train", "heldout"),
) -> list[dict]:
    """One row per (shape, split): ``shape`` ``"TxHxW"``, ``split``, the probe summary
    (:func:`vidiff.eval.probes.summarize`: ``adherence``, per-attribute shares, flicker, jitter, ...)
    and ``sec_per_video``. Every shape is checked against the model before anything is sampled."""
    for t, h, w in shapes:
        pipeline.video_shape(t, (h, w))  # a ValueError names a shape the model cannot make
    was_training = pipeline.training
    pipeline.eval()
    rows = []
    try:
        for t, h, w in shapes:
            size = h if h == w else (h, w)
            for es in eval_sets(dataset, num_videos, t, size, seed, splits):
                vids, dt, k = generate(pipeline, es, steps=steps)
                verdicts = score_videos(dataset, vids, es.prompts, es.gts, num_cond_frames=k)
                row = {"shape": f"{t}x{h}x{w}", "split": es.split, **probes.summarize(verdicts)}
                rows.append({**row, "sec_per_video": dt})
    finally:
        pipeline.train(was_training)
    return rows
