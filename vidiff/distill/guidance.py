"""Guidance distillation (Meng et al. 2023, "On Distillation of Guided Diffusion Models", stage 1;
the first stage of Imagen Video's distillation).

A student with a guidance-weight input (``model.net.guidance_embed``, zero-initialised so that it
starts as the teacher's conditional model) learns to match the classifier-free-guided teacher
``D_u + w (D_c - D_u)`` in one forward pass, for ``w ~ U[w_min, w_max]`` and noise levels drawn from
the teacher's own training density (its loss's ``sample_sigma``: uniform discrete t for eps/v,
logit-normal for flow, log-normal for EDM), weighted like progressive distillation (truncated SNR).
Sampling it costs half of CFG per step; progressive distillation of it (stage 2) then cuts the steps.
Every draw of sample ``i`` (caption dropout, frame mask, sigma, w, noise) comes from ``seeds[i]``.
"""

from __future__ import annotations

import torch

from vidiff.distill.objective import Distillation, randn_like_seeded
from vidiff.pipeline import VideoPipeline


class GuidanceDistillation(Distillation):
    """Stage 1: ``student(z, sigma, guidance=w) ~= CFG_teacher(z, sigma, w)``.

    ``teacher`` is a text-conditional :class:`VideoPipeline` without a guidance input; ``student`` a
    guidance-embedded copy of it (see :func:`vidiff.distill.rounds.student_from_teacher`).
    """

    def __init__(
        self,
        teacher: VideoPipeline,
        student: VideoPipeline,
        guidance_range: tuple[float, float] = (1.0, 5.0),
        *,
        weighting: str = "truncated_snr",
    ) -> None:
        if teacher.guidance_embedded:
            raise ValueError("the teacher is already guidance-embedded: distil it progressively")
        if teacher.text_encoder is None:
            raise ValueError("guidance distillation needs a text-conditional teacher")
        super().__init__(teacher, student, guidance=tuple(guidance_range), weighting=weighting)

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        """Per-sample loss ``(B,)`` for clips ``(B, C, T, H, W)`` in ``[0, 1]``."""
        draws = self.setup(video, captions, seeds)
        x0, generators = draws.x0, draws.generators
        cpu = x0.new_zeros(0, device="cpu")
        sigma = torch.cat([self.student.loss_fn.sample_sigma(1, cpu, g) for g in generators])
        w = self.draw_guidance(generators)
        noise = randn_like_seeded(x0, generators)
        s = sigma.float().to(x0.device)
        z = x0 + s.view(-1, *([1] * (x0.ndim - 1))) * noise
        with torch.no_grad():
            denoiser, cond = self.teacher_denoiser(draws, w)
            target = denoiser(z, s, **cond)
        return self.student_loss(draws, w, z, sigma, target)
