"""VideoGPT's two training stages: the VQ-VAE (``model.arch: vqvae``), then the prior
(``model.arch: videogpt``, reading the exported VQ-VAE folder named by ``model.vae``).

Stage one minimises ``l1 |x - x'| + l2 (x - x')^2 + commitment |z - sg(e)|^2`` per clip; the codebook
is not in the gradient but follows the EMA of its assigned encoder outputs, updated once per optimiser
step (the ``end_step`` hook), which also restarts dead codes (:mod:`vidiff.models.vqvae`). Stage two
minimises the cross-entropy of each code given the caption and the codes before it (nats per code,
averaged over the clip) with the VQ-VAE frozen. Neither stage draws random numbers, so resuming is
exact. State-dict keys: ``vqvae.*`` (stage one; ``vidiff export`` writes the VQ-VAE folder); the
:class:`~vidiff.families.videogpt.VideoGPTPipeline`'s ``pipe.vqvae.*``, ``pipe.prior.*`` (stage two).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vidiff.families.videogpt import VideoGPTPipeline
from vidiff.models.vqvae import VQVAE, vqvae_config


class VQVAEObjective(nn.Module):
    """Stage one: trains a :class:`VQVAE` (``self.vqvae``)."""

    def __init__(self, vqvae: VQVAE):
        super().__init__()
        self.vqvae = vqvae
        self.last_restarts = 0  # codes restarted by the last step (for tests and logs)

    @property
    def net(self) -> VQVAE:
        return self.vqvae

    def end_step(self, step: int) -> None:
        """Apply the step's EMA codebook update and restart dead codes."""
        self.last_restarts = self.vqvae.quantizer.update(step)

    def save(self, directory: str | Path, *, dtype: torch.dtype = torch.float32) -> Path:
        return self.vqvae.save(directory, dtype=dtype)

    def training_loss(
        self, video: torch.Tensor, captions: list[str] | None = None, seeds: list[int] | None = None
    ) -> torch.Tensor:
        """Per-clip loss ``(B,)`` of ``[0, 1]`` clips (captions and seeds are not used)."""
        if video.ndim != 5:
            raise ValueError(f"expected a video batch (B, C, T, H, W), got {tuple(video.shape)}")
        cfg = self.vqvae.config
        x = video * 2 - 1
        rec, _, commit = self.vqvae(x)
        diff = rec - x
        per = lambda a: a.mean(dim=(1, 2, 3, 4))
        return (
            cfg.l1_weight * per(diff.abs())
            + cfg.l2_weight * per(diff.square())
            + (cfg.commitment * commit)
        )


class VideoGPTObjective(nn.Module):
    """Stage two: trains the prior of a :class:`VideoGPTPipeline` (``self.pipe``) on frozen codes."""

    def __init__(self, pipe: VideoGPTPipeline):
        super().__init__()
        self.pipe = pipe

    @property
    def net(self) -> nn.Module:
        return self.pipe.prior

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.pipe.prior.parameters())

    def train(self, mode: bool = True) -> VideoGPTObjective:
        super().train(mode)
        self.pipe.vqvae.eval()
        return self

    def save(self, directory: str | Path, *, dtype: torch.dtype = torch.float32) -> Path:
        return self.pipe.save(directory, dtype=dtype)

    def generate(self, prompts: list[str], seeds: list[int], **kwargs) -> torch.Tensor:
        return self.pipe.generate(prompts, seeds, **kwargs)

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int] | None = None
    ) -> torch.Tensor:
        """Mean cross-entropy per code of each clip ``(B,)`` given its caption."""
        codes = self.pipe.codes_of(video)  # (B, N)
        ids, _ = self.pipe.tokens(captions)
        logits = self.pipe.prior(ids, codes)  # (B, N, K)
        ce = F.cross_entropy(logits.transpose(1, 2).float(), codes, reduction="none")
        return ce.mean(dim=1)


def build_videogpt_objective(config: Any) -> nn.Module:
    """``model.arch: vqvae`` -> :class:`VQVAEObjective`; ``videogpt`` -> :class:`VideoGPTObjective`."""
    mc = config.model
    if mc.arch == "vqvae":
        return VQVAEObjective(VQVAE(vqvae_config(mc.preset, **dict(mc.net))))
    return VideoGPTObjective(VideoGPTPipeline(config.pipeline_config()))
