"""Pure samplers over a denoiser ``D(x, sigma, **cond) -> x0_hat`` and a descending sigma schedule.

Every sampler has the signature ``sample_x(denoiser, x, sigmas, extra_args=None, callback=None,
noise=None, **options)`` (k-diffusion ``sampling.py`` style): ``x`` is the initial noise already
multiplied by ``sigmas[0]``, ``sigmas`` ends in 0 (see :mod:`vidiff.diffusion.schedules`),
``extra_args`` is the ``cond`` dict passed to the denoiser, ``noise(x)`` returns fresh unit noise like
``x`` for stochastic steps (default ``torch.randn_like``; use :class:`vidiff.sampling.noise.SeededNoise`
for batch-independent results), ``callback({"i", "x", "sigma", "denoised"})`` is called once per step.

The state ``x`` is kept in float32 (float64 if given float64); step coefficients are computed from the
sigmas in float64 (python floats). Everything is in VE form (``x = x0 + sigma eps``), so the same code
serves eps / v / EDM / flow models: e.g. :func:`sample_euler` on a :class:`FlowPrecond` is exactly the
rectified-flow Euler sampler, and :func:`sample_ddim` is DDIM on a VP model.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import torch

from vidiff.config import check_fields
from vidiff.diffusion.precond import Denoiser, append_dims


def _prepare(
    x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None, noise: Callable | None
):
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(
            f"sigmas must be a 1-d tensor of at least 2 noise levels, got shape {tuple(sigmas.shape)}"
        )
    if (sigmas[1:] >= sigmas[:-1]).any() or (sigmas < 0).any():
        raise ValueError(
            f"sigmas must be non-negative and strictly decreasing, got {sigmas.tolist()}"
        )
    x = x.float() if x.dtype != torch.float64 else x
    return x, sigmas.tolist(), extra_args or {}, noise or torch.randn_like


def _call(denoiser: Denoiser, x: torch.Tensor, sigma: float, extra_args: dict) -> torch.Tensor:
    # sigma as a (B,) float32 tensor, as the denoiser interface wants.
    return denoiser(x, x.new_full((x.shape[0],), sigma, dtype=torch.float32), **extra_args).to(
        x.dtype
    )


def get_ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step ``sigma -> sigma_next`` into a deterministic part to ``sigma_down`` and fresh noise
    ``sigma_up`` with ``sigma_down^2 + sigma_up^2 = sigma_next^2``.

    ``sigma_up = eta * sigma_next * sqrt(sigma^2 - sigma_next^2) / sigma`` is DDIM's
    ``sigma_t(eta)`` (Song et al. 2021, eq. 16) rewritten in VE sigma; eta = 1 is the DDPM posterior.
    """
    if eta == 0 or sigma_next == 0:
        return sigma_next, 0.0
    sigma_up = min(
        sigma_next, eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2), 0.0) / sigma**2)
    )
    return math.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def _per_sample(value: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A step coefficient computed in float64: a python float for one noise level shared by the
    batch, else ``(B,)`` values cast to ``like``'s dtype and broadcastable against it."""
    if not isinstance(value, torch.Tensor) or value.ndim == 0:
        return float(value)
    return append_dims(value.to(like.dtype).to(like.device), like.ndim)


def _ratio(sigma_next: float | torch.Tensor, sigma: float | torch.Tensor) -> float | torch.Tensor:
    """``sigma_next / sigma`` in float64: a python float, or ``(B,)`` if either level is per sample."""
    if any(isinstance(s, torch.Tensor) and s.ndim > 0 for s in (sigma, sigma_next)):
        f64 = torch.float64
        return torch.as_tensor(sigma_next, dtype=f64) / torch.as_tensor(sigma, dtype=f64)
    return float(sigma_next) / float(sigma)


def ddim_to(
    x: torch.Tensor,
    denoised: torch.Tensor,
    sigma: float | torch.Tensor,
    sigma_next: float | torch.Tensor,
) -> torch.Tensor:
    """The deterministic DDIM move (Song et al. 2021, eq. 12, eta = 0) in VE form:
    ``x_next = x0_hat + (sigma_next / sigma)(x - x0_hat)``, i.e. keep the predicted noise
    ``(x - x0_hat) / sigma`` and rescale it. The noise levels are floats or per-sample ``(B,)``
    tensors (progressive distillation steps every sample from its own level); the ratio is taken
    in float64. Every DDIM-family step in vidiff (the samplers below, distillation targets) is this.
    """
    return denoised + _per_sample(_ratio(sigma_next, sigma), x) * (x - denoised)


def ddim_x0_target(
    x: torch.Tensor,
    sigma: float | torch.Tensor,
    x_next: torch.Tensor,
    sigma_next: float | torch.Tensor,
) -> torch.Tensor:
    """The x0 for which :func:`ddim_to` ``sigma -> sigma_next`` from ``x`` lands on ``x_next``: the
    progressive-distillation target (Salimans & Ho 2022, Alg. 2) in VE form.

    Solving ``x_next = x0 + r (x - x0)`` gives ``x0 = (x_next - r x) / (1 - r)``, r = sigma_next/sigma;
    floats or per-sample ``(B,)`` noise levels, as in :func:`ddim_to`.
    """
    r = _ratio(sigma_next, sigma)
    r_all = torch.as_tensor(r)
    if ((r_all < 0) | (r_all >= 1)).any():
        raise ValueError(f"need sigma > sigma_next >= 0, got {sigma} -> {sigma_next}")
    return (x_next - _per_sample(r, x) * x) * _per_sample(1 / (1 - r), x)


def ddim_step(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigma: float,
    sigma_next: float,
    eta: float = 0.0,
    noise: Callable | None = None,
    **cond,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step (Song et al. 2021, eq. 12) in VE form; returns ``(x_next, denoised)``.

    ``x_next = x0_hat + sigma_down * eps_hat + sigma_up * z`` with ``eps_hat = (x - x0_hat) / sigma``
    and the split of :func:`get_ancestral_step`. Deterministic at ``eta = 0``.
    """
    sigma, sigma_next = float(sigma), float(sigma_next)
    denoised = _call(denoiser, x, sigma, cond)
    return _ancestral_update(
        x, denoised, sigma, sigma_next, eta, noise or torch.randn_like
    ), denoised


def _ancestral_update(x, denoised, sigma, sigma_next, eta, noise):
    """A DDIM move to ``sigma_down``, then fresh noise of std ``sigma_up``."""
    sigma_down, sigma_up = get_ancestral_step(sigma, sigma_next, eta)
    x = ddim_to(x, denoised, sigma, sigma_down)
    if sigma_up > 0:
        x = x + sigma_up * noise(x).to(x.dtype)
    return x


def _cb(callback, i, x, sigma, denoised):
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})


@torch.no_grad()
def sample_ancestral(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: dict | None = None,
    callback: Callable | None = None,
    noise: Callable | None = None,
    eta: float = 1.0,
) -> torch.Tensor:
    """Ancestral sampling, the one loop behind ``euler``, ``ddim``, ``ddpm`` and ``euler_ancestral``:
    each step moves deterministically to ``sigma_down`` (:func:`ddim_to`, DDIM's eq. 12 = an Euler
    step on the probability-flow ODE ``dx/dsigma = (x - D) / sigma``) and adds fresh noise
    ``sigma_up`` (:func:`get_ancestral_step`).

    - ``eta = 0``: DDIM (Song et al. 2021), deterministic; this is also the Euler method (Karras et
      al. 2022, Alg. 1 without Heun's correction) and, on a flow model, the rectified-flow Euler
      sampler ``x_t += (t_next - t) u``. On VP schedules (:func:`~vidiff.diffusion.schedules.get_sigmas_vp`)
      it matches diffusers' ``DDIMScheduler`` (``set_alpha_to_one=True``, ``clip_sample=False``).
    - ``eta = 1``: DDPM ancestral sampling (Ho et al. 2020, Alg. 2) with the posterior
      ``q(x_next | x, x0_hat)``: in VE form ``mean = x0_hat + (s'^2 / s^2)(x - x0_hat)``,
      ``var = s'^2 (s^2 - s'^2) / s^2`` (diffusers' ``DDPMScheduler``, ``variance_type="fixed_small"``).
      k-diffusion's ``sample_euler_ancestral`` is the same loop at any ``eta``.
    """
    x, sig, extra, noise = _prepare(x, sigmas, extra_args, noise)
    for i in range(len(sig) - 1):
        denoised = _call(denoiser, x, sig[i], extra)
        _cb(callback, i, x, sig[i], denoised)
        x = _ancestral_update(x, denoised, sig[i], sig[i + 1], eta, noise)
    return x


def _setting(name: str, eta: float, doc: str) -> Callable[..., torch.Tensor]:
    """A named sampler that is :func:`sample_ancestral` with ``eta`` preset (still an option)."""
    fn = functools.partial(sample_ancestral, eta=eta)
    fn.__name__ = fn.__qualname__ = f"sample_{name}"
    fn.__doc__ = f"{doc} :func:`sample_ancestral` at ``eta = {eta:g}``."
    return fn


sample_euler = _setting("euler", 0.0, "Euler method on the probability-flow ODE:")
sample_ddim = _setting("ddim", 0.0, "DDIM (Song et al. 2021):")
sample_ddpm = _setting("ddpm", 1.0, "DDPM ancestral sampling (Ho et al. 2020):")
sample_euler_ancestral = _setting("euler_ancestral", 1.0, "Ancestral Euler (k-diffusion):")


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: dict | None = None,
    callback: Callable | None = None,
    noise: Callable | None = None,
) -> torch.Tensor:
    """Heun's 2nd-order method (Karras et al. 2022, EDM Alg. 1, deterministic, no churn).

    ``2n - 1`` denoiser calls: the last step (to sigma = 0) is a plain Euler step.
    """
    x, sig, extra, _ = _prepare(x, sigmas, extra_args, noise)
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = _call(denoiser, x, s, extra)
        _cb(callback, i, x, s, denoised)
        d = (x - denoised) / s
        x_euler = x + (s_next - s) * d
        if s_next == 0:
            x = x_euler
        else:
            d_next = (x_euler - _call(denoiser, x_euler, s_next, extra)) / s_next
            x = x + (s_next - s) * 0.5 * (d + d_next)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: dict | None = None,
    callback: Callable | None = None,
    noise: Callable | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Alg. 2), multistep 2nd order in
    ``lambda = -log sigma``. The first step and the last (to sigma = 0) are first order (= DDIM), as
    diffusers' ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
    final_sigmas_type="zero")`` does; that scheduler is matched to ~1e-6 in tests.
    """
    x, sig, extra, _ = _prepare(x, sigmas, extra_args, noise)
    old_denoised, h_last = None, None
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = _call(denoiser, x, s, extra)
        _cb(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised  # the exponential integrator's limit h -> inf
            break
        h = math.log(s / s_next)  # lambda_next - lambda
        if old_denoised is None:
            d = denoised
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (s_next / s) * x - math.expm1(-h) * d
        old_denoised, h_last = denoised, h
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "euler_ancestral": sample_euler_ancestral,
    "dpmpp_2m": sample_dpmpp_2m,
}


def sample(
    denoiser: Denoiser, noise_x: torch.Tensor, sigmas: torch.Tensor, sampler: str = "dpmpp_2m", **kw
) -> torch.Tensor:
    """Run ``SAMPLERS[sampler]``; ``noise_x`` is the initial state, unit noise times ``sigmas[0]``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    fn = SAMPLERS[sampler]
    check_fields(kw, list(inspect.signature(fn).parameters)[3:], f"sampler {sampler!r}", "option")
    return fn(denoiser, noise_x, sigmas, **kw)
