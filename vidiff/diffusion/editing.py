"""Editing existing videos: masked regeneration (RePaint) and video-to-video (SDEdit).

Both are built from the one denoiser interface ``D(x, sigma, **cond) -> x0_hat`` and a sigma schedule,
so they work with every parameterisation and sampler:

* :func:`masked_denoiser` -- a denoiser wrapper for inpainting (RePaint, Lugmayr et al. 2022): before
  each call the known region of ``x`` is replaced by the input noised to the current sigma with one
  fixed noise draw (``x0 + sigma eps``), and the x0 estimate there is replaced by the input. The
  unknown region is denoised seeing a consistent noisy context, and any sampler ends exactly on the
  input outside the mask (its last step returns ``D``).
* :func:`sdedit_start` -- SDEdit (Meng et al. 2022): noise the clean input to ``sigma_start`` and run
  only the tail of the schedule from there; ``strength`` is the share of the schedule's steps that
  are run (for a few-step distilled model, exactly a number of its steps).

* :func:`structure_denoiser` -- structure guidance for SDEdit: while the noise is high, the x0
  estimate's brightness (HSV value, the largest of its colour channels) is pulled to the input's,
  as ILVR (Choi et al. 2021) pulls an estimate's low frequencies to a reference's. Value carries
  where things are and their shading but not their hue, so a prompt may recolour what stays put.

* :func:`layered_edit` -- masked editing for a model trained on one uniform background: edit the
  clip's foreground on that background and composite the result over the input's clean plate.

RePaint's resampling ("jumps": go one step down, re-noise back up, repeat) is a sampling driver, not a
wrapper: see :func:`vidiff.sampling.resample.sample_resampled`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from vidiff.diffusion.precond import Denoiser


def masked_denoiser(
    denoiser: Denoiser, known: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor
) -> Denoiser:
    """Denoiser wrapper that regenerates only where ``mask`` is True and keeps ``known`` elsewhere.

    ``known`` ``(B, C, T, H, W)``: the clean input in model space; ``mask`` broadcastable to it (bool,
    True = regenerate); ``eps``: unit noise like ``known`` -- the sample's own seeded noise, so the
    known region's noisy version ``known + sigma eps`` is one trajectory of the forward process and a
    video depends only on its input, prompt and seed. Put it outside classifier-free guidance.
    """
    if known.shape != eps.shape:
        raise ValueError(f"known {tuple(known.shape)} and eps {tuple(eps.shape)} differ in shape")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool, got {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, known.shape)
    except RuntimeError as e:
        raise ValueError(
            f"mask {tuple(mask.shape)} does not broadcast to the video {tuple(known.shape)}"
        ) from e

    def masked(x: torch.Tensor, sigma: torch.Tensor, **cond) -> torch.Tensor:
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, 1, 1, 1)
        noisy_known = known.to(x.dtype) + s * eps.to(x.dtype)  # q(x_sigma | x0), VE form
        d = denoiser(torch.where(mask, x, noisy_known), sigma, **cond)
        return torch.where(mask, d, known.to(d.dtype))

    return masked


def strength_steps(strength: float, steps: int) -> int:
    """How many of a ``steps``-step schedule's steps SDEdit runs at ``strength`` in (0, 1]:
    ``ceil(strength * steps)``, at least one (the effective strength is that number over ``steps``)."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(
            f"strength must be in (0, 1] (0 would return the input unchanged), got {strength:g}"
        )
    return max(1, math.ceil(strength * steps - 1e-9))


def sdedit_start(
    x0: torch.Tensor, eps: torch.Tensor, sigmas: torch.Tensor, strength: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """SDEdit's starting point: ``(x, tail)`` with ``tail`` the last ``strength_steps`` steps of
    ``sigmas`` (ending in 0) and ``x = x0 + tail[0] eps``.

    At ``strength = 1`` the whole schedule runs from pure noise ``sigmas[0] eps`` (the input is not
    used): exactly generation from the same seed.
    """
    n = len(sigmas) - 1
    k = strength_steps(strength, n)
    tail = sigmas[n - k :]
    if k == n:
        return eps * sigmas[0], tail
    return x0 + eps * tail[0], tail


def structure_denoiser(
    denoiser: Denoiser, known: torch.Tensor, sigma_min: float, blur: int = 1
) -> Denoiser:
    """Denoiser wrapper that gives the x0 estimate the brightness of ``known`` while the noise is at
    least ``sigma_min``: ``d + (v(known) - v(d))`` added to every channel, ``v`` the largest
    channel (HSV value) averaged over ``blur`` x ``blur`` pixels (ILVR's low-pass filter). Shifting
    all channels alike keeps the estimate's hue, so the prompt still sets the colours.

    ``known`` ``(B, C, T, H, W)``: the clean input, in pixel model space (``[-1, 1]``). Below
    ``sigma_min`` the estimate is left alone, so the last steps draw clean edges and colours.
    """
    if blur < 1:
        raise ValueError(f"blur must be >= 1 pixel, got {blur}")

    def low(v: torch.Tensor) -> torch.Tensor:  # (B, 1, T, H, W) -> the same, box-filtered
        if blur == 1:
            return v
        b, _, t, h, w = v.shape
        frames = v.transpose(1, 2).reshape(b * t, 1, h, w)
        frames = torch.nn.functional.avg_pool2d(frames, blur, 1, blur // 2, count_include_pad=False)
        return frames[..., :h, :w].reshape(b, t, 1, h, w).transpose(1, 2)

    target = low(known.amax(1, keepdim=True))

    def guided(x: torch.Tensor, sigma: torch.Tensor, **cond) -> torch.Tensor:
        d = denoiser(x, sigma, **cond)
        on = (sigma.reshape(-1) >= sigma_min).reshape(-1, *([1] * (d.ndim - 1)))
        moved = d + (target.to(d.dtype) - low(d.amax(1, keepdim=True)))
        return torch.where(on, moved, d)

    return guided


def clean_plate(video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The static background of clips ``(B, C, T, H, W)`` behind a regenerated region, ``(B, C, 1, H, W)``.

    Each pixel is the median over the frames where ``mask`` ``(B, T, H, W)`` leaves it unmasked (a
    moving object uncovers what lies behind it); a pixel masked in every frame takes the value of the
    nearest pixel that is not (a static camera is assumed: the plate is one image).
    """
    from scipy import ndimage

    if not (~mask).flatten(1).any(1).all():
        raise ValueError("a layered edit needs pixels outside the mask (the background to keep)")
    v = video.float().masked_fill(mask[:, None], float("nan"))
    plate = torch.nanmedian(v, dim=2).values  # (B, C, H, W), NaN where masked in every frame
    out = []
    for p in plate:
        unknown = torch.isnan(p[0]).cpu().numpy()
        iy, ix = ndimage.distance_transform_edt(
            unknown, return_distances=False, return_indices=True
        )
        out.append(p[:, torch.from_numpy(iy), torch.from_numpy(ix)])
    return torch.stack(out)[:, :, None].to(video.dtype)


def layer_input(
    video: torch.Tensor, plate: torch.Tensor, background: torch.Tensor, threshold: float = 0.25
) -> torch.Tensor:
    """The clips' foreground on a model's own background: pixels within ``threshold`` of the clean
    ``plate`` (Chebyshev colour distance, as the probes measure coverage) become ``background``
    ``(C,)``; objects keep their colours."""
    near = (video - plate).abs().amax(1, keepdim=True) <= threshold  # (B, 1, T, H, W)
    return torch.where(near, background.view(1, -1, 1, 1, 1).to(video), video)


def composite_layer(
    layer: torch.Tensor, plate: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """A layer generated on ``background`` laid over the clean ``plate``: with the layer's coverage
    ``a = max_c |layer - background|`` (exact for saturated colours over black), a pixel
    ``layer = (1 - a) background + a colour`` becomes ``(1 - a) plate + a colour``."""
    b = background.view(1, -1, 1, 1, 1).to(layer)
    a = (layer - b).abs().amax(1, keepdim=True).clamp(0, 1)
    return (layer + (plate - b) * (1 - a)).clamp(0, 1)


def layered_edit(
    edit: Callable[[torch.Tensor], torch.Tensor],
    video: torch.Tensor,
    mask: torch.Tensor,
    background: Sequence[float],
) -> torch.Tensor:
    """Masked editing for a model that only knows one uniform ``background`` (RGB in [0, 1]): the
    clips ``(B, C, T, H, W)`` are edited as their foreground on that background (what the model was
    trained on, so the known context is in distribution), by ``edit(canvas) -> clips``, and the
    regenerated region is composited over the input's clean plate; outside ``mask`` the input is kept.

    A textured context is out of distribution for such a model: regenerating on it directly leaves
    noise in the region (measured in docs/editing.md).
    """
    bg = torch.as_tensor(background, dtype=video.dtype, device=video.device)
    plate = clean_plate(video, mask)
    layer = edit(layer_input(video, plate, bg))
    return torch.where(mask[:, None], composite_layer(layer, plate, bg), video)
