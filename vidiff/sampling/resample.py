"""RePaint's resampling as a sampling driver around any pure sampler.

RePaint (Lugmayr et al. 2022, Alg. 1) harmonises an inpainted region with its known context by going
back and forth: after each step ``sigma_i -> sigma_{i+1}`` it re-noises the state back to ``sigma_i``
(``x + sqrt(sigma_i^2 - sigma_{i+1}^2) z``, the forward process in VE form) and repeats the step, ``R``
times, before moving on. With ``R = 0`` this is the sampler itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vidiff.diffusion.precond import Denoiser
from vidiff.sampling.samplers import sample


@torch.no_grad()
def sample_resampled(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    sampler: str = "ddim",
    resample: int = 0,
    extra_args: dict | None = None,
    callback: Callable | None = None,
    noise: Callable | None = None,
) -> torch.Tensor:
    """Run ``sampler`` one step at a time, repeating each step (but the last, to sigma = 0)
    ``resample`` more times after re-noising back to its start (RePaint's jumps of length 1).

    ``noise(x)`` draws the re-noising noise (use a :class:`~vidiff.sampling.noise.SeededNoise` for
    batch-independent results); ``callback`` sees every denoiser step of the final passes.
    ``resample = 0`` is exactly ``sample(denoiser, x, sigmas, sampler)``; with resampling a multistep
    sampler (DPM-Solver++ 2M) restarts its history at every step.
    """
    if resample < 0:
        raise ValueError(f"resample must be >= 0, got {resample}")
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    noise = noise or torch.randn_like
    if resample == 0:
        return sample(
            denoiser,
            x,
            sigmas,
            sampler=sampler,
            extra_args=extra_args,
            callback=callback,
            noise=noise,
        )
    last = len(sigmas) - 2
    for i in range(last + 1):
        pair = sigmas[i : i + 2]
        repeats = resample if i < last else 0
        for r in range(repeats + 1):
            cb = None
            if callback is not None and r == repeats:
                cb = lambda d, i=i: callback({**d, "i": i})
            x_next = sample(
                denoiser, x, pair, sampler=sampler, extra_args=extra_args, callback=cb, noise=noise
            )
            if r < repeats:
                up = math.sqrt(float(pair[0]) ** 2 - float(pair[1]) ** 2)
                x = x_next + up * noise(x_next).to(x_next.dtype)
            else:
                x = x_next
    return x
