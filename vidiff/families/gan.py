"""The exported video GAN: caption tokenizer + MoCoGAN generator (:mod:`vidiff.models.gan`).

Generation is one forward pass: sample ``i``'s content code and motion noise come from a generator
seeded with ``seeds[i]``. The folder holds the generator only (``generator.*``); the discriminators
are training-only and live in :class:`vidiff.train.objectives.gan.GANObjective`.
"""

from __future__ import annotations

import dataclasses

import torch

from vidiff.config import PipelineConfig
from vidiff.families import FamilyPipeline
from vidiff.models.gan import GANConfig, VideoGenerator, gan_config


def build_gan_config(config: PipelineConfig, vocab_size: int) -> GANConfig:
    """The network config of ``model.preset`` / ``model.net``, sized to the clip and vocabulary."""
    mc, video = config.model, config.video
    net = dict(mc.net)
    for key, want in (("size", video.size), ("num_frames", video.num_frames),
                      ("channels", video.channels), ("vocab_size", vocab_size)):  # fmt: skip
        if net.get(key, want) != want:
            raise ValueError(
                f"model.net.{key}={net[key]} disagrees with the data ({key} {want}); leave it unset"
            )
        net[key] = want
    return gan_config(mc.preset, **net)


class GANPipeline(FamilyPipeline):
    """Caption -> clip with a :class:`VideoGenerator` (keys ``generator.*``)."""

    family = "gan"

    def __init__(self, config: PipelineConfig):
        super().__init__(config)
        self.generator = VideoGenerator(build_gan_config(config, len(self.tokenizer.itos)))

    @property
    def net(self) -> VideoGenerator:
        return self.generator

    def net_config(self) -> dict:
        return dataclasses.asdict(self.generator.config)

    def fake(self, captions: list[str], generators: list[torch.Generator]) -> torch.Tensor:
        """Generated clips in model space ``[-1, 1]`` (with gradients when enabled)."""
        ids, mask = self.tokens(captions)
        zc, zn = self.generator.draw_latents(generators, self.num_frames)
        return self.generator(ids, mask, zc, zn)

    def _generate_batch(
        self, prompts: list[str], generators: list[torch.Generator]
    ) -> torch.Tensor:
        return (self.fake(prompts, generators) + 1) / 2
