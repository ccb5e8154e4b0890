"""The network contract's conditioning inputs, checked in one place for every architecture.

A network is ``net(x_in, c_noise, context=None, context_mask=None, cond_frames=None, frame_mask=None,
guidance=None)`` (docs/architecture.md); each architecture adds only its own shape rules (the U-Net's
divisibility by its downsampling, the DiT's by its patch size).
"""

from __future__ import annotations

import torch

# The guidance weight w is embedded as ``GUIDANCE_EMBED_SCALE * w``: weights ~1..15 then span the
# frequencies the 0..1000 noise scale uses (flux-dev's ``guidance_in``).
GUIDANCE_EMBED_SCALE = 1000.0


def check_inputs(
    x: torch.Tensor,
    c_noise: torch.Tensor,
    config,
    *,
    context: torch.Tensor | None = None,
    context_mask: torch.Tensor | None = None,
    cond_frames: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
    guidance: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate a network call against the net's ``config`` (any config with ``in_channels``,
    ``context_dim``, ``frame_conditioning`` and ``guidance_embed``: the U-Net's and the DiT's); returns
    ``c_noise`` and ``guidance`` as float ``(B,)`` tensors (``guidance`` None for a net without
    ``guidance_embed``). Every error names the culprit."""
    in_channels, context_dim = config.in_channels, config.context_dim
    frame_conditioning, guidance_embed = config.frame_conditioning, config.guidance_embed
    if x.ndim != 5:
        raise ValueError(f"x_in must be (B, C, T, H, W), got shape {tuple(x.shape)}")
    b, c, t = x.shape[:3]
    if c != in_channels:
        raise ValueError(f"x_in has {c} channels, the model expects in_channels={in_channels}")
    if c_noise.ndim == 0:
        c_noise = c_noise.expand(b)
    if c_noise.shape != (b,):
        raise ValueError(f"c_noise must be (B,) = ({b},), got {tuple(c_noise.shape)}")
    if context is not None:
        if context_dim is None:
            raise ValueError("context given but the model has context_dim=None (unconditional)")
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != context_dim:
            raise ValueError(
                f"context must be (B, L, {context_dim}) with B={b}, got {tuple(context.shape)}"
            )
        if context_mask is not None and (
            context_mask.shape != context.shape[:2] or context_mask.dtype != torch.bool
        ):
            raise ValueError(
                f"context_mask must be bool {tuple(context.shape[:2])}, "
                f"got {context_mask.dtype} {tuple(context_mask.shape)}"
            )
    # Every row must keep a real token (else attention is NaN). The text encoders guarantee it (BOS
    # always kept); checking here would force a device sync per call.
    elif context_mask is not None:
        raise ValueError("context_mask given without context")
    if not frame_conditioning:
        if cond_frames is not None or frame_mask is not None:
            raise ValueError(
                "cond_frames/frame_mask given but the model has frame_conditioning=False"
            )
    elif (cond_frames is None) != (frame_mask is None):
        raise ValueError("cond_frames (B, C, T, H, W) and frame_mask (B, T) bool go together")
    elif cond_frames is not None:
        if cond_frames.shape != x.shape:
            raise ValueError(
                f"cond_frames {tuple(cond_frames.shape)} must match x_in {tuple(x.shape)}"
            )
        if frame_mask.shape != (b, t) or frame_mask.dtype != torch.bool:
            raise ValueError(
                f"frame_mask must be bool (B, T) = {(b, t)}, "
                f"got {frame_mask.dtype} {tuple(frame_mask.shape)}"
            )
    if not guidance_embed:
        if guidance is not None:
            raise ValueError("guidance given but the model has guidance_embed=False")
        return c_noise, None
    if guidance is None:
        raise ValueError(
            "this model has guidance_embed=True: pass guidance (B,), the CFG weight w (1 = conditional)"
        )
    guidance = torch.as_tensor(guidance, dtype=torch.float32, device=x.device)
    if guidance.ndim == 0:
        guidance = guidance.expand(b)
    if guidance.shape != (b,):
        raise ValueError(f"guidance must be (B,) = ({b},), got {tuple(guidance.shape)}")
    return c_noise, guidance


def frame_channels(
    x: torch.Tensor, cond_frames: torch.Tensor | None, frame_mask: torch.Tensor | None
) -> torch.Tensor:
    """The MCVD input ``[x_in, cond_frames * mask, mask]`` on channels (Voleti et al. 2022): one net
    for text-to-video, image-to-video, continuation and interpolation. ``cond_frames=None``: nothing
    known (zeros and an all-false mask)."""
    b, _, t, h, w = x.shape
    if cond_frames is None:
        return torch.cat([x, torch.zeros_like(x), x.new_zeros(b, 1, t, h, w)], dim=1)
    mask = frame_mask.to(x.dtype)[:, None, :, None, None].expand(b, 1, t, h, w)
    return torch.cat([x, cond_frames.to(x.dtype) * mask, mask], dim=1)
