"""``data.cache_latents``: a latent model's training clips encoded once, then trained on from disk.

A latent model (a causal-VAE DiT, an inflated Stable Diffusion pipeline) spends most of a training
step in its frozen VAE. With ``data.cache_latents: true`` the trainer encodes every training clip
once with :meth:`VideoPipeline.to_model_space <vidiff.pipeline.VideoPipeline.to_model_space>` -- the
very ``x0`` an uncached step would compute -- into ``<out_dir>/latents/``, a cache folder of
:mod:`vidiff.data.latents` (key ``"x0"``, float32; its index adds the fingerprint of the VAE, data
settings and seed, and the latent shape), and trains on :class:`EncodedClips`;
``training_loss(..., encoded=True)`` then skips the VAE. It is written atomically and reused on
``--resume`` when its fingerprint matches; a mismatch (other data, another VAE) is refused rather
than silently mixed. What caching fixes: a folder dataset draws a clip's start and crop anew each
epoch, a cache keeps its first draw (as pre-extracted-latent recipes do); clips and captions are
all it stores, so a dataset whose items carry further conditionings is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vidiff.data.latents import FORMAT, INDEX, Shards, ShardWriter


def fingerprint(pipeline: Any, data_config: Any, seed: int) -> str:
    """A digest of what the encoded clips depend on: the VAE's config and weights, the data
    settings and the run's seed (a folder's starts and crops)."""
    h = hashlib.sha256()
    vae = pipeline.vae
    h.update(json.dumps(dataclasses.asdict(vae.config), sort_keys=True, default=str).encode())
    for name, t in sorted(vae.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    data = dataclasses.asdict(data_config)
    data.pop("num_workers", None)  # how clips are read, not which
    h.update(json.dumps({"data": data, "seed": seed}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def check_cacheable(pipeline: Any, data_config: Any) -> None:
    """One-line errors for a run whose clips cannot be cached."""
    if getattr(pipeline, "vae", None) is None:
        raise ValueError(
            "data.cache_latents encodes clips with the model's VAE; this model works on pixels "
            "(it needs model.vae, or a Stable Diffusion folder as model.init)"
        )
    if data_config.buckets or data_config.image_root is not None:
        raise ValueError(
            "data.cache_latents stores one clip shape: leave data.buckets and data.image_root unset"
        )


@torch.no_grad()
def encode_clips(
    pipeline: Any, videos: Dataset, root: str | Path, key: str, batch_size: int = 8, log=print
) -> Path:
    """Encode ``videos`` into ``root`` (atomically), or reuse it when it was made with ``key``."""
    root = Path(root)
    if (root / INDEX).is_file():
        index = json.loads((root / INDEX).read_text())
        if index.get("format") == FORMAT and index.get("fingerprint") == key:
            log(f"vidiff: training on the {index['count']} encoded clips in {root}")
            return root
        raise ValueError(
            f"{root} holds clips encoded with other data or another VAE; delete it or choose "
            "another train.out_dir"
        )
    if hasattr(videos, "set_epoch"):
        videos.set_epoch(0)  # the draw an uncached run makes in its first epoch
    n, shape = len(videos), None
    log(f"vidiff: encoding {n} training clips with the model's VAE into {root}")
    with ShardWriter(root) as writer:
        for start in range(0, n, batch_size):
            items = [videos[i] for i in range(start, min(n, start + batch_size))]
            if any(it.get("cond") for it in items):
                raise ValueError(
                    "data.cache_latents stores clips and captions only; this dataset's items "
                    f"carry conditionings ({sorted(items[0]['cond'])})"
                )
            x0 = pipeline.to_model_space(torch.stack([it["video"] for it in items])).float()
            shape = shape or list(x0.shape[1:])
            writer.add([it["caption"] for it in items], x0=x0)
        return writer.finish(fingerprint=key, shape=shape)


class EncodedClips(Dataset):
    """Items ``{"video": x0 (C_z, t, h, w), "caption"}`` of a folder :func:`encode_clips` wrote."""

    def __init__(self, root: str | Path):
        self.shards = Shards(root)

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"video": self.shards.tensor("x0", i), "caption": self.shards.captions[i]}


def cached_training_set(run: Any, videos: Dataset, is_main: bool, log) -> Dataset:
    """The training set of a :class:`~vidiff.train.loop.Run` with ``data.cache_latents``: its clips
    encoded once by the main process (the others wait), read back from ``<train.out_dir>/latents``.
    The loop has run :func:`check_cacheable` before anything was written."""
    from accelerate import PartialState

    pipeline, config = run.objective, run.config
    if run.fsdp:
        raise ValueError("data.cache_latents encodes with the whole VAE: not under train.fsdp")
    root = Path(config.train.out_dir) / "latents"
    key = fingerprint(pipeline, config.data, config.train.seed)
    state = PartialState()
    if is_main:
        encode_clips(pipeline, videos, root, key, log=log)
    state.wait_for_everyone()
    return EncodedClips(root)
