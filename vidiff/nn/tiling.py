"""Memory-bounded evaluation of convolutional video nets: causal chunks over time, halo tiles in space.

* :func:`causal_chunks` runs a causal net (one whose layers take a shared ``cache`` of past frames,
  e.g. :class:`vidiff.models.vae.CausalConv3d`) over time in chunks: equal to the whole clip up to
  float rounding.
* :func:`spatial_tiles` computes overlapping spatial tiles with a context halo and blends them
  linearly (the diffusers / Open-Sora tiled-VAE idea): exact when the halo covers the receptive field.
"""

from __future__ import annotations

import torch
from torch import nn


def causal_chunks(net: nn.Module, x: torch.Tensor, tile: int | None, step: int, first: int):
    """Run a causal net over time in chunks: the first frame alone, then ``tile`` latent frames
    (``tile * step`` input frames) at a time, carrying each conv's past in a cache."""
    t = x.shape[2]
    if tile is None or t <= first + tile * step:
        return net(x)
    if tile < 1:
        raise ValueError(f"tile_frames must be >= 1, got {tile}")
    cache: dict = {}
    outs = [net(x[:, :, :first], cache)]
    for start in range(first, t, tile * step):
        outs.append(net(x[:, :, start : start + tile * step], cache))
    return torch.cat(outs, dim=2)


def tile_stride(tile: int, unit: int, overlap: float) -> int:
    """The step between :func:`spatial_tiles`' tile origins: ``tile (1 - overlap)`` rounded down to
    whole ``unit`` cells (at least one)."""
    return max(unit, int(tile * (1 - overlap)) // unit * unit)


def tile_origins(n: int, tile: int, unit: int, overlap: float) -> list[int]:
    """Where :func:`spatial_tiles` starts its tiles along a side of ``n`` pixels: every
    :func:`tile_stride`, plus a last tile flush with the end."""
    if n <= tile:
        return [0]
    return sorted({*range(0, n - tile, tile_stride(tile, unit, overlap)), n - tile})


def spatial_tiles(
    fn,
    x: torch.Tensor,
    tile: int | None,
    scale: int,
    down: bool,
    overlap: float = 0.25,
    context: int = 0,
) -> torch.Tensor:
    """Spatial tiling with context, overlap and a linear blend (the diffusers / Open-Sora tiled
    VAE idea, plus a halo).

    ``tile`` is the core tile side in ``x``'s pixels; outputs are ``scale`` times smaller
    (``down``) or larger. Each tile is computed with ``context`` extra input pixels on every side
    (clamped at the frame border) that are cropped away afterwards: with a context at least the
    net's receptive-field radius the core equals the untiled result. Neighbouring cores share a
    fraction ``overlap`` of their side; each output pixel is a weighted mean of the cores that
    cover it, with weights ramping linearly across the overlap (hides what a short context
    misses).
    """
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return fn(x)
    unit = scale if down else 1  # tile origins must stay on the compression grid
    if context < 0:
        raise ValueError(f"tile_context must be >= 0, got {context}")
    if tile % unit or tile < 2 * unit:
        raise ValueError(f"tile_size must be a multiple of {unit} and >= {2 * unit}, got {tile}")
    stride = tile_stride(tile, unit, overlap)
    ctx = -(-context // unit) * unit  # whole compression cells
    origins = lambda n: tile_origins(n, tile, unit, overlap)

    f = (lambda n: n // scale) if down else (lambda n: n * scale)
    out = weight = None
    for y0 in origins(h):
        for x0 in origins(w):
            ya, xa = max(0, y0 - ctx), max(0, x0 - ctx)
            y = fn(x[..., ya : y0 + tile + ctx, xa : x0 + tile + ctx])
            th, tw = f(min(tile, h)), f(min(tile, w))
            y = y[..., f(y0 - ya) : f(y0 - ya) + th, f(x0 - xa) : f(x0 - xa) + tw]
            ov = max(1, f(tile - stride))
            ramp = lambda n, ov=ov: torch.clamp(
                torch.minimum(torch.arange(n) + 1, n - torch.arange(n)) / ov, max=1.0
            )
            wt = (ramp(th)[:, None] * ramp(tw)[None, :]).to(y)
            if out is None:
                out = y.new_zeros(*y.shape[:-2], f(h), f(w))
                weight = y.new_zeros(f(h), f(w))
            oy, ox = f(y0), f(x0)
            out[..., oy : oy + th, ox : ox + tw] += y * wt
            weight[oy : oy + th, ox : ox + tw] += wt
    return out / weight
