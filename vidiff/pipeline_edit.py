"""Editing with a pipeline: ``VideoPipeline.edit`` (masked regeneration, video-to-video).

The mixin holds the pipeline's editing entry point; the denoiser wrappers and starting points it
combines (RePaint, SDEdit, structure guidance, layered edits) are in
:mod:`vidiff.diffusion.editing`, and :class:`~vidiff.pipeline.VideoPipeline` inherits it.
"""

from __future__ import annotations

import torch

from vidiff.diffusion import frame_conditioned
from vidiff.diffusion.editing import (
    layered_edit,
    masked_denoiser,
    sdedit_start,
    strength_steps,
    structure_denoiser,
)
from vidiff.sampling import SeededNoise
from vidiff.sampling.resample import sample_resampled


class EditingMixin:
    """``edit`` for :class:`~vidiff.pipeline.VideoPipeline` (which provides the model-space
    conversions, ``guided``, ``sigmas`` and the config it reads)."""

    @torch.no_grad()
    def edit(
        self,
        videos: torch.Tensor,
        prompts: list[str],
        seeds: list[int],
        *,
        mask: torch.Tensor | None = None,
        strength: float | None = None,
        resample: int = 0,
        steps: int | None = None,
        sampler: str | None = None,
        cfg: float | None = None,
        noise_correlation: float | None = None,
        frame_channels: bool = True,
        layered: bool = False,
        structure: float = 0.0,
        batch_size: int = 16,
        callback=None,
    ) -> torch.Tensor:
        """Edit videos ``(B, C, T, H, W)`` in ``[0, 1]`` (the model's shape) by prompt and seed.

        ``mask`` ``(B, T, H, W)`` bool, True = regenerate: the rest keeps the input (RePaint,
        :func:`~vidiff.diffusion.editing.masked_denoiser`, with ``resample`` jumps per step); the
        result is pasted onto the input outside the mask, so it equals the input there bit for bit.
        ``strength`` in (0, 1] (SDEdit): the share of the ``steps`` sampling steps run from the input
        noised to that level; default 1 (from noise) with a mask, required without one. Strength 1
        without a mask is :meth:`generate` with the same seed. A mask of whole frames (each frame all
        regenerated or all kept) goes, on a model with frame conditioning and ``frame_channels``,
        through the model's frame-mask channels instead of RePaint (what it was trained on for
        continuation; measured better in docs/editing.md). ``layered``: edit the foreground on black,
        the background the model knows, and lay the region over the input's clean plate
        (:func:`~vidiff.diffusion.editing.layered_edit`). ``structure`` in [0, 1] (pixel models,
        with a strength): the share of the steps run during which the estimate keeps the input's
        brightness (:func:`~vidiff.diffusion.editing.structure_denoiser`): the layout and motion
        stay while the prompt recolours. A video depends only on its input, mask, prompt and seed,
        not on its batch.
        """
        shape = (self.config.video.channels, self.num_frames, self.size, self.size)
        if videos.ndim != 5 or tuple(videos.shape[1:]) != shape:
            raise ValueError(
                f"videos must be (B, {', '.join(map(str, shape))}), got {tuple(videos.shape)}"
            )
        if not len(prompts) == len(seeds) == len(videos):
            raise ValueError(f"{len(videos)} videos, {len(prompts)} prompts, {len(seeds)} seeds")
        if mask is not None and (mask.dtype != torch.bool or mask.shape != videos[:, 0].shape):
            raise ValueError(
                f"mask must be bool {tuple(videos[:, 0].shape)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        if (strength is None or layered) and mask is None:
            raise ValueError(
                "give a mask (regenerate inside it; layered needs one) and/or a strength"
            )
        strength = 1.0 if strength is None else float(strength)
        if not 0.0 <= structure <= 1.0:
            raise ValueError(
                f"structure must be in [0, 1] (a share of the steps), got {structure:g}"
            )
        if structure > 0 and self.vae is not None:
            raise ValueError("structure guidance reads pixels; this model works on VAE latents")
        if layered:  # the same edit of the foreground on black, laid over the clean plate
            kw = dict(strength=strength, resample=resample, steps=steps, sampler=sampler, cfg=cfg,
                      noise_correlation=noise_correlation, frame_channels=frame_channels,
                      structure=structure, batch_size=batch_size, callback=callback)  # fmt: skip
            edit = lambda canvas: self.edit(canvas, prompts, seeds, mask=mask, **kw)
            return layered_edit(edit, videos, mask, (0.0, 0.0, 0.0))
        if self.baked_cfg is not None and cfg is not None and cfg != 1.0:
            raise ValueError(
                f"this distilled model has guidance w={self.baked_cfg:g} baked in; it takes no cfg"
            )
        dc = self.config.diffusion
        cfg, sampler = (dc.cfg if cfg is None else cfg), (sampler or dc.sampler)
        rho = dc.noise_correlation if noise_correlation is None else noise_correlation
        per_frame = mask is not None and bool((mask.all((2, 3)) | ~mask.any((2, 3))).all())
        frames = per_frame and frame_channels and self.config.model.frame_conditioning
        settings = (strength, resample, steps, sampler, cfg, rho, callback, frames, structure)
        out = []
        for a in range(0, len(videos), batch_size):
            sl = slice(a, a + batch_size)
            m = None if mask is None else mask[sl].to(self.device)
            out.append(
                self._edit_batch(videos[sl].to(self.device), prompts[sl], seeds[sl], m, *settings)
            )
        return torch.cat(out)

    def _edit_batch(
        self, video, prompts, seeds, mask, strength, resample, steps, sampler, cfg, rho, callback,
        frames, structure,
    ):  # fmt: skip
        noise = SeededNoise(seeds, device=self.device)
        eps = noise.video(self.sample_shape, rho)  # generate()'s draw: strength 1 equals generate
        x0 = self.to_model_space(video)
        x, sigmas = sdedit_start(x0, eps, self.sigmas(steps).to(self.device), strength)
        cond = self.encode_prompts(prompts)
        denoiser, cond = self.guided(cond, cfg, len(prompts))
        if frames:  # known frames on the frame-mask channels (MCVD), as generate() does
            denoiser = frame_conditioned(
                denoiser, *self._known_in_model_space(video, ~mask[:, :, 0, 0])
            )
        elif mask is not None:
            denoiser = masked_denoiser(denoiser, x0, self._mask_in_model_space(mask), eps)
        if structure > 0:  # the first ceil(structure k) of the k steps run keep the input's value
            first = strength_steps(structure, len(sigmas) - 1)
            denoiser = structure_denoiser(denoiser, x0, float(sigmas[first - 1]))
        x0 = sample_resampled(denoiser, x, sigmas, sampler, resample, cond, callback, noise)
        result = self.from_model_space(x0)
        if mask is not None:  # the input's own values outside (a VAE round trip is not exact)
            result = torch.where(mask[:, None], result, video)
        return result

    def _mask_in_model_space(self, mask: torch.Tensor) -> torch.Tensor:
        """A pixel mask ``(B, T, H, W)`` as a ``(B, 1, T', h, w)`` mask of the model's space: a latent
        cell is regenerated when any pixel of any frame it holds is (see :meth:`_known_in_model_space`)."""
        m = mask[:, None]
        if self.vae is None:
            return m
        tc, s = self.vae.temporal_compression, self.vae.spatial_compression
        m = self.vae.pad_frames(m.float()) > 0.5  # (B, 1, 1 + tc k, H, W)
        b, _, t, h, w = m.shape
        m = torch.cat([m[:, :, :1], m[:, :, 1:].reshape(b, 1, -1, tc, h, w).any(3)], dim=2)
        return m.reshape(b, 1, m.shape[2], h // s, s, w // s, s).any(6).any(4)
