"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser wrapper, with guidance rescale
(Lin et al. 2023, "Common diffusion noise schedules are flawed", sec. 3.4) applied in x0-space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vidiff.diffusion.precond import Denoiser, append_dims, expand_sigma
from vidiff.nn.conditioning import CondSpec, conditions_of


def _pad_len(t: torch.Tensor, length: int, value) -> torch.Tensor:
    """Pad dim 1 (sequence length) of ``t`` to ``length`` with ``value``."""
    pad = [0, 0] * (t.ndim - 2) + [0, length - t.shape[1]]
    return F.pad(t, pad, value=value)


def _batch_cond(cond: dict, uncond: dict, batch: int, conditions: Sequence[CondSpec]) -> dict:
    """Concatenate conditional and unconditional conditioning along the batch, as the network's
    ``conditions`` declare.

    A key in both is ``cat([cond, uncond])`` (an uncond tensor with batch 1 is expanded, e.g. the empty
    prompt's context). A tensor key only in ``cond`` gets its spec's null value in the unconditional
    half: ``"zeros"`` its zeros, otherwise the conditional value again (``"keep"``: known frames).
    ``tokens`` of different lengths (and their masks) are padded with the spec's ``pad_value``.
    Non-tensor values are passed as they are.
    """
    extra = sorted(set(uncond) - set(cond))
    if extra:
        raise ValueError(
            f"uncond has keys {extra} that the conditional call lacks (cond keys: {sorted(cond)})"
        )
    cond, uncond = dict(cond), dict(uncond)
    for k, v in uncond.items():
        if torch.is_tensor(v) and v.shape[0] == 1 and batch != 1:
            uncond[k] = v.expand(batch, *v.shape[1:])
    pads = {s.name: s.pad_value for s in conditions}
    for spec in conditions:
        name, mask = spec.name, spec.mask
        if spec.kind != "tokens" or name not in uncond:
            continue
        if mask in cond and mask not in uncond:
            raise ValueError(f"uncond has a {name} but no {mask} while cond has one; pass both")
        if cond[name].shape[1] == uncond[name].shape[1]:
            continue
        if mask not in cond or mask not in uncond:
            raise ValueError(
                f"cond and uncond {name} differ in length; pass {mask} with both to pad them"
            )
        length = max(cond[name].shape[1], uncond[name].shape[1])
        for d in (cond, uncond):
            for k in (name, mask):
                d[k] = _pad_len(d[k], length, pads.get(k, 0))
    nulls = {s.name: s.null for s in conditions}
    out = {}
    for k, v in cond.items():
        if not torch.is_tensor(v):
            out[k] = v
            continue
        if v.shape[0] != batch:
            raise ValueError(f"cond[{k!r}] has batch {v.shape[0]}, expected {batch}")
        u = uncond.get(k, torch.zeros_like(v) if nulls.get(k) == "zeros" else v)
        if u.shape != v.shape:
            raise ValueError(
                f"cond[{k!r}] {tuple(v.shape)} and uncond[{k!r}] {tuple(u.shape)} do not match"
            )
        out[k] = torch.cat([v, u.to(v.dtype)])
    return out


def rescale_guidance(x0_cfg: torch.Tensor, x0_cond: torch.Tensor, rescale: float) -> torch.Tensor:
    """Lin et al. (2023) eq. 15-16: match the per-sample std of the guided prediction to the conditional
    one (fixes over-exposure at high guidance), blended by ``rescale`` in [0, 1]."""
    dims = tuple(range(1, x0_cfg.ndim))
    ratio = x0_cond.std(dim=dims, keepdim=True) / x0_cfg.std(dim=dims, keepdim=True).clamp(
        min=1e-12
    )
    return rescale * (x0_cfg * ratio) + (1 - rescale) * x0_cfg


def cfg_denoiser(
    denoiser: Denoiser,
    scale: float | torch.Tensor,
    uncond: dict,
    rescale: float = 0.0,
    conditions: Sequence[CondSpec] | None = None,
) -> Denoiser:
    """Return ``D_cfg(x, sigma, **cond) = D_u + scale (D_c - D_u)`` (x0-space; equal to guiding eps/v/flow
    since all are affine in x0 at fixed x, sigma), computed in one batch of 2B.

    ``scale`` 1.0 skips the unconditional pass; ``scale`` may be a (B,) tensor (guidance distillation
    feeds per-sample weights). Compose with frame conditioning as
    ``frame_conditioned(cfg_denoiser(D, ...), frames, mask)`` so the known frames reach both halves.
    ``uncond`` holds the unconditional values (:func:`null_conditioning`); ``conditions`` are the
    network's specs (default: read from ``denoiser.net``), which say how the two halves join.
    """
    conditions = conditions_of(denoiser) if conditions is None else tuple(conditions)
    if not 0.0 <= rescale <= 1.0:
        raise ValueError(f"guidance rescale must lie in [0, 1], got {rescale}")

    def guided(x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        if not torch.is_tensor(scale) and scale == 1.0:
            return denoiser(x, sigma, **cond)
        b = x.shape[0]
        sigma = expand_sigma(sigma, x)
        both = denoiser(
            torch.cat([x, x]), torch.cat([sigma, sigma]), **_batch_cond(cond, uncond, b, conditions)
        )
        d_cond, d_uncond = both[:b], both[b:]
        w = append_dims(
            torch.as_tensor(scale, device=x.device, dtype=d_cond.dtype).expand(b), x.ndim
        )
        out = d_uncond + w * (d_cond - d_uncond)
        return rescale_guidance(out, d_cond, rescale) if rescale > 0 else out

    return guided
