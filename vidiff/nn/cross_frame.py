"""Cross-frame attention: every frame's spatial self-attention also attends to an anchor's keys and
values, so appearance is read from one place and identity does not drift (Tune-A-Video, Wu et al.
2023, "sparse-causal" attention to the first frame; Text2Video-Zero, Khachatryan et al. 2023,
training-free cross-frame attention to frame 1).

:class:`CrossFrameAttention` is an attention *processor*: installed on a network's
:class:`~vidiff.nn.attention.SelfAttention` modules (:func:`cross_frame_attention`), it is called by
the spatial ones -- those whose caller passes ``frames``, the number of rows of one sample (the U-Net's
per-frame spatial attention: one row per frame; the DiT's whole-frame spatial blocks: one row per
frame, its full blocks: one row per sample) -- and returns their keys and values extended with the
anchor's. Temporal attention never passes ``frames`` and is left alone. It has no weights: a trained
model uses it without training, and gradients flow through it, so a model can be fine-tuned with it.

Anchors:

* ``first`` -- each sample's first row of this very call (frame 0): Text2Video-Zero. Frame 0 itself
  sees its own keys twice, which leaves its softmax unchanged; with one row per sample (a full
  attention block, an image) there is nothing to add.
* ``record`` / ``replay`` -- long-video extension: while recording (the first window) each module
  keeps, call by call, the keys and values of every row of each sample (the first window's
  frames); while replaying (later windows) the n-th call of a module since :meth:`rewind` attends
  to what its n-th recorded call kept. Every window runs the same sampler, so call n is the same
  noise level in every window.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from einops import rearrange, repeat
from torch import nn

MODES = ("off", "first", "record", "replay")


class CrossFrameAttention:
    """The anchor-frame attention processor (module docstring); ``mode`` is one of :data:`MODES`
    (``off``: the identity, the network as it was)."""

    def __init__(self, mode: str = "first") -> None:
        self.mode = "off"
        self.set_mode(mode)
        self._kept: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._calls: dict[int, int] = {}

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"cross-frame attention mode must be one of {MODES}, got {mode!r}")
        if mode == "record":
            self._kept, self._calls = {}, {}
        self.mode = mode
        self.rewind()

    def rewind(self) -> None:
        """Start replaying from each module's first recorded call (a new window)."""
        self._calls = {}

    def __call__(
        self, module: nn.Module, k: torch.Tensor, v: torch.Tensor, frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``k``, ``v`` (B * frames, heads, L, d) -> the same with the anchor's keys appended on L."""
        if self.mode == "off":
            return k, v
        if k.shape[0] % frames:
            raise ValueError(f"{k.shape[0]} attention rows are not a multiple of {frames} frames")
        if self.mode == "first":
            if frames == 1:
                return k, v
            ak, av = (rearrange(z, "(b f) h l d -> b f h l d", f=frames)[:, 0] for z in (k, v))
        elif self.mode == "record":
            ak, av = (rearrange(z, "(b f) h l d -> b h (f l) d", f=frames) for z in (k, v))
            self._kept.setdefault(id(module), []).append((ak.detach(), av.detach()))
            return k, v  # the anchor window attends as usual
        else:  # replay
            kept = self._kept.get(id(module), [])
            n = self._calls.get(id(module), 0)
            if n >= len(kept):
                raise ValueError(
                    f"cross-frame attention replays call {n + 1} of a module that recorded "
                    f"{len(kept)}: every window must run the same sampler and steps"
                )
            self._calls[id(module)] = n + 1
            ak, av = kept[n]
            if ak.shape[0] * frames != k.shape[0]:
                raise ValueError(
                    f"the anchor was recorded for a batch of {ak.shape[0]}, "
                    f"this call has {k.shape[0] // frames}"
                )
        ak, av = (repeat(z.to(k.dtype), "b h l d -> (b f) h l d", f=frames) for z in (ak, av))
        return torch.cat([k, ak], dim=2), torch.cat([v, av], dim=2)


@contextmanager
def cross_frame_attention(
    net: nn.Module, processor: CrossFrameAttention | str = "first"
) -> Iterator[CrossFrameAttention]:
    """Install ``processor`` (or a new one in that mode) on every self-attention of ``net`` for the
    duration of the block; the previous processors come back afterwards."""
    from vidiff.nn.attention import SelfAttention

    proc = CrossFrameAttention(processor) if isinstance(processor, str) else processor
    modules = [m for m in net.modules() if isinstance(m, SelfAttention)]
    before = [m.processor for m in modules]
    for m in modules:
        m.processor = proc
    try:
        yield proc
    finally:
        for m, p in zip(modules, before):
            m.processor = p
