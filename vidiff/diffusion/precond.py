"""Preconditioning: turn a raw network into a denoiser ``D(x, sigma, **cond) -> x0_hat``.

Karras et al. (2022, "Elucidating the design space", EDM) write every parameterisation as

    D(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma))

with ``x = x0 + sigma * eps`` (VE sigma, docs/architecture.md). The network ``F`` never knows which
parameterisation it serves; the wrapper owns ``c_*`` and the fp32 boundary: inputs are cast to the
net's dtype (bf16 on GPU), its output back to float32. ``c_noise`` is on a 0..1000-ish scale for all
four, so one sinusoidal timestep embedding serves every parameterisation (``s`` = sigma):

* ``eps`` (DDPM, Ho et al. 2020): net predicts eps; ``c_in = 1/sqrt(1+s^2)``, ``c_skip = 1``,
  ``c_out = -s``, ``c_noise`` = the VP schedule's continuous timestep index ``t(s)``.
* ``v`` (Salimans & Ho 2022): net predicts ``v = alpha eps - sigma_vp x0``; ``c_in = 1/sqrt(1+s^2)``,
  ``c_skip = 1/(1+s^2)``, ``c_out = -s/sqrt(1+s^2)``, ``c_noise = t(s)``.
* ``edm`` (Karras et al. 2022, Table 1): net predicts F; ``c_in = 1/sqrt(s^2+sd^2)``,
  ``c_skip = sd^2/(s^2+sd^2)``, ``c_out = s sd/sqrt(s^2+sd^2)``, ``c_noise = 125 ln(s) + 500``.
* ``flow`` (rectified flow, Liu et al. 2022; SD3): net predicts the velocity ``eps - x0`` of
  ``x_t = (1-t) x0 + t eps``, ``t = s/(1+s)``; ``c_in = c_skip = 1/(1+s)``, ``c_out = -s/(1+s)``,
  ``c_noise = 1000 t``.

(``sd`` = sigma_data.) EDM's own ``c_noise = ln(s)/4`` is mapped affinely to
``125 ln s + 500`` so that ``s in [e^-4, e^4]`` (0.018..55) covers 0..1000 with EDM's uniform
resolution in log-sigma.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vidiff.config import check_fields
from vidiff.diffusion.schedules import VPSchedule, get_sigmas_flow, get_sigmas_karras, get_sigmas_vp

Denoiser = Callable[..., torch.Tensor]


def net_dtype(net: nn.Module) -> torch.dtype:
    """The floating dtype of the first floating parameter (float32 for a parameter-free net)."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def expand_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Sigma as a float32 ``(B,)`` tensor on ``x``'s device; a python float or 0-d tensor is broadcast."""
    sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32)
    if sigma.ndim == 0:
        return sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise ValueError(
            f"sigma must be a scalar or of shape (B,) = ({x.shape[0]},), got {tuple(sigma.shape)}"
        )
    return sigma


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(B,) -> (B, 1, ..., 1)`` with ``ndim`` dims in total, for broadcasting over a video batch."""
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


class Precond(nn.Module):
    """Base class: subclasses define :meth:`scalings` (``c_skip, c_out, c_in``) and :meth:`c_noise`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def c_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def default_sigmas(self, n: int, **kw) -> torch.Tensor:
        """A sensible sampling schedule of ``n`` steps for this parameterisation."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        x = x.float()
        sigma = expand_sigma(sigma, x)
        c_skip, c_out, c_in = (append_dims(c, x.ndim) for c in self.scalings(sigma))
        dtype = net_dtype(self.net)
        f = self.net((c_in * x).to(dtype), self.c_noise(sigma).float(), **cond)
        if f.shape != x.shape:
            raise ValueError(
                f"network output shape {tuple(f.shape)} != input shape {tuple(x.shape)}"
            )
        return c_skip * x + c_out * f.float()


class EpsPrecond(Precond):
    """eps-prediction on a discrete VP schedule (DDPM, Ho et al. 2020; k-diffusion ``DiscreteEpsDDPMDenoiser``).

    ``D = x - sigma * eps_hat(x / sqrt(1 + sigma^2), t(sigma))``.
    """

    def __init__(self, net: nn.Module, schedule: VPSchedule) -> None:
        super().__init__(net)
        self.schedule = schedule
        self.sigma_min, self.sigma_max = schedule.sigma_min, schedule.sigma_max

    def scalings(self, sigma):
        return torch.ones_like(sigma), -sigma, (sigma**2 + 1).rsqrt()

    def c_noise(self, sigma):
        return self.schedule.sigma_to_t(sigma)

    def default_sigmas(self, n: int, spacing: str = "trailing", **kw) -> torch.Tensor:
        return get_sigmas_vp(self.schedule, n, spacing, **kw)


class VPrecond(EpsPrecond):
    """v-prediction (Salimans & Ho 2022, Imagen Video): ``v = alpha eps - sigma_vp x0``, so
    ``x0 = alpha x_vp - sigma_vp v`` with ``alpha = 1/sqrt(1+s^2)``, ``sigma_vp = s/sqrt(1+s^2)``,
    ``x_vp = x/sqrt(1+s^2)``: ``c_skip = 1/(1+s^2)``, ``c_out = -s/sqrt(1+s^2)`` (EDM with sigma_data = 1).
    """

    def scalings(self, sigma):
        c_in = (sigma**2 + 1).rsqrt()
        return c_in**2, -sigma * c_in, c_in


class EDMPrecond(Precond):
    """Karras et al. (2022) EDM preconditioning (Table 1), ``c_noise = 125 ln(sigma) + 500`` (see module doc)."""

    def __init__(
        self,
        net: nn.Module,
        sigma_data: float = 0.5,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
    ) -> None:
        super().__init__(net)
        if sigma_data <= 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.sigma_data, self.sigma_min, self.sigma_max = sigma_data, sigma_min, sigma_max

    def scalings(self, sigma):
        sd2 = self.sigma_data**2
        c_in = (sigma**2 + sd2).rsqrt()
        return sd2 / (sigma**2 + sd2), sigma * self.sigma_data * c_in, c_in

    def c_noise(self, sigma):
        # EDM's ln(sigma)/4, affinely mapped to the shared 0..1000 scale; clamp keeps sigma = 0 finite.
        return 125.0 * sigma.clamp(min=1e-20).log() + 500.0

    def default_sigmas(self, n: int, rho: float = 7.0) -> torch.Tensor:
        return get_sigmas_karras(n, self.sigma_min, self.sigma_max, rho)


class FlowPrecond(Precond):
    """Rectified flow / flow matching (Liu et al. 2022; Lipman et al. 2022; SD3): the net sees
    ``x_t = (1 - t) x0 + t eps = x / (1 + sigma)`` with ``t = sigma / (1 + sigma)`` and predicts the
    velocity ``u = eps - x0``; ``x0 = x_t - t u``. ``c_noise = 1000 t``.
    """

    def __init__(self, net: nn.Module, shift: float = 1.0) -> None:
        super().__init__(net)
        self.shift = shift  # default sampling shift only; training density is the loss's business

    def scalings(self, sigma):
        c_in = 1 / (1 + sigma)
        return c_in, -sigma * c_in, c_in

    def c_noise(self, sigma):
        return 1000.0 * sigma / (1 + sigma)

    def default_sigmas(self, n: int, shift: float | None = None) -> torch.Tensor:
        return get_sigmas_flow(n, self.shift if shift is None else shift)


PARAMETERIZATIONS = ("eps", "v", "edm", "flow")


def check_parameterization(parameterization: str, kw: dict, options: dict, what: str) -> None:
    """A ValueError unless ``parameterization`` is known and ``kw`` holds only its ``options``."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"unknown parameterization {parameterization!r}; valid: {', '.join(PARAMETERIZATIONS)}"
        )
    check_fields(kw, options[parameterization], f"{parameterization!r} {what}", "option")


def pop_vp_schedule(kw: dict) -> VPSchedule:
    """Take ``schedule`` (a :class:`VPSchedule`, or a kind name, default ``"cosine"``, with
    ``num_train_timesteps``) out of the options ``kw``."""
    schedule = kw.pop("schedule", "cosine")
    if isinstance(schedule, str):
        return VPSchedule(schedule, kw.pop("num_train_timesteps", 1000))
    if "num_train_timesteps" in kw:
        raise ValueError("num_train_timesteps only applies when schedule is given by name")
    return schedule


_OPTIONS = {
    "eps": ["schedule", "num_train_timesteps"],
    "v": ["schedule", "num_train_timesteps"],
    "edm": ["sigma_data", "sigma_min", "sigma_max"],
    "flow": ["shift"],
}


def build_precond(parameterization: str, net: nn.Module, **kw) -> Precond:
    """``eps`` / ``v``: ``schedule=VPSchedule | "cosine" | "linear" | "scaled_linear"``,
    ``num_train_timesteps``; ``edm``: ``sigma_data, sigma_min, sigma_max``; ``flow``: ``shift``.
    """
    check_parameterization(parameterization, kw, _OPTIONS, "preconditioning")
    if parameterization in ("eps", "v"):
        return (EpsPrecond if parameterization == "eps" else VPrecond)(net, pop_vp_schedule(kw))
    if parameterization == "edm":
        return EDMPrecond(net, **kw)
    return FlowPrecond(net, **kw)


__all__ = [
    "PARAMETERIZATIONS",
    "Denoiser",
    "EDMPrecond",
    "EpsPrecond",
    "FlowPrecond",
    "Precond",
    "VPrecond",
    "append_dims",
    "build_precond",
    "check_parameterization",
    "expand_sigma",
    "net_dtype",
    "pop_vp_schedule",
]
