"""Noise schedules and discretisations, all in the variance-exploding sigma of ``x = x0 + sigma * eps``.

* :class:`VPSchedule` holds the discrete DDPM / iDDPM training schedule (Ho et al. 2020 linear betas;
  Nichol & Dhariwal 2021 cosine) and converts between VE sigma and its (continuous) timestep index.
  A VP state ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps`` is the VE state ``x = x_t / sqrt(abar)`` with
  ``sigma = sqrt((1 - abar) / abar)``.
* The ``get_sigmas_*`` functions are pure discretisations (k-diffusion ``get_sigmas_karras`` style):
  they return a **descending** float64 sigma tensor of length ``n + 1`` whose last entry is 0, so any
  schedule combines with any sampler in :mod:`vidiff.sampling.samplers`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch

from vidiff.config import check_fields

# Rectified flow has t = sigma / (1 + sigma), so t = 1 (pure noise) is sigma = inf. Flow schedules clamp
# t to FLOW_T_MAX, i.e. they start at sigma_max = t / (1 - t) = 9999: the initial state x / (1 + sigma)
# is then 0.9999 * noise + 0.0001 * x0, indistinguishable from pure noise, and all VE arithmetic stays
# finite (fp32 keeps the same *relative* precision at sigma = 1e4 as at sigma = 1).
FLOW_T_MAX = 1.0 - 1e-4


class VPSchedule:
    """A discrete variance-preserving schedule ``abar_0 > ... > abar_{N-1}`` (DDPM / iDDPM).

    kinds:
      * ``"cosine"``: Nichol & Dhariwal (2021), ``abar(t) = cos^2((t/N + s) / (1 + s) * pi/2)``, s = 0.008,
        betas clipped at 0.999 (diffusers ``squaredcos_cap_v2``).
      * ``"linear"``: Ho et al. (2020), betas ``linspace(1e-4, 0.02, N)`` (diffusers ``linear``).
      * ``"scaled_linear"``: latent-diffusion betas ``linspace(sqrt(8.5e-4), sqrt(0.012), N)^2``.

    The betas and their cumulative product are computed in float32 exactly as diffusers (and the
    original DDPM code) do, so a model trained with those tables sees identical noise levels here;
    they are then stored in float64.

    Attributes: ``alphas_cumprod`` (N,), ``sigmas`` (N,) ascending VE sigmas with ``sigmas[t]`` the noise
    level of integer timestep ``t``, ``log_sigmas``, ``sigma_min``, ``sigma_max``.
    """

    KINDS = ("cosine", "linear", "scaled_linear")

    def __init__(
        self,
        kind: str = "cosine",
        num_train_timesteps: int = 1000,
        beta_start: float | None = None,
        beta_end: float | None = None,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(
                f"unknown VP schedule kind {kind!r}; valid kinds: {', '.join(self.KINDS)}"
            )
        if num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
        n = int(num_train_timesteps)
        self.kind, self.num_train_timesteps = kind, n
        if kind == "cosine":
            if beta_start is not None or beta_end is not None:
                raise ValueError(
                    "beta_start/beta_end only apply to the linear VP schedules, not cosine"
                )

            def abar(t: float) -> float:
                return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = [min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)]
            betas = torch.tensor(betas, dtype=torch.float32)
        elif kind == "linear":
            b0, b1 = (
                (1e-4 if beta_start is None else beta_start),
                (0.02 if beta_end is None else beta_end),
            )
            betas = torch.linspace(b0, b1, n, dtype=torch.float32)
        else:
            b0 = 0.00085 if beta_start is None else beta_start
            b1 = 0.012 if beta_end is None else beta_end
            betas = torch.linspace(b0**0.5, b1**0.5, n, dtype=torch.float32) ** 2
        self.betas = betas.double()
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).double()
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()  # ascending in t
        self.log_sigmas = self.sigmas.log()
        self._cache: dict[torch.device, torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"VPSchedule(kind={self.kind!r}, num_train_timesteps={self.num_train_timesteps})"

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def _log_sigmas(self, device: torch.device) -> torch.Tensor:
        # float64 where the backend has it (MPS does not).
        if device not in self._cache:
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._cache[device] = self.log_sigmas.to(device=device, dtype=dtype)
        return self._cache[device]

    def sigma_to_t(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """Continuous timestep index of ``sigma`` by linear interpolation in log-sigma (k-diffusion).

        Integer timesteps map exactly to ``sigmas[t]``. Sigmas outside ``[sigma_min, sigma_max]`` clamp
        to ``t = 0`` / ``t = N - 1`` (a discrete-time model knows no other noise levels); ``sigma = 0``
        gives ``t = 0``. Returns float64 (float32 on MPS) on ``sigma``'s device.
        """
        sigma = torch.as_tensor(sigma)
        log_sigmas = self._log_sigmas(sigma.device)
        log_sigma = sigma.to(log_sigmas.dtype).clamp(min=1e-30).log()
        high = torch.searchsorted(log_sigmas, log_sigma.contiguous()).clamp(1, len(log_sigmas) - 1)
        low = high - 1
        w = (log_sigma - log_sigmas[low]) / (log_sigmas[high] - log_sigmas[low])
        return low.to(log_sigma.dtype) + w.clamp(0, 1)

    def t_to_sigma(self, t: torch.Tensor | float) -> torch.Tensor:
        """Inverse of :meth:`sigma_to_t`: log-sigma interpolation at a continuous timestep index."""
        t = torch.as_tensor(t)
        log_sigmas = self._log_sigmas(t.device)
        t = t.to(log_sigmas.dtype)
        if (t < 0).any() or (t > len(log_sigmas) - 1).any():
            raise ValueError(f"timesteps must lie in [0, {len(log_sigmas) - 1}], got {t}")
        low = t.floor().long().clamp(max=len(log_sigmas) - 2)
        w = t - low
        sigma = (log_sigmas[low] * (1 - w) + log_sigmas[low + 1] * w).exp()
        exact = self.sigmas.to(device=t.device, dtype=t.dtype)[t.round().long()]
        return torch.where(
            t == t.round(), exact, sigma
        )  # integer timesteps: the table value, bit-exact


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _check_n(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"number of sampling steps must be a positive integer, got {n!r}")
    return int(n)


def vp_timesteps(
    num_train_timesteps: int, n: int, spacing: str = "leading", steps_offset: int = 0
) -> torch.Tensor:
    """Descending integer timesteps exactly as diffusers' ``DDIMScheduler`` / ``DDPMScheduler`` space them.

    * ``"leading"``: ``arange(n) * (N // n) + steps_offset`` (DDIM paper, Stable Diffusion default);
    * ``"trailing"``: ``round(arange(N, 0, -N / n)) - 1``, starts at the last timestep (Lin et al. 2023,
      "Common diffusion noise schedules are flawed", Table 2) -- also what ``DPMSolverMultistepScheduler``
      does for "trailing";
    * ``"linspace"``: ``round(linspace(0, N - 1, n))``.
    """
    n, big_n = _check_n(n), num_train_timesteps
    if n > big_n:
        raise ValueError(f"cannot take {n} steps on a schedule with {big_n} timesteps")
    if spacing == "leading":
        ts = torch.arange(n, dtype=torch.float64) * (big_n // n) + steps_offset
    elif spacing == "trailing":
        ts = torch.arange(big_n, 0, -big_n / n, dtype=torch.float64).round() - 1
    elif spacing == "linspace":
        ts = torch.linspace(0, big_n - 1, n, dtype=torch.float64).round()
    else:
        raise ValueError(
            f"unknown timestep spacing {spacing!r}; valid: leading, trailing, linspace"
        )
    if spacing != "leading" and steps_offset:
        raise ValueError("steps_offset only applies to 'leading' spacing (as in diffusers)")
    ts = ts.long().sort(descending=True).values
    if ts.max() > big_n - 1 or ts.min() < 0:
        raise ValueError(f"steps_offset={steps_offset} pushes timesteps outside [0, {big_n - 1}]")
    return ts


def get_sigmas_vp_timesteps(
    schedule: VPSchedule, timesteps: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Sigmas at explicit (descending, possibly fractional) timesteps of ``schedule``, plus a final 0."""
    ts = torch.as_tensor(timesteps, dtype=torch.float64)
    if ts.ndim != 1 or len(ts) == 0:
        raise ValueError("timesteps must be a non-empty 1-d sequence")
    if (ts[1:] >= ts[:-1]).any():
        raise ValueError(f"timesteps must be strictly descending, got {ts.tolist()}")
    return _append_zero(schedule.t_to_sigma(ts).double().cpu())


def get_sigmas_vp(
    schedule: VPSchedule, n: int, spacing: str = "leading", steps_offset: int = 0
) -> torch.Tensor:
    """``n`` sampling sigmas on a discrete VP schedule, spaced like diffusers' DDIM (see :func:`vp_timesteps`).

    The trailing 0 plays the role of diffusers' ``set_alpha_to_one=True`` (DDIM) /
    ``final_sigmas_type="zero"`` (DPM-Solver): the last step lands on the clean sample.
    """
    ts = vp_timesteps(schedule.num_train_timesteps, n, spacing, steps_offset)
    return _append_zero(schedule.sigmas[ts])


def get_sigmas_karras(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """Karras et al. (2022), EDM eq. 5: ``sigma_i = (max^(1/rho) + i/(n-1) (min^(1/rho) - max^(1/rho)))^rho``.

    Defaults are EDM's (sigma_data = 0.5 data in [-1, 1]).
    """
    n = _check_n(n)
    if not 0 < sigma_min < sigma_max:
        raise ValueError(
            f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}"
        )
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((hi + ramp * (lo - hi)) ** rho)


def shift_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3 (Esser et al. 2024) timestep shift ``t' = s t / (1 + (s - 1) t)``; s > 1 spends more steps at high noise.

    Equal to flux's ``time_shift(mu, 1, t)`` with ``s = exp(mu)``.
    """
    if shift <= 0:
        raise ValueError(f"flow shift must be > 0, got {shift}")
    return shift * t / (1 + (shift - 1) * t)


def get_sigmas_flow(n: int, shift: float = 1.0, t_max: float = FLOW_T_MAX) -> torch.Tensor:
    """Rectified-flow sampling schedule (SD3 / flux): ``t = shift_t(linspace(1, 0, n + 1), shift)``.

    Returned as VE sigmas ``t / (1 - t)``. ``t`` is clamped to ``t_max`` (default ``1 - 1e-4``, see
    :data:`FLOW_T_MAX`) because ``t = 1`` is ``sigma = inf``; only the first step is affected for
    reasonable shifts. Start sampling from ``sigmas[0] * randn``.
    """
    n = _check_n(n)
    if not 0 < t_max < 1:
        raise ValueError(f"t_max must lie in (0, 1), got {t_max}")
    t = shift_t(torch.linspace(1, 0, n + 1, dtype=torch.float64), shift).clamp(max=t_max)
    return t / (1 - t)


def flow_shift(
    num_tokens: int,
    base_tokens: int = 256,
    max_tokens: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """Resolution/length-dependent shift (flux ``get_lin_function``; SD3 sec. 5.3.2; Open-Sora).

    More tokens (pixels x frames / patch volume) carry more redundant signal, so noise must be stronger
    to destroy it: ``mu`` is linear in the token count through ``(base_tokens, base_shift)`` and
    ``(max_tokens, max_shift)`` (extrapolated linearly outside) and the shift is ``exp(mu)``; pass it to
    :func:`get_sigmas_flow` / :class:`vidiff.diffusion.losses.FlowLoss`. For a video latent of
    ``T x H x W`` with patch ``(pt, ph, pw)``, ``num_tokens = T*H*W / (pt*ph*pw)``.
    """
    if num_tokens <= 0 or max_tokens <= base_tokens:
        raise ValueError(
            f"need num_tokens > 0 and max_tokens > base_tokens, got {num_tokens}, {base_tokens}, {max_tokens}"
        )
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return math.exp(base_shift + slope * (num_tokens - base_tokens))


def _get_sigmas_vp_kw(
    n: int, schedule: VPSchedule | str = "cosine", spacing: str = "trailing", steps_offset: int = 0
) -> torch.Tensor:
    if isinstance(schedule, str):
        schedule = VPSchedule(schedule)
    return get_sigmas_vp(schedule, n, spacing, steps_offset)


_KINDS = {"vp": _get_sigmas_vp_kw, "karras": get_sigmas_karras, "flow": get_sigmas_flow}


def get_sigmas(kind: str, n: int, **kw) -> torch.Tensor:
    """Config dispatcher: ``get_sigmas("karras", 20, sigma_min=0.002, sigma_max=80)``,
    ``get_sigmas("flow", 20, shift=3.0)``, ``get_sigmas("vp", 20, schedule="cosine", spacing="trailing")``.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown sigma schedule {kind!r}; valid: {', '.join(_KINDS)}")
    fn = _KINDS[kind]
    params = inspect.signature(fn).parameters
    check_fields(kw, [p for p in params if p != "n"], f"sigma schedule {kind!r}", "option")
    missing = [
        p
        for p, v in params.items()
        if p != "n" and v.default is inspect.Parameter.empty and p not in kw
    ]
    if missing:
        raise ValueError(f"sigma schedule {kind!r} needs option(s) {missing}")
    return fn(n, **kw)
