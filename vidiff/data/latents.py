"""Latent caching: encode a video dataset once with the causal VAE, train the latent model from disk.

Latent diffusion spends most of a training step in the frozen autoencoder unless its latents are
precomputed (the LDM / Open-Sora / Wan "pre-extracted latents" recipe). :func:`cache_latents` writes

```
<root>/index.json                 VAE config, shapes, shard table, captions, source frame count
<root>/shard-00000.safetensors    "latent" (N, C_z, t, h, w) = scaled posterior means,
                                  "std"    (N, C_z, t, h, w) = scaled posterior std (for sampling)
<root>/gt.pt                      list of ground-truth dicts (tensors + plain values; optional)
```

and :class:`LatentDataset` reads it back as items ``{"latent": (C_z, t, h, w) float32,
"caption": str, "gt": dict | None}`` (plus ``"video"``, the same tensor, with ``as_video=True``, so
that the unchanged trainer -- which batches ``item["video"]`` -- carries latents to a model whose
``training_loss`` expects them). ``sample_latent(item, generator)`` draws ``latent + std * eps``
(posterior sampling as data augmentation, like SD's cached-latent training).

Latents are *scaled* (``(q - shift) * scale`` with the VAE's factors, see
:func:`vidiff.eval.reconstruction.measure_scaling`), so a latent model sees roughly unit-variance data;
decoding uses ``CausalVideoVAE.decode_latents(z, num_frames=index["num_frames"])``.

How a latent DiT trains from a cache (the pipeline's side): build the training set as
``LatentDataset(root, as_video=True)``; the trainer then batches latents ``(B, C_z, t, h, w)`` as
``micro["video"]`` and the pipeline's ``training_loss`` must use them as ``x0`` directly (no
``* 2 - 1``, no VAE call), with frame masks over *latent* frames (latent frame 0 is exactly the
encoded first frame, so image-to-video conditioning is ``mask[:, 0] = True``). Generation decodes the
sampled latents with the VAE whose config is ``index["vae"]`` (its weights: the exported folder the
cache was made with).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

INDEX = "index.json"
FORMAT = "vidiff-latents-1"


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
    ``vae`` (a :class:`~vidiff.models.vae.CausalVideoVAE`) into safetensors shards under ``out_dir``.

    Clips whose frame count is not ``1 + tc k`` are padded with the last frame (16 -> 17); the source
    count is stored so decoding can crop back. Returns ``out_dir``.
    """
    from vidiff.files import save_safetensors

    out = Path(out_dir)
    if (out / INDEX).exists():
        raise ValueError(f"{out} already holds a latent cache ({INDEX}); choose another folder")
    n = len(dataset) if num_items is None else min(num_items, len(dataset))
    if n < 1:
        raise ValueError("cache_latents needs a non-empty dataset")
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be >= 1, got {shard_size}, {batch_size}")
    out.mkdir(parents=True, exist_ok=True)
    vae.eval()
    scale, shift = vae.config.scaling_factor, vae.config.shift_factor
    captions: list[str] = []
    gts: list[Any] = []
    shards: list[dict[str, Any]] = []
    buf_mean: list[torch.Tensor] = []
    buf_std: list[torch.Tensor] = []
    num_frames = None
    video_shape = None

    def flush() -> None:
        if not buf_mean:
            return
        name = f"shard-{len(shards):05d}.safetensors"
        tensors = {
            "latent": torch.cat(buf_mean).to(dtype).contiguous(),
            "std": torch.cat(buf_std).to(dtype).contiguous(),
        }
        save_safetensors(tensors, out / name)
        shards.append({"file": name, "count": len(tensors["latent"])})
        buf_mean.clear()
        buf_std.clear()

    pending = 0
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        video = torch.stack([it["video"] for it in items])
        if video_shape is None:
            video_shape, num_frames = list(video.shape[1:]), video.shape[2]
        elif list(video.shape[1:]) != video_shape:
            raise ValueError(
                f"all clips must share one shape to be cached together: {video_shape} vs "
                f"{list(video.shape[1:])} at item {start}"
            )
        post = vae.encode(
            vae.pad_frames(video * 2 - 1), tile_frames=tile_frames, tile_size=tile_size
        )
        mean, std = (post.mean - shift) * scale, post.std * scale
        for j in range(len(items)):  # shards hold exactly shard_size items (the last one fewer)
            buf_mean.append(mean[j : j + 1].cpu())
            buf_std.append(std[j : j + 1].cpu())
            pending += 1
            if pending == shard_size:
                flush()
                pending = 0
        captions += [it["caption"] for it in items]
        gts += [it.get("gt") for it in items]
    flush()
    if store_gt:
        torch.save(gts, out / "gt.pt")
    index = {
        "format": FORMAT,
        "num_items": n,
        "num_frames": num_frames,  # of the source clips (decode_latents(z, num_frames=...))
        "video_shape": video_shape,
        "latent_shape": list(
            vae.latent_shape(*vae.pad_frames(torch.zeros(1, *video_shape)).shape[2:])
        ),
        "vae": dataclasses.asdict(vae.config),
        "shards": shards,
        "captions": captions,
        "gt": "gt.pt" if store_gt else None,
    }
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return out


class LatentDataset(Dataset):
    """Items ``{"latent", "std", "caption", "gt"}`` from a folder written by :func:`cache_latents`.

    The shards are read lazily (memory-mapped by safetensors) and kept open.
    ``as_video=True`` also returns the latent under ``"video"`` for the trainer's batching.
    """

    def __init__(self, root: str | Path, *, as_video: bool = False, load_gt: bool = True):
        self.root = Path(root)
        path = self.root / INDEX
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a latent cache (see cache_latents)")
        self.index = json.loads(path.read_text())
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown latent cache format {self.index.get('format')!r}")
        self.as_video = as_video
        self.captions: list[str] = self.index["captions"]
        self._offsets: list[tuple[int, int, str]] = []  # (first item, count, file)
        first = 0
        for shard in self.index["shards"]:
            self._offsets.append((first, shard["count"], shard["file"]))
            first += shard["count"]
        if first != self.index["num_items"]:
            raise ValueError(
                f"{path}: shards hold {first} items, index says {self.index['num_items']}"
            )
        self._open: dict[str, Any] = {}
        self.gt: list[Any] | None = None
        if load_gt and self.index.get("gt"):
            self.gt = torch.load(self.root / self.index["gt"], weights_only=True)

    def __len__(self) -> int:
        return self.index["num_items"]

    @property
    def num_frames(self) -> int:
        """Frames of the source clips: crop decoded videos to this many."""
        return self.index["num_frames"]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.index["latent_shape"])

    def _shard(self, i: int) -> tuple[Any, int]:
        for first, count, name in self._offsets:
            if first <= i < first + count:
                if name not in self._open:
                    from safetensors import safe_open

                    self._open[name] = safe_open(str(self.root / name), framework="pt")
                return self._open[name], i - first
        raise IndexError(f"latent index {i} out of range for {len(self)} items")

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"latent index {i} out of range for {len(self)} items")
        f, j = self._shard(i)
        latent = f.get_slice("latent")[j : j + 1][0].float()
        std = f.get_slice("std")[j : j + 1][0].float()
        item = {
            "latent": latent,
            "std": std,
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
