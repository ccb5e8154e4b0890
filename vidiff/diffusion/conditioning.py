"""Frame conditioning (MCVD, Voleti et al. 2022): one model for text-to-video, image-to-video,
continuation and interpolation, trained with random masks of known frames.
"""

from __future__ import annotations

import torch

from vidiff.diffusion.precond import Denoiser
from vidiff.nn.conditioning import COND_FRAMES, FRAME_MASK


def frame_conditioned(denoiser: Denoiser, frames: torch.Tensor, mask: torch.Tensor) -> Denoiser:
    """Denoiser wrapper for known frames.

    ``frames`` (B, C, T, H, W) clean, model space ([-1, 1]); ``mask`` (B, T) bool, True = known. The inner
    denoiser receives them as ``cond_frames`` / ``frame_mask`` (the network's ``channels``
    conditioning: concatenated on its input),
    and the x0 estimate at known frames is replaced by the known frames, so any sampler ends exactly on
    them (its last step returns ``D``). Put it outside :func:`~vidiff.diffusion.guidance.cfg_denoiser`.
    """
    if frames.ndim != 5:
        raise ValueError(f"frames must be (B, C, T, H, W), got {tuple(frames.shape)}")
    if mask.shape != (frames.shape[0], frames.shape[2]) or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool (B, T) = {(frames.shape[0], frames.shape[2])} tensor, got {mask.dtype} {tuple(mask.shape)}"
        )
    keep = mask[:, None, :, None, None]

    def conditioned(x: torch.Tensor, sigma, **cond) -> torch.Tensor:
        if x.shape != frames.shape:
            raise ValueError(
                f"x {tuple(x.shape)} does not match the known frames {tuple(frames.shape)}"
            )
        for k in (COND_FRAMES, FRAME_MASK):
            if k in cond:
                raise ValueError(f"{k!r} is set by frame_conditioned; do not pass it as well")
        d = denoiser(x, sigma, **{COND_FRAMES: frames, FRAME_MASK: mask}, **cond)
        return torch.where(keep, frames.to(d.dtype), d)

    return conditioned


def random_frame_mask(
    batch: int,
    num_frames: int,
    generator: torch.Generator | None = None,
    p_none: float = 0.5,
    w_first: float = 0.4,
    w_prefix: float = 0.3,
    w_interp: float = 0.3,
    p_keep_interp: float = 0.25,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw (B, T) bool MCVD-style task masks, one task per sample.

    With probability ``p_none`` (0.5) nothing is known (text-to-video / unconditional); the remaining
    ``1 - p_none`` is split in proportion to the weights ``w_*`` (defaults 0.4 : 0.3 : 0.3, i.e.
    probabilities 0.2, 0.15, 0.15 at ``p_none = 0.5``) between:

    * first frame known -- image-to-video;
    * the first k frames known, k uniform in [1, T - 1] -- continuation;
    * first and last frame plus each interior frame with probability ``p_keep_interp`` (0.25) --
      interpolation.

    At least one frame stays unknown: with T = 1 (image batches) every mask is empty; with T = 2
    interpolation falls back to the first frame; if every interior frame was drawn as known, only the
    first and last are kept. Draws use ``generator`` (CPU or the device's), so masks are reproducible.
    """
    weights = torch.tensor([w_first, w_prefix, w_interp], dtype=torch.float64)
    if not 0.0 <= p_none <= 1.0:
        raise ValueError(f"p_none must lie in [0, 1], got {p_none}")
    if (weights < 0).any() or (p_none < 1 and weights.sum() <= 0):
        raise ValueError(
            f"task weights w_first, w_prefix, w_interp must be >= 0 with a positive sum, got {weights.tolist()}"
        )
    if batch < 1 or num_frames < 1:
        raise ValueError(f"batch and num_frames must be >= 1, got {batch}, {num_frames}")
    probs = torch.cat(
        [
            torch.tensor([p_none], dtype=torch.float64),
            (1 - p_none) * weights / weights.sum().clamp(min=1e-12),
        ]
    )
    gdev = generator.device if generator is not None else "cpu"
    task = torch.multinomial(probs.to(gdev), batch, replacement=True, generator=generator).cpu()
    u = torch.rand(batch, num_frames, generator=generator, device=gdev).cpu()
    k = torch.rand(batch, generator=generator, device=gdev).cpu()
    k = 1 + (k * max(num_frames - 1, 1)).long()  # prefix length, uniform in [1, T - 1]
    idx = torch.arange(num_frames)
    mask = torch.zeros(batch, num_frames, dtype=torch.bool)
    if num_frames > 1:
        first = idx[None] == 0
        prefix = idx[None] < k[:, None]
        interp = (u < p_keep_interp) | first | (idx[None] == num_frames - 1)
        if num_frames > 2:
            interp[:, 1:-1] &= ~(interp[:, 1:-1].all(1, keepdim=True))  # keep >= 1 unknown frame
        else:
            interp = first.expand(batch, -1)
        mask = torch.where((task == 1)[:, None], first, mask)
        mask = torch.where((task == 2)[:, None], prefix, mask)
        mask = torch.where((task == 3)[:, None], interp, mask)
    return mask.to(device) if device is not None else mask
