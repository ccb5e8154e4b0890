"""The common part of the distillation objectives: a frozen teacher, a trainable student, the
per-sample seeded draws and the loss weighting.

An objective is an ``nn.Module`` with ``training_loss(video, captions, seeds) -> (B,)``, so the ordinary
trainer (:func:`vidiff.train.loop.train`) runs it with its checkpoints, exact resume, EMA and logging.
Only the student is a registered submodule (state-dict keys ``student.*``): the teacher is neither
trained nor checkpointed (it is rebuilt from its folder), and the EMA copy shares it instead of copying.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vidiff.diffusion import frame_conditioned
from vidiff.diffusion.losses import masked_mse
from vidiff.diffusion.precond import Denoiser
from vidiff.nn.conditioning import GUIDANCE, loss_mask
from vidiff.pipeline import VideoPipeline

WEIGHTINGS = ("truncated_snr", "snr_plus_one")


class _Frozen:
    """Holds the teacher outside the module tree; ``copy.deepcopy`` (the EMA) shares it."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __deepcopy__(self, memo) -> _Frozen:
        return self


def loss_weight(sigma: torch.Tensor, weighting: str) -> torch.Tensor:
    """Weight of the x0-space squared error at VE noise level ``sigma`` (SNR = 1 / sigma^2), Salimans
    & Ho (2022) sec. 4: ``truncated_snr`` = max(SNR, 1) (x0-MSE at high noise, eps-MSE at low noise);
    ``snr_plus_one`` = SNR + 1 (exactly the v-MSE of a v-prediction model). Float64 in, float32 out."""
    snr = sigma.double().clamp(min=1e-20) ** -2
    if weighting == "truncated_snr":
        return snr.clamp(min=1.0).float()
    if weighting == "snr_plus_one":
        return (snr + 1).float()
    raise ValueError(
        f"unknown distillation weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}"
    )


class Draws(NamedTuple):
    """A batch's first draws (:meth:`Distillation.setup`), which condition teacher and student
    alike: the clips in model space, one generator per sample, the prompts after caption dropout and
    the known-frame mask (None without frame conditioning)."""

    x0: torch.Tensor
    generators: list[torch.Generator]
    prompts: list[str]
    mask: torch.Tensor | None


class Distillation(nn.Module):
    """Base class: ``student`` (trained) learns from ``teacher`` (frozen, a :class:`VideoPipeline`).

    ``guidance`` is the teacher's classifier-free-guidance weight ``w``: a float (fixed: ``1.0`` is the
    conditional teacher, anything else is "baked" into the student), or a ``(w_min, w_max)`` pair from
    which each sample draws ``w`` uniformly; the student then must be guidance-embedded and gets the
    same ``w`` as its ``guidance`` input (Meng et al. 2023).
    """

    def __init__(
        self,
        teacher: VideoPipeline,
        student: VideoPipeline,
        *,
        guidance: float | tuple[float, float] = 1.0,
        weighting: str = "truncated_snr",
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"unknown distillation weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}"
            )
        tc, sc = teacher.config, student.config
        if tc.video != sc.video:
            raise ValueError(f"teacher makes {tc.video} but the student {sc.video}")
        if tc.diffusion.parameterization != sc.diffusion.parameterization:
            raise ValueError(
                f"teacher is {tc.diffusion.parameterization!r} but the student "
                f"{sc.diffusion.parameterization!r}: a student starts as a copy of its teacher"
            )
        if tc.model.frame_conditioning != sc.model.frame_conditioning:
            raise ValueError("teacher and student must agree on model.frame_conditioning")
        if isinstance(guidance, (tuple, list)):
            lo, hi = (float(g) for g in guidance)
            if not 0 <= lo <= hi:
                raise ValueError(f"guidance range must satisfy 0 <= w_min <= w_max, got {guidance}")
            if not student.guidance_embedded:
                raise ValueError(
                    "a guidance range needs a guidance-embedded student (model.net.guidance_embed)"
                )
            guidance = (lo, hi)
        elif guidance != 1.0 and teacher.text_encoder is None:
            raise ValueError("guidance needs a text-conditional teacher; this one is unconditional")
        self.student = student
        self._teacher = _Frozen(teacher.eval().requires_grad_(False))
        self.guidance = guidance
        self.weighting = weighting

    @property
    def teacher(self) -> VideoPipeline:
        """The frozen teacher, on the student's device (moved there on first use)."""
        teacher = self._teacher.module
        if teacher.device != self.student.device:
            teacher.to(self.student.device)
        return teacher

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        return loss_weight(sigma, self.weighting)

    # ---------------------------------------------------------------------------------------------

    def setup(self, video: torch.Tensor, captions: list[str], seeds: list[int]) -> Draws:
        """Model-space clips, one generator per sample, and the first draws (caption dropout, frame
        mask) exactly as :meth:`VideoPipeline.training_loss` makes them."""
        if len(seeds) != video.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for a batch of {video.shape[0]} clips")
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        x0 = self.student.to_model_space(video.float())
        prompts, mask = self.student.draw_conditioning(captions, generators, x0.shape[2])
        return Draws(x0, generators, prompts, mask)

    def draw_guidance(self, generators: list[torch.Generator]) -> torch.Tensor | None:
        """Per-sample ``w ~ U[w_min, w_max]`` (None for a fixed guidance weight)."""
        if not isinstance(self.guidance, tuple):
            return None
        lo, hi = self.guidance
        u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators])
        return (lo + (hi - lo) * u).float()

    def teacher_denoiser(self, draws: Draws, w: torch.Tensor | None) -> tuple[Denoiser, dict]:
        """The teacher as one denoiser (guided at ``w``, or at the fixed weight) and its cond; known
        frames are imposed exactly as at sampling time (:func:`frame_conditioned`)."""
        x0, _, prompts, mask = draws
        teacher = self.teacher
        cond = teacher.encode_prompts(prompts)
        weight = self.guidance if w is None else w.to(x0.device)
        denoiser, cond = teacher.guided(cond, weight, x0.shape[0])
        if mask is not None:
            denoiser = frame_conditioned(denoiser, x0, mask.to(x0.device))
        return denoiser, cond

    def student_cond(self, draws: Draws, w: torch.Tensor | None) -> dict:
        """The student's raw cond (no guidance wrapper: it learns the guided output itself)."""
        x0, _, prompts, mask = draws
        cond = self.student.conditioning(x0, prompts, mask)
        if self.student.guidance_embedded:
            weight = self.guidance if w is None else w
            weight = torch.as_tensor(weight, dtype=torch.float32).to(x0.device)
            cond[GUIDANCE] = weight.expand(x0.shape[0])
        return cond

    def student_loss(
        self,
        draws: Draws,
        w: torch.Tensor | None,
        z: torch.Tensor,
        sigma: torch.Tensor,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """Per-sample loss ``(B,)`` of the student at the noisy clips ``z`` (noise levels ``sigma``,
        ``(B,)`` float64) against the teacher's x0 ``target``: the squared error over the frames it
        must make (:func:`~vidiff.nn.conditioning.loss_mask`), weighted by :meth:`weight`."""
        cond = self.student_cond(draws, w)
        device = draws.x0.device
        pred = self.student.denoiser(z, sigma.float().to(device), **cond)
        mask = loss_mask(self.student.conditions, cond)
        return self.weight(sigma).to(device) * masked_mse(pred, target, mask)

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        raise NotImplementedError


def randn_like_seeded(x0: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Unit noise shaped like ``x0``, sample ``i`` from ``generators[i]`` (drawn on the CPU)."""
    return torch.cat(
        [torch.randn((1, *x0.shape[1:]), generator=g, dtype=torch.float32) for g in generators]
    ).to(x0.device)
