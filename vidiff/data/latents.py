"""Latent caches: tensors encoded once, stored as safetensors shards, read back item by item.

Latent diffusion spends most of a training step in the frozen autoencoder unless its latents are
precomputed (the LDM / Open-Sora / Wan "pre-extracted latents" recipe). Both of vidiff's caches use
one folder layout, written by :class:`ShardWriter` and read by :class:`Shards`::

    <root>/index.json                 format, count, shard table, captions, and the writer's fields
    <root>/shard-00000.safetensors    one stacked tensor per key, up to shard_size items a shard

A folder is written under a temporary name and renamed when complete, so an interrupted encode
leaves no half cache under the real name. The two caches:

* :func:`cache_latents` (``vidiff vae cache``): a dataset encoded by a causal VAE, keys ``latent``
  (the scaled posterior mean) and ``std`` (the scaled posterior std, for :func:`sample_latent`),
  with the ground truth of synthetic items beside it (``gt.pt``, read with ``weights_only``);
  :class:`LatentDataset` reads it.
* ``data.cache_latents`` (:mod:`vidiff.train.latent_cache`): a run's training clips in its model's
  space, key ``x0``, with a fingerprint of what they depend on.

Latents are *scaled* (``(q - shift) * scale`` with the VAE's factors, see
:func:`vidiff.eval.reconstruction.measure_scaling`), so a latent model sees roughly unit-variance
data; decoding uses ``CausalVideoVAE.decode_latents(z, num_frames=index["num_frames"])``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

INDEX = "index.json"
FORMAT = "vidiff-latents-2"


class ShardWriter:
    """Write items' tensors into a cache folder: :meth:`add` batches, then :meth:`finish`.

    Everything goes to a temporary sibling folder (``path``: callers may put further files there)
    that :meth:`finish` renames to ``root``, which must not exist yet or be an empty folder. Used as
    a context manager, an exception before :meth:`finish` removes the temporary folder::

        with ShardWriter(root) as writer:
            writer.add(captions, latent=z)
            writer.finish(num_frames=16)
    """

    def __init__(self, root: str | Path, shard_size: int = 256):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.root = Path(root)
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise ValueError(f"{self.root} is not an empty folder; choose another for the cache")
        self.path = self.root.with_name(f"{self.root.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        self.shard_size = shard_size
        self.shards: list[dict[str, Any]] = []
        self.captions: list[str] = []
        self._buf: list[dict[str, torch.Tensor]] = []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.path, ignore_errors=True)  # gone already after finish

    def add(self, captions: list[str], **tensors: torch.Tensor) -> None:
        """Add ``len(captions)`` items; each tensor is batched along dim 0, one row per item."""
        for j, caption in enumerate(captions):
            self._buf.append({k: v[j].detach().cpu().contiguous() for k, v in tensors.items()})
            self.captions.append(caption)
            if len(self._buf) == self.shard_size:
                self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        from vidiff.files import save_safetensors

        name = f"shard-{len(self.shards):05d}.safetensors"
        stacked = {k: torch.stack([item[k] for item in self._buf]) for k in self._buf[0]}
        save_safetensors(stacked, self.path / name)
        self.shards.append({"file": name, "count": len(self._buf)})
        self._buf.clear()

    def finish(self, **fields: Any) -> Path:
        """Write the index (``fields`` added to it) and move the folder to ``root``."""
        self._flush()
        if not self.captions:
            raise ValueError("a latent cache needs at least one item")
        index = {"format": FORMAT, "count": len(self.captions), "shards": self.shards,
                 "captions": self.captions, **fields}  # fmt: skip
        (self.path / INDEX).write_text(json.dumps(index) + "\n")
        if self.root.is_dir():
            self.root.rmdir()  # empty (checked when the writer started)
        self.path.replace(self.root)
        return self.root


class Shards:
    """The items of a folder :class:`ShardWriter` wrote: ``tensor(key, i)``, ``captions``, ``index``
    (shards memory-mapped by safetensors, each opened once)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / INDEX
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a latent cache")
        self.index = json.loads(path.read_text())
        if self.index.get("format") != FORMAT:
            raise ValueError(
                f"{path}: latent cache format {self.index.get('format')!r}, this vidiff reads "
                f"{FORMAT!r}; encode it again"
            )
        self.where = [(s["file"], j) for s in self.index["shards"] for j in range(s["count"])]
        if len(self.where) != self.index["count"]:
            raise ValueError(f"{path}: shards hold {len(self.where)} items, index says {len(self)}")
        self.captions: list[str] = self.index["captions"]
        self._open: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.index["count"]

    def tensor(self, key: str, i: int) -> torch.Tensor:
        if not 0 <= i < len(self):
            raise IndexError(f"latent index {i} out of range for {len(self)} items")
        name, j = self.where[i]
        if name not in self._open:
            from safetensors import safe_open

            self._open[name] = safe_open(str(self.root / name), framework="pt")
        return self._open[name].get_slice(key)[j : j + 1][0]


@torch.no_grad()
def cache_latents(
    vae: Any,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    num_items: int | None = None,
    batch_size: int = 8,
    shard_size: int = 256,
    store_gt: bool = True,
    dtype: torch.dtype = torch.float32,
    tile_frames: int | None = None,
    tile_size: int | None = None,
) -> Path:
    """Encode the first ``num_items`` items (default: all) of ``dataset`` (``[0, 1]`` videos) with
    ``vae`` (a :class:`~vidiff.models.vae.CausalVideoVAE`) into a cache folder ``out_dir``.

    Clips whose frame count is not ``1 + tc k`` are padded with the last frame (16 -> 17); the source
    count is stored so decoding can crop back. Returns ``out_dir``.
    """
    out = Path(out_dir)
    if (out / INDEX).exists():
        raise ValueError(f"{out} already holds a latent cache ({INDEX}); choose another folder")
    n = len(dataset) if num_items is None else min(num_items, len(dataset))
    if n < 1:
        raise ValueError("cache_latents needs a non-empty dataset")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    vae.eval()
    scale, shift = vae.config.scaling_factor, vae.config.shift_factor
    gts: list[Any] = []
    video_shape = None
    with ShardWriter(out, shard_size) as writer:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, n))]
            video = torch.stack([it["video"] for it in items])
            if video_shape is None:
                video_shape = list(video.shape[1:])
            elif list(video.shape[1:]) != video_shape:
                raise ValueError(
                    f"all clips must share one shape to be cached together: {video_shape} vs "
                    f"{list(video.shape[1:])} at item {start}"
                )
            post = vae.encode(
                vae.pad_frames(video * 2 - 1), tile_frames=tile_frames, tile_size=tile_size
            )
            writer.add(
                [it["caption"] for it in items],
                latent=((post.mean - shift) * scale).to(dtype),
                std=(post.std * scale).to(dtype),
            )
            gts += [it.get("gt") for it in items]
        if store_gt:
            torch.save(gts, writer.path / "gt.pt")
        padded = vae.pad_frames(torch.zeros(1, *video_shape)).shape[2:]
        return writer.finish(
            num_frames=video_shape[1],  # of the source clips (decode_latents(z, num_frames=...))
            video_shape=video_shape,
            latent_shape=list(vae.latent_shape(*padded)),
            vae=dataclasses.asdict(vae.config),
            gt="gt.pt" if store_gt else None,
        )


class LatentDataset(Dataset):
    """Items ``{"latent", "std", "caption", "gt"}`` from a folder written by :func:`cache_latents`.

    ``as_video=True`` also returns the latent under ``"video"`` for the trainer's batching.
    """

    def __init__(self, root: str | Path, *, as_video: bool = False, load_gt: bool = True):
        self.shards = Shards(root)
        self.root, self.index = self.shards.root, self.shards.index
        self.as_video = as_video
        self.captions = self.shards.captions
        self.gt: list[Any] | None = None
        if load_gt and self.index.get("gt"):
            self.gt = torch.load(self.root / self.index["gt"], weights_only=True)

    def __len__(self) -> int:
        return len(self.shards)

    @property
    def num_frames(self) -> int:
        """Frames of the source clips: crop decoded videos to this many."""
        return self.index["num_frames"]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.index["latent_shape"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        latent = self.shards.tensor("latent", i).float()
        item = {
            "latent": latent,
            "std": self.shards.tensor("std", i).float(),
            "caption": self.captions[i],
            "gt": None if self.gt is None else self.gt[i],
        }
        if self.as_video:
            item["video"] = latent
        return item


def sample_latent(item: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
    """A posterior sample ``latent + std * eps`` of a cached item (seeded by ``generator``)."""
    eps = torch.randn(item["latent"].shape, generator=generator)
    return item["latent"] + item["std"] * eps


__all__ = ["INDEX", "LatentDataset", "ShardWriter", "Shards", "cache_latents", "sample_latent"]
