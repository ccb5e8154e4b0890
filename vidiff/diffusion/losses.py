"""Training losses: small callables ``loss(denoiser, x0, generator=None, **cond) -> (B,)``.

Each loss owns its noise-level density and weighting (NVlabs/edm ``training/loss.py`` style) and works
through the common denoiser ``D`` (x0-space): it draws ``sigma`` and ``eps``, forms
``x = x0 + sigma * eps`` and returns ``w(sigma) * mean((D(x, sigma) - x0)^2)`` per sample, where
``w`` makes this *equal* to the parameterisation's native objective (derivations next to each
weight; ``tests/test_precond_losses.py`` checks them numerically). The trainer reduces with ``.mean()``.

All randomness (sigma, then eps, in that order) comes from the optional ``torch.Generator`` so training
is reproducible. ``loss.at(denoiser, x0, sigma, noise, **cond)`` is the deterministic part.

With a known-frame mask in ``cond`` (the spec flagged ``loss_mask``: ``frame_mask`` (B, T) of MCVD-style
frame conditioning), the mean runs over the unknown frames only: known frames are given to the net clean, predicting them teaches nothing. A sample whose
frames are all known falls back to the mean over all frames.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vidiff.diffusion.precond import Denoiser, check_parameterization, pop_vp_schedule
from vidiff.diffusion.schedules import FLOW_T_MAX, VPSchedule, shift_t
from vidiff.nn.conditioning import conditions_of, loss_mask

# What D should output instead of x0: ``reference(x, sigma, x0, cond) -> (B, ...)``.
Reference = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, dict], torch.Tensor]


def _randn(shape, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Draw on the generator's device (CPU generators stay valid for CUDA training), then move.
    device = generator.device if generator is not None else x0.device
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(x0.device)


def _rand(shape, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x0.device
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64).to(x0.device)


def masked_mse(
    d: torch.Tensor, x0: torch.Tensor, frame_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample mean squared error of ``(B, C, T, H, W)`` tensors, over unknown frames if masked."""
    err = (d - x0).float() ** 2
    if frame_mask is None:
        return err.flatten(1).mean(1)
    if x0.ndim != 5 or frame_mask.shape != (x0.shape[0], x0.shape[2]):
        raise ValueError(
            f"frame_mask must be (B, T) for a (B, C, T, H, W) batch {tuple(x0.shape)}, "
            f"got {tuple(frame_mask.shape)}"
        )
    keep = ~frame_mask.bool()
    # a sample with every frame known falls back to all frames
    keep = torch.where(keep.any(1, keepdim=True), keep, torch.ones_like(keep))
    w = keep.to(err.dtype)[:, None, :, None, None].expand_as(err)
    return (err * w).flatten(1).sum(1) / w.flatten(1).sum(1)


class DiffusionLoss:
    """Shared ``__call__``: draw sigma then eps, then the deterministic :meth:`at`."""

    def sample_sigma(
        self, batch: int, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        raise NotImplementedError

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def at(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        sigma: torch.Tensor,
        noise: torch.Tensor,
        reference: Reference | None = None,
        **cond,
    ) -> torch.Tensor:
        """The loss at given noise levels and noise. ``reference(x, sigma, x0, cond)``, when given,
        returns what ``D`` should output in place of ``x0`` (e.g. a frozen model's output on some
        samples: self-distillation), under the same weighting."""
        x0 = x0.float()
        s = sigma.float().reshape(-1, *([1] * (x0.ndim - 1)))
        x = x0 + s * noise
        d = denoiser(x, sigma.float(), **cond)
        target = x0 if reference is None else reference(x, sigma.float(), x0, cond).float()
        return self.weight(sigma.double()).float() * masked_mse(
            d, target, loss_mask(conditions_of(denoiser), cond)
        )

    def __call__(
        self, denoiser: Denoiser, x0: torch.Tensor, generator: torch.Generator | None = None, **cond
    ) -> torch.Tensor:
        sigma = self.sample_sigma(x0.shape[0], x0, generator)
        noise = _randn(x0.shape, x0, generator)
        return self.at(denoiser, x0, sigma, noise, **cond)

    def seeded(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        generators: list[torch.Generator],
        reference: Reference | None = None,
        **cond,
    ) -> torch.Tensor:
        """Like ``__call__``, but sample ``i`` draws its noise level and noise from ``generators[i]``
        alone, so a sample's loss does not depend on the batch it is in: one process with a global
        batch of 8 and two processes with 4 each see identical draws (exact data-parallel and resume
        equivalence)."""
        if len(generators) != x0.shape[0]:
            raise ValueError(f"{len(generators)} generators for a batch of {x0.shape[0]}")
        # Draw on the CPU (where the generators live) and move once per batch, not once per sample.
        cpu = x0.new_zeros(0, device="cpu")
        sigma = torch.cat([self.sample_sigma(1, cpu, g) for g in generators]).to(x0.device)
        noise = torch.cat([_randn((1, *x0.shape[1:]), cpu, g) for g in generators]).to(x0.device)
        return self.at(denoiser, x0, sigma, noise, reference, **cond)


class VPLoss(DiffusionLoss):
    """DDPM training (Ho et al. 2020): t uniform over the discrete schedule, native eps- or v-MSE.

    With ``D = x - sigma eps_hat``: ``eps_hat - eps = (x0 - D) / sigma``, so
    ``|eps_hat - eps|^2 = SNR |D - x0|^2`` with ``SNR = 1 / sigma^2``.
    With ``x0_hat = x/(1+s^2) - s/sqrt(1+s^2) v_hat`` (v-prediction, Salimans & Ho 2022):
    ``|v_hat - v|^2 = (1 + s^2)/s^2 |D - x0|^2 = (SNR + 1) |D - x0|^2``.
    Min-SNR-gamma (Hang et al. 2023) weights the x0-space error by ``min(SNR, gamma)`` whatever the
    target (i.e. ``min(SNR, g)/SNR`` on eps-MSE, ``min(SNR, g)/(SNR + 1)`` on v-MSE).
    ``shift`` > 1 draws the training timestep as ``shift_t(u, shift)``, ``u ~ U[0, 1)`` (the SD3 shift on
    the VP time axis): more training at high noise, where a sample's layout is decided.
    """

    def __init__(
        self,
        schedule: VPSchedule | str = "cosine",
        prediction: str = "eps",
        min_snr_gamma: float | None = None,
        shift: float = 1.0,
    ) -> None:
        if prediction not in ("eps", "v"):
            raise ValueError(f"VPLoss prediction must be 'eps' or 'v', got {prediction!r}")
        if min_snr_gamma is not None and min_snr_gamma <= 0:
            raise ValueError(f"min_snr_gamma must be > 0, got {min_snr_gamma}")
        self.schedule = VPSchedule(schedule) if isinstance(schedule, str) else schedule
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")
        self.prediction, self.min_snr_gamma, self.shift = prediction, min_snr_gamma, shift

    def sample_sigma(self, batch, x0, generator):
        n = self.schedule.num_train_timesteps
        u = _rand((batch,), x0, generator)
        if self.shift != 1.0:
            u = shift_t(u, self.shift)
        t = (u * n).long().clamp(max=n - 1)  # integer t, uniform when shift == 1
        return self.schedule.sigmas.to(x0.device)[t]

    def weight(self, sigma):
        snr = sigma**-2
        if self.min_snr_gamma is not None:
            return snr.clamp(max=self.min_snr_gamma)
        return snr if self.prediction == "eps" else snr + 1


class EDMLoss(DiffusionLoss):
    """Karras et al. (2022) EDM loss: ``ln sigma ~ N(P_mean, P_std^2)``,
    ``lambda = (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2`` -- i.e. unit-weight MSE on the F target.
    """

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5) -> None:
        self.P_mean, self.P_std, self.sigma_data = P_mean, P_std, sigma_data

    def sample_sigma(self, batch, x0, generator):
        return (_randn((batch,), x0, generator).double() * self.P_std + self.P_mean).exp()

    def weight(self, sigma):
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2


class FlowLoss(DiffusionLoss):
    """Rectified-flow / conditional flow matching loss (Liu et al. 2022; Lipman et al. 2022), with
    SD3's (Esser et al. 2024) logit-normal ``t = sigmoid(N(logit_mean, logit_std^2))``, then
    optionally shifted (``shift_t``; use :func:`~vidiff.diffusion.schedules.flow_shift` for resolution-
    and length-dependent shifts). ``sigma = t / (1 - t)``, ``t`` clamped to ``FLOW_T_MAX``.

    With ``x0_hat = x_t - t u_hat`` and ``u = eps - x0``: ``|u_hat - u|^2 = |D - x0|^2 / t^2``,
    ``t = sigma / (1 + sigma)``.
    """

    def __init__(self, logit_mean: float = 0.0, logit_std: float = 1.0, shift: float = 1.0) -> None:
        if logit_std <= 0 or shift <= 0:
            raise ValueError(f"logit_std and shift must be > 0, got {logit_std}, {shift}")
        self.logit_mean, self.logit_std, self.shift = logit_mean, logit_std, shift

    def sample_sigma(self, batch, x0, generator):
        t = torch.sigmoid(
            _randn((batch,), x0, generator).double() * self.logit_std + self.logit_mean
        )
        t = shift_t(t, self.shift).clamp(1e-6, FLOW_T_MAX)
        return t / (1 - t)

    def weight(self, sigma):
        return ((1 + sigma) / sigma) ** 2


_OPTIONS = {
    "eps": ["schedule", "num_train_timesteps", "min_snr_gamma", "shift"],
    "v": ["schedule", "num_train_timesteps", "min_snr_gamma", "shift"],
    "edm": ["P_mean", "P_std", "sigma_data"],
    "flow": ["logit_mean", "logit_std", "shift"],
}


def build_loss(parameterization: str, **kw) -> DiffusionLoss:
    """``eps``/``v`` -> :class:`VPLoss` (``schedule``, ``num_train_timesteps``, ``min_snr_gamma``);
    ``edm`` -> :class:`EDMLoss` (``P_mean``, ``P_std``, ``sigma_data``); ``flow`` -> :class:`FlowLoss`
    (``logit_mean``, ``logit_std``, ``shift``). Unknown options are a ValueError."""
    check_parameterization(parameterization, kw, _OPTIONS, "loss")
    if parameterization in ("eps", "v"):
        return VPLoss(pop_vp_schedule(kw), prediction=parameterization, **kw)
    if parameterization == "edm":
        return EDMLoss(**kw)
    return FlowLoss(**kw)
