"""Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
Diffusion Models", Alg. 2), for any vidiff model (any network that follows the denoiser contract).

One round halves the step count: the student (a copy of the teacher) learns to make in ONE
deterministic DDIM step what the teacher makes in TWO. For a clip ``x0`` and a student grid index
``i`` (the student grid is every other point of the teacher's N-step grid, see :func:`nested_grids`):

    z      = x0 + sigma_t eps                                  sigma_t   = teacher grid[2i]
    x_mid  = DDIM_teacher(z, sigma_t -> sigma_mid)             sigma_mid = teacher grid[2i + 1]
    x_s    = DDIM_teacher(x_mid, sigma_mid -> sigma_s)         sigma_s   = teacher grid[2i + 2]
    target = (x_s - (sigma_s / sigma_t) z) / (1 - sigma_s / sigma_t)

``target`` is the x0 for which one student DDIM step from ``z`` lands on ``x_s``
(:func:`vidiff.sampling.samplers.ddim_x0_target`), and the loss is
``w(sigma_t) |D_student(z, sigma_t) - target|^2`` with the truncated-SNR weight ``max(SNR, 1)``
(or ``SNR + 1``, the v-MSE), averaged over the unknown frames.

The teacher is guided (classifier-free guidance at a fixed weight, "baked" into the student; or a
per-sample weight for a guidance-embedded pair, Meng et al. 2023) and sees known frames exactly as
at sampling time, so the student keeps serving text-to-video, image-to-video, continuation and
interpolation. Every draw of sample ``i`` (caption dropout, frame mask, grid index, guidance weight,
noise -- in that order) comes from ``seeds[i]``, as in :meth:`VideoPipeline.training_loss`.
"""

from __future__ import annotations

import torch

from vidiff.distill.objective import Distillation, Draws, randn_like_seeded
from vidiff.pipeline import VideoPipeline
from vidiff.sampling.samplers import ddim_to, ddim_x0_target


def nested_grids(
    pipe: VideoPipeline, teacher_steps: int, rtol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's ``teacher_steps`` and the student's ``teacher_steps / 2`` sigma grids, both as
    ``pipe.sigmas(steps)`` defines them (so they are what sampling uses), checked to be nested: the
    student grid is every other point of the teacher's. Returns float64 ``(teacher, student)`` with
    the student's taken from the teacher's (bit-identical shared points).

    VP models with ``trailing`` spacing (vidiff's default) and flow models nest for any even step
    count; Karras (EDM) and ``leading`` VP spacings do not, which is a ValueError.
    """
    if teacher_steps < 2 or teacher_steps % 2:
        raise ValueError(f"the teacher's step count must be even and >= 2, got {teacher_steps}")
    teacher = pipe.sigmas(teacher_steps).double().cpu()
    student = pipe.sigmas(teacher_steps // 2).double().cpu()
    if student.shape != teacher[::2].shape or not torch.allclose(
        student, teacher[::2], rtol=rtol, atol=0
    ):
        dc = pipe.config.diffusion
        raise ValueError(
            f"the {teacher_steps // 2}-step sigma grid is not every other point of the "
            f"{teacher_steps}-step grid for parameterization={dc.parameterization!r} with "
            f"diffusion.sigmas={dc.sigmas}; progressive distillation needs nested grids (VP "
            "'trailing' spacing or flow do nest; Karras and 'leading' do not)"
        )
    return teacher, teacher[::2].clone()


class ProgressiveDistillation(Distillation):
    """One round of progressive distillation: ``teacher_steps`` DDIM steps -> ``teacher_steps / 2``.

    ``teacher`` and ``student`` are :class:`VideoPipeline` s (the student usually a copy of the
    teacher); see :class:`~vidiff.distill.objective.Distillation` for ``guidance`` and ``weighting``.
    """

    def __init__(
        self,
        teacher: VideoPipeline,
        student: VideoPipeline,
        teacher_steps: int,
        *,
        guidance: float | tuple[float, float] = 1.0,
        weighting: str = "truncated_snr",
    ) -> None:
        super().__init__(teacher, student, guidance=guidance, weighting=weighting)
        self.teacher_steps = int(teacher_steps)
        self.teacher_sigmas, self.student_sigmas = nested_grids(student, self.teacher_steps)
        t_grid, _ = nested_grids(teacher, self.teacher_steps)
        if not torch.equal(t_grid, self.teacher_sigmas):
            raise ValueError("teacher and student define different sigma grids")

    @property
    def student_steps(self) -> int:
        return self.teacher_steps // 2

    def sigmas_for(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sigma_t, sigma_mid, sigma_s)`` float64 (B,) for student grid indices ``index``."""
        g = self.teacher_sigmas
        return g[2 * index], g[2 * index + 1], g[2 * index + 2]

    @torch.no_grad()
    def target(
        self, z: torch.Tensor, index: torch.Tensor, draws: Draws, w: torch.Tensor | None
    ) -> torch.Tensor:
        """Two deterministic DDIM teacher steps from ``z`` and the x0 target of one student step."""
        s_t, s_mid, s_s = self.sigmas_for(index)
        denoiser, cond = self.teacher_denoiser(draws, w)
        dev = z.device
        d1 = denoiser(z, s_t.float().to(dev), **cond)
        x_mid = ddim_to(z, d1, s_t, s_mid)
        d2 = denoiser(x_mid, s_mid.float().to(dev), **cond)
        x_s = ddim_to(x_mid, d2, s_mid, s_s)
        return ddim_x0_target(z, s_t, x_s, s_s)

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        """Per-sample distillation loss ``(B,)`` for clips ``(B, C, T, H, W)`` in ``[0, 1]``."""
        draws = self.setup(video, captions, seeds)
        x0, generators = draws.x0, draws.generators
        n = self.student_steps
        index = torch.cat([torch.randint(0, n, (1,), generator=g) for g in generators])
        w = self.draw_guidance(generators)
        noise = randn_like_seeded(x0, generators)
        s_t = self.sigmas_for(index)[0]
        z = x0 + s_t.float().to(x0.device).view(-1, *([1] * (x0.ndim - 1))) * noise
        target = self.target(z, index, draws, w)
        return self.student_loss(draws, w, z, s_t, target)
