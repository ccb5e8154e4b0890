"""Pure samplers and seeded noise."""

from vidiff.sampling.noise import SeededNoise
from vidiff.sampling.samplers import (
    SAMPLERS,
    ddim_step,
    ddim_to,
    ddim_x0_target,
    get_ancestral_step,
    sample,
    sample_ancestral,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)

__all__ = [
    "SAMPLERS",
    "SeededNoise",
    "ddim_step",
    "ddim_to",
    "ddim_x0_target",
    "get_ancestral_step",
    "sample",
    "sample_ancestral",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
]
