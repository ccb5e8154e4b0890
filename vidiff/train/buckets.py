"""Native sizes and lengths: training one model on clips of several shapes (``data.buckets``).

Sora (Brooks et al., 2024) trains on videos at their native resolutions, aspect ratios and durations,
which its spacetime patches and positions allow; vidiff's DiT patches any ``T x H x W`` grid that
its patch divides and computes its 3D RoPE positions per input. A *bucket* is one clip shape
``T x H x W`` (frames x height x width, pixels); every optimiser step draws one bucket, so a batch
holds clips of one shape (no padding or packing, unlike NaViT), and the run sees every bucket.

The draw is a pure function of ``(train.seed, step)``, like the image/video coin of joint training:
every process draws the same bucket and a resumed run the same sequence. With ``data.bucket_batch:
tokens`` the global batch of a bucket is scaled so that each step carries about as many pixels x
frames as ``train.batch_size`` clips of the largest bucket (rounded down to whole micro-batches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

BUCKET_BATCH = ("fixed", "tokens")
_TEXT = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$")


@dataclass(frozen=True)
class Bucket:
    """One clip shape: ``num_frames`` frames of ``height x width`` pixels."""

    num_frames: int
    height: int
    width: int

    @property
    def size(self) -> int | tuple[int, int]:
        """``S`` for a square frame, else ``(H, W)``: what the datasets take as ``size``."""
        return self.height if self.height == self.width else (self.height, self.width)

    @property
    def voxels(self) -> int:
        return self.num_frames * self.height * self.width

    def __str__(self) -> str:
        return f"{self.num_frames}x{self.height}x{self.width}"


def parse_buckets(spec: list[Any]) -> list[Bucket]:
    """``data.buckets`` -> buckets. An entry is ``"TxHxW"`` (e.g. ``"16x32x48"``: 16 frames of 32
    rows by 48 columns) or ``{num_frames, height, width}``; a bad entry is named in one line."""
    if not isinstance(spec, (list, tuple)):
        raise ValueError(
            f"data.buckets must be a list of 'TxHxW' or {{num_frames, height, width}}, got {spec!r}"
        )
    out: list[Bucket] = []
    for entry in spec:
        values = None
        if isinstance(entry, str) and (m := _TEXT.match(entry)):
            values = tuple(int(v) for v in m.groups())
        elif (
            isinstance(entry, dict)
            and set(entry) == {"num_frames", "height", "width"}
            and all(isinstance(v, int) for v in entry.values())
        ):
            values = (entry["num_frames"], entry["height"], entry["width"])
        if values is None or min(values) < 1:
            raise ValueError(
                f"data.buckets entry {entry!r}: expected 'TxHxW' (frames x height x width, e.g. "
                "'16x32x48') or {num_frames: T, height: H, width: W} with positive integers"
            )
        bucket = Bucket(*values)
        if bucket in out:
            raise ValueError(f"data.buckets lists {bucket} twice")
        out.append(bucket)
    return out


def bucket_batches(buckets: list[Bucket], batch_size: int, parts: int, mode: str) -> list[int]:
    """The global batch size of each bucket: ``batch_size`` for all (``fixed``), or (``tokens``)
    ``batch_size`` for the largest bucket and, for the others, as many clips as carry about its
    pixels x frames, rounded down to a multiple of ``parts`` (processes x accumulation steps)."""
    if mode not in BUCKET_BATCH:
        raise ValueError(f"data.bucket_batch must be one of {BUCKET_BATCH}, got {mode!r}")
    if mode == "fixed":
        return [batch_size] * len(buckets)
    most = max(b.voxels for b in buckets)
    return [max(parts, batch_size * most // b.voxels // parts * parts) for b in buckets]


class BucketedClips(Dataset):
    """One dataset per bucket, all of the same items (index ``i`` is the same clip, drawn at each
    bucket's shape). As a plain dataset it is its first bucket's (captions, vocabulary, samples)."""

    def __init__(self, buckets: list[Bucket], datasets: list[Dataset]):
        if len(buckets) != len(datasets) or not datasets:
            raise ValueError("BucketedClips needs one dataset per bucket")
        lengths = {len(d) for d in datasets}
        if len(lengths) != 1:
            raise ValueError(f"the bucket datasets differ in length: {sorted(lengths)}")
        self.buckets, self.datasets = list(buckets), list(datasets)

    def bucket(self, index: int) -> Dataset:
        return self.datasets[index]

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        return self.datasets[0][index]

    def __len__(self) -> int:
        return len(self.datasets[0])


def plan_buckets(config: Any, model: Any, videos: Dataset, parts: int) -> list[int] | None:
    """The global batch of each ``data.buckets`` bucket for the trainer (None without buckets),
    after checking that the model makes every bucket's shape: only a DiT does (its patches and RoPE
    take any grid), in whole patches (of latents with a VAE); ``videos`` must hold the buckets."""
    dc = config.data
    if not dc.buckets:
        return None
    buckets = parse_buckets(dc.buckets)
    if not isinstance(videos, BucketedClips) or videos.buckets != buckets:
        raise ValueError(
            "data.buckets needs the training set built from the config (one dataset per bucket, "
            f"vidiff.train.data.build_train_datasets); got {type(videos).__name__}"
        )
    check = getattr(model, "video_shape", None)
    if config.model.arch != "dit" or check is None:
        raise ValueError(
            "data.buckets trains on several clip shapes, which only a DiT samples back; "
            f"got model.arch={config.model.arch}"
        )
    for b in buckets:
        try:
            check(b.num_frames, (b.height, b.width))
        except ValueError as e:
            raise ValueError(f"data.buckets entry {b}: {e}") from None
    return bucket_batches(buckets, config.train.batch_size, parts, dc.bucket_batch)
