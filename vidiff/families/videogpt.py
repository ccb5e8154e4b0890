"""The exported VideoGPT: caption tokenizer + frozen VQ-VAE + causal transformer prior.

Generation samples a clip's codes with :func:`vidiff.models.videogpt.sample_codes` (temperature,
top-k; sample ``i``'s draws from ``seeds[i]``) and decodes them with the VQ-VAE. The folder carries
both networks (``vqvae.*``, ``prior.*``) and the VQ-VAE's config as ``model.vae_config``; training
reads the VQ-VAE from the exported folder named by ``model.vae`` (stage one,
``configs/shapes-vqvae.yaml``).
"""

from __future__ import annotations

import dataclasses

import torch

from vidiff.config import PipelineConfig
from vidiff.families import FamilyPipeline
from vidiff.models.videogpt import VideoGPT, check_sampling, sample_codes, videogpt_config
from vidiff.models.vqvae import VQVAE, VQVAEConfig


def _build_vqvae(config: PipelineConfig) -> VQVAE:
    mc = config.model
    if mc.vae_config is not None:
        vqvae = VQVAE(VQVAEConfig(**mc.vae_config))  # an export: its weights follow
    elif mc.vae is not None:
        vqvae = VQVAE.load(mc.vae)
    else:
        raise ValueError(
            "a videogpt model needs model.vae: an exported VQ-VAE folder (train it first with "
            "configs/shapes-vqvae.yaml, then `vidiff export`)"
        )
    return vqvae.requires_grad_(False).eval()


class VideoGPTPipeline(FamilyPipeline):
    """Caption -> codes (``prior``, a :class:`VideoGPT`) -> clip (``vqvae``, frozen)."""

    family = "videogpt"
    sampling_options = ("temperature", "top_k")

    def __init__(self, config: PipelineConfig):
        super().__init__(config)
        self.vqvae = _build_vqvae(config)
        video = config.video
        grid = self.vqvae.code_shape(video.num_frames, video.size, video.size)
        self.code_grid = grid
        sizes = {"vocab_size": len(self.tokenizer.itos), "text_len": self.tokenizer.max_length,
                 "codebook_size": self.vqvae.config.codebook_size,
                 "num_codes": grid[0] * grid[1] * grid[2], "code_grid": tuple(grid)}  # fmt: skip
        net = dict(config.model.net)
        for key, want in sizes.items():
            got = net.get(key, want)
            if (tuple(got) if isinstance(got, list) else got) != want:
                raise ValueError(
                    f"model.net.{key}={net[key]} disagrees with the data / VQ-VAE ({want}); "
                    "leave it unset"
                )
        self.prior = VideoGPT(videogpt_config(config.model.preset, **{**net, **sizes}))

    @property
    def net(self) -> VideoGPT:
        return self.prior

    def train(self, mode: bool = True) -> VideoGPTPipeline:
        super().train(mode)
        self.vqvae.eval()  # frozen: never gathers codebook statistics
        return self

    def net_config(self) -> dict:
        return dataclasses.asdict(self.prior.config)

    def export_config(self) -> dict:
        config = super().export_config()
        config["model"]["vae"] = None
        config["model"]["vae_config"] = dataclasses.asdict(self.vqvae.config)
        return config

    def codes_of(self, video: torch.Tensor) -> torch.Tensor:
        """Flattened codes ``(B, N)`` of ``[0, 1]`` clips, in raster order (t, h, w)."""
        with torch.no_grad():
            return self.vqvae.encode(video * 2 - 1).flatten(1)

    def _generate_batch(
        self,
        prompts: list[str],
        generators: list[torch.Generator],
        temperature: float | None = None,
        top_k: int | None = None,
    ) -> torch.Tensor:
        c = self.prior.config
        check_sampling(c.temperature if temperature is None else temperature,
                       c.top_k if top_k is None else top_k)  # fmt: skip
        ids, _ = self.tokens(prompts)
        codes = sample_codes(self.prior, ids, generators, temperature, top_k)
        t, h, w = self.code_grid
        codes = codes.view(len(prompts), t, h, w)
        return (self.vqvae.decode(codes, self.num_frames) + 1) / 2
