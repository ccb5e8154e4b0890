"""Diffusion core: one denoiser interface ``D(x, sigma, **cond) -> x0_hat`` (VE sigma, x = x0 + sigma eps).

Preconditioning (eps / v / EDM / flow), schedules and discretisations, losses, and denoiser wrappers
(classifier-free guidance, frame conditioning). See docs/architecture.md.
"""

from vidiff.diffusion.conditioning import frame_conditioned, random_frame_mask
from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.diffusion.losses import DiffusionLoss, EDMLoss, FlowLoss, VPLoss, build_loss
from vidiff.diffusion.precond import (
    PARAMETERIZATIONS,
    EDMPrecond,
    EpsPrecond,
    FlowPrecond,
    Precond,
    VPrecond,
    build_precond,
)
from vidiff.diffusion.schedules import (
    FLOW_T_MAX,
    VPSchedule,
    flow_shift,
    get_sigmas,
    get_sigmas_flow,
    get_sigmas_karras,
    get_sigmas_vp,
    get_sigmas_vp_timesteps,
)

__all__ = [
    "FLOW_T_MAX",
    "PARAMETERIZATIONS",
    "EDMLoss",
    "EDMPrecond",
    "EpsPrecond",
    "FlowLoss",
    "FlowPrecond",
    "Precond",
    "VPLoss",
    "VPSchedule",
    "VPrecond",
    "DiffusionLoss",
    "build_loss",
    "build_precond",
    "cfg_denoiser",
    "flow_shift",
    "frame_conditioned",
    "get_sigmas",
    "get_sigmas_flow",
    "get_sigmas_karras",
    "get_sigmas_vp",
    "get_sigmas_vp_timesteps",
    "random_frame_mask",
]
