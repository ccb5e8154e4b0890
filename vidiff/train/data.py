"""Deterministic, resumable, process-sharded training data.

Everything random about a training step is a pure function of ``(train.seed, step, global sample
index)``, so that

* one process with global batch B and P processes with B / P each see *the same* samples and the same
  per-sample random draws (the trainer passes one integer seed per sample to the model's
  ``training_loss``), and their loss trajectories agree up to float reduction order;
* a resumed run continues exactly where it stopped: the *data position* (samples consumed per stream)
  is stored in the checkpoint and the sampler is a pure function of it.

Sampling is infinite and epoch-based without replacement: global position ``n`` of a stream maps to
``perm_e[n mod N]`` where ``e = n // N`` and ``perm_e`` is a permutation of the ``N`` items seeded by
``(seed, stream, e)``. Step ``s`` takes positions ``pos .. pos + B - 1``; process ``p`` of ``P``, at
accumulation micro-step ``a`` of ``A``, takes the ``m = B / (A P)`` global indices starting at
``(a P + p) m``.

Joint image-video training (VDM, Ho et al. 2022; Imagen Video): with ``data.image_ratio > 0`` a seeded
coin per step decides that the step trains on 1-frame images -- from ``data.image_root`` when given,
else the first frame of clips -- so that one model learns from images and videos together.

Native sizes and lengths (``data.buckets``, :mod:`vidiff.train.buckets`): a seeded draw per step picks
the clip shape ``T x H x W`` of the whole step; the step takes its bucket's global batch from the
same position stream, so the data order stays a pure function of ``(seed, step, positions)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from vidiff.config import Config, DataConfig
from vidiff.train.buckets import BucketedClips

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from integers (SplitMix64 chained; Steele et al. 2014)."""
    h = 0
    for v in values:
        h = _splitmix64(h ^ (int(v) & _MASK64))
    return h >> 1


_STREAM_IDS = {"video": 1, "image": 2, "kind": 3, "sample": 4, "bucket": 5}


def sample_seed(seed: int, step: int, index: int) -> int:
    """The seed of global sample ``index`` of optimiser step ``step``: drives its caption dropout,
    frame mask, noise level and noise inside ``training_loss``."""
    return mix_seed(seed, _STREAM_IDS["sample"], step, index)


def is_image_step(seed: int, step: int, image_ratio: float) -> bool:
    """Whether step ``step`` trains on images (a seeded coin with probability ``image_ratio``)."""
    if image_ratio <= 0:
        return False
    return (mix_seed(seed, _STREAM_IDS["kind"], step) >> 11) * 2.0**-52 < image_ratio


def draw_bucket(seed: int, step: int, num_buckets: int) -> int:
    """The clip-shape bucket of step ``step`` (``data.buckets``): uniform, seeded by ``(seed, step)``."""
    if num_buckets <= 1:
        return 0
    return mix_seed(seed, _STREAM_IDS["bucket"], step) % num_buckets


class EpochPermutation:
    """Infinite sampling without replacement: position -> dataset index, a new permutation per epoch."""

    def __init__(self, length: int, seed: int, stream: str):
        if length < 1:
            raise ValueError(f"cannot sample from an empty {stream} dataset")
        self.length = length
        self.seed = mix_seed(seed, _STREAM_IDS[stream])
        self._epoch = -1
        self._perm: list[int] = []

    def __getitem__(self, position: int) -> int:
        epoch, offset = divmod(position, self.length)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._perm = torch.randperm(self.length, generator=g).tolist()
            self._epoch = epoch
        return self._perm[offset]


@dataclass(frozen=True)
class Layout:
    """How a global batch is split over processes and accumulation micro-steps."""

    global_batch: int
    num_processes: int = 1
    process_index: int = 0
    grad_accum: int = 1

    def __post_init__(self) -> None:
        parts = self.num_processes * self.grad_accum
        if self.global_batch < 1 or self.global_batch % parts:
            raise ValueError(
                f"train.batch_size={self.global_batch} must be a positive multiple of "
                f"num_processes ({self.num_processes}) x train.grad_accum ({self.grad_accum})"
            )

    @property
    def micro_batch(self) -> int:
        return self.global_batch // (self.num_processes * self.grad_accum)

    def indices(self, micro_step: int) -> range:
        """Global sample indices (within the step) of this process at ``micro_step``."""
        start = (micro_step * self.num_processes + self.process_index) * self.micro_batch
        return range(start, start + self.micro_batch)


Key = tuple[str, int, int, int, int]  # (kind, item index, epoch, sample seed, bucket)


class DataPlan:
    """Which items every process trains on at every step: a pure function of (step, positions).

    ``bucket_batches``: the global batch of each clip-shape bucket (``data.buckets``); a step draws
    one bucket and uses its batch. Without it there is one bucket of ``layout.global_batch``.
    """

    def __init__(
        self,
        seed: int,
        layout: Layout,
        video_len: int,
        image_len: int | None,
        image_ratio: float,
        bucket_batches: list[int] | None = None,
    ):
        if not 0.0 <= image_ratio <= 1.0:
            raise ValueError(f"data.image_ratio must be in [0, 1], got {image_ratio}")
        self.seed = seed
        self.layout = layout
        self.layouts = [
            Layout(b, layout.num_processes, layout.process_index, layout.grad_accum)
            for b in (bucket_batches or [layout.global_batch])
        ]
        self.image_ratio = image_ratio
        self.orders = {"video": EpochPermutation(video_len, seed, "video")}
        if image_len is not None:
            self.orders["image"] = EpochPermutation(image_len, seed, "image")

    def kind(self, step: int) -> str:
        return "image" if is_image_step(self.seed, step, self.image_ratio) else "video"

    def bucket(self, step: int) -> int:
        """The clip-shape bucket of step ``step`` (0 without buckets)."""
        return draw_bucket(self.seed, step, len(self.layouts))

    def global_batch(self, step: int) -> int:
        """The number of clips step ``step`` trains on, over all processes."""
        return self.layouts[self.bucket(step)].global_batch

    def stream(self, kind: str) -> str:
        """Images come from their own folder when there is one, else from the video stream."""
        return "image" if kind == "image" and "image" in self.orders else "video"

    def advance(self, step: int, positions: dict[str, int]) -> dict[str, int]:
        """Data positions after step ``step``."""
        out = dict(positions)
        stream = self.stream(self.kind(step))
        out[stream] = out.get(stream, 0) + self.global_batch(step)
        return out

    def keys(self, step: int, positions: dict[str, int]) -> list[list[Key]]:
        """This process's micro-batches of step ``step``: lists of
        ``(kind, item, epoch, sample seed, bucket)``."""
        kind, bucket = self.kind(step), self.bucket(step)
        stream = self.stream(kind)
        base, order = positions.get(stream, 0), self.orders[stream]
        n, layout = order.length, self.layouts[bucket]
        return [
            [
                (kind, order[base + g], (base + g) // n, sample_seed(self.seed, step, g), bucket)
                for g in layout.indices(a)
            ]
            for a in range(layout.grad_accum)
        ]


class _BatchKeys:
    """Batch sampler for a DataLoader: yields micro-batch keys from ``start_step`` on, forever."""

    def __init__(self, plan: DataPlan, start_step: int, positions: dict[str, int]):
        self.plan, self.start_step, self.positions = plan, start_step, dict(positions)

    def __iter__(self) -> Iterator[list[Key]]:
        step, positions = self.start_step, dict(self.positions)
        while True:
            yield from self.plan.keys(step, positions)
            positions = self.plan.advance(step, positions)
            step += 1


class _KeyedItems(Dataset):
    """Maps a key ``(kind, index, epoch, seed, bucket)`` to a training item ``{video, caption, seed, cond}``;
    ``cond`` holds the item's own conditionings (its ``cond`` dict, keyed by cond name, e.g. a
    per-frame camera motion), ``{}`` for most datasets."""

    def __init__(self, videos: Dataset, images: Dataset | None):
        self.videos, self.images = videos, images

    def __getitem__(self, key: Key) -> dict[str, Any]:
        kind, index, epoch, seed, bucket = key
        dataset = self.images if kind == "image" and self.images is not None else self.videos
        if isinstance(dataset, BucketedClips):  # the clip at the step's shape
            dataset = dataset.bucket(bucket)
        if hasattr(dataset, "set_epoch"):
            # Folder datasets draw random starts/crops from (seed, epoch, index): new ones each epoch,
            # yet a pure function of the data position (so resumes and worker processes agree).
            dataset.set_epoch(epoch)
        item = dataset[index]
        video = item["video"]
        if kind == "image":
            video = video[:, :1]  # (C, 1, H, W): first frame of a clip, or an image already
        # (an image step keeps its item's cond as it is: a per-frame one must suit T = 1)
        cond = dict(item.get("cond", {}))
        return {"video": video, "caption": item["caption"], "seed": seed, "cond": cond}

    def __len__(self) -> int:  # not used for sampling; DataLoader only needs it when asked
        return len(self.videos)


def collate_train(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``{video (B, C, T, H, W), caption [str], seed [int], cond {name: (B, ...)}}``; ground truth
    is not needed to train."""
    keys = items[0].get("cond", {}).keys()
    return {
        "video": torch.stack([it["video"] for it in items]),
        "caption": [it["caption"] for it in items],
        "seed": [it["seed"] for it in items],
        "cond": {k: torch.stack([torch.as_tensor(it["cond"][k]) for it in items]) for k in keys},
    }


def train_batches(
    plan: DataPlan,
    videos: Dataset,
    images: Dataset | None = None,
    *,
    start_step: int = 0,
    positions: dict[str, int] | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """Yields, per optimiser step from ``start_step`` on, this process's ``grad_accum`` micro-batches."""
    loader = DataLoader(
        _KeyedItems(videos, images),
        batch_sampler=_BatchKeys(plan, start_step, positions or {}),
        collate_fn=collate_train,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
    micro: list[dict[str, Any]] = []
    for batch in loader:
        micro.append(batch)
        if len(micro) == plan.layout.grad_accum:
            yield micro
            micro = []


# --------------------------------------------------------------------------------------------------
# datasets and vocabulary from the config


def build_train_datasets(dc: DataConfig, seed: int) -> tuple[Dataset, Dataset | None]:
    """The training set (and the image set for joint training) described by ``data``.

    ``data.options`` go to the dataset class as extra keywords (e.g. ``num_objects: 2`` for shapes,
    ``random_crop: true`` for folders). A folder dataset samples clips at ``data.fps`` and leaves images
    to the image stream (``data.image_root``, which may be the same folder).
    """
    from vidiff.data import build_dataset

    if dc.name in ("folder", "images"):
        if dc.root is None:
            raise ValueError(f"data.name={dc.name!r} needs data.root (the folder of your clips)")
        kwargs: dict[str, Any] = {"root": dc.root, "size": dc.size, "seed": seed}
        if dc.name == "folder":
            kwargs.update(num_frames=dc.num_frames, fps=dc.fps, include_images=False)
    else:
        if dc.root is not None:
            raise ValueError(f"data.root is only for folder datasets, not data.name={dc.name!r}")
        kwargs = {
            "num_items": dc.num_items,
            "num_frames": dc.num_frames,
            "size": dc.size,
            "seed": seed,
            "split": "train",
        }
    if dc.buckets:
        videos = _bucketed(dc, kwargs)
    else:
        videos = build_dataset(dc.name, **{**kwargs, **dc.options})
    images = None
    if dc.image_root is not None:
        if dc.image_ratio <= 0:
            raise ValueError(
                "data.image_root is set but data.image_ratio is 0: no step would use it"
            )
        images = build_dataset("images", root=dc.image_root, size=dc.size, seed=seed)
    return videos, images


def _bucketed(dc: DataConfig, kwargs: dict[str, Any]) -> Dataset:
    """``data.buckets``: the dataset once per clip shape (the same items at each shape)."""
    from vidiff.data import build_dataset
    from vidiff.train.buckets import parse_buckets

    if dc.name == "images" or dc.image_root is not None:
        raise ValueError(
            "data.buckets draws clip shapes from a clip dataset; image steps take their bucket's "
            "first frames (data.image_ratio), so leave data.image_root unset and data.name != images"
        )
    buckets, parts = parse_buckets(dc.buckets), []
    for b in buckets:
        shape = {"num_frames": b.num_frames, "size": b.size}
        try:
            parts.append(build_dataset(dc.name, **{**kwargs, **dc.options, **shape}))
        except ValueError as e:
            raise ValueError(f"data.buckets entry {b}: {e}") from None
    return BucketedClips(buckets, parts)


def dataset_vocabulary(dataset: Dataset, scan: int = 2000) -> list[str]:
    """The words a dataset's captions use: its module's ``vocabulary()`` (the synthetic sets), else its
    ``captions()`` (folders know them without decoding), else the captions of its first ``scan`` items."""
    import importlib

    if isinstance(dataset, BucketedClips):
        dataset = dataset.bucket(0)
    module = importlib.import_module(type(dataset).__module__)
    if callable(getattr(module, "vocabulary", None)):
        return list(module.vocabulary())
    caps = getattr(dataset, "captions", None)
    caps = caps() if callable(caps) else caps
    if caps is None:
        caps = [dataset[i]["caption"] for i in range(min(scan, len(dataset)))]
    return caption_words(caps)


def caption_words(captions: list[str]) -> list[str]:
    """Sorted distinct words of ``captions``, split exactly as the built-in tokenizer splits them."""
    from vidiff.models.text import WordTokenizer

    return WordTokenizer.from_captions(captions).vocab


def ensure_vocabulary(config: Config, videos: Dataset, images: Dataset | None = None) -> None:
    """Give the built-in text encoder a vocabulary built from the data, stored in
    ``config.model.text["vocab"]`` so that it travels in every checkpoint and export."""
    mc = config.model
    if mc.text_encoder != "builtin" or mc.text.get("vocab"):
        return
    words = dataset_vocabulary(videos)
    if images is not None:
        words = sorted(set(words) | set(dataset_vocabulary(images)))
    if not words:
        from vidiff.data.captions import WHERE_CAPTIONS_GO

        where = (
            config.data.root if config.data.root is not None else f"data.name={config.data.name}"
        )
        raise ValueError(
            f"no captions found in {where}, and the built-in text encoder learns its words from "
            f"them: {WHERE_CAPTIONS_GO}; or train without text: model.text_encoder=none"
        )
    mc.text = {**mc.text, "vocab": list(words)}


def report_data(log: Callable[[str], object], *datasets: Dataset | None) -> None:
    """Tell ``log`` what each folder dataset found (files used, skipped by reason, uncaptioned)."""
    for dataset in datasets:
        if callable(getattr(dataset, "report", None)):
            log(f"vidiff: data: {dataset.report()}")
