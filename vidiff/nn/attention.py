"""The attention op and the self/cross-attention modules every vidiff architecture uses.

One op, :func:`attention`, on ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-
efficient kernels on GPU, a fused kernel on CPU), with an optional key-padding mask and an optional
additive bias (relative position bias). Modules are pre-projection only: normalisation and residuals
belong to the block that uses them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.nn.init import zero_module
from vidiff.nn.norms import RMSNorm
from vidiff.nn.rope import apply_rope


def resolve_heads(dim: int, num_heads: int | None = None, head_dim: int | None = None) -> int:
    """Number of heads for a ``dim``-wide attention: from ``head_dim`` if given, else ``num_heads``."""
    if head_dim is not None:
        if head_dim <= 0 or dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of head_dim={head_dim}")
        return dim // head_dim
    if num_heads is None or num_heads <= 0 or dim % num_heads:
        raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
    return num_heads


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d) + bias) v`` (Vaswani et al., 2017).

    ``q`` (B, heads, Lq, d); ``k``, ``v`` (B, heads, Lk, d). ``key_mask`` (B, Lk) bool, True = may be
    attended; every row must keep at least one key (a fully masked row is undefined -- callers
    validate). ``bias`` is added to the logits and must broadcast to (B, heads, Lq, Lk).
    """
    attn_mask = None
    if key_mask is not None:
        attn_mask = key_mask[:, None, None, :].to(torch.bool)
    if bias is not None:
        bias = bias.to(q.dtype)
        if attn_mask is not None:
            bias = bias.masked_fill(~attn_mask, float("-inf"))
        attn_mask = bias
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


class _MultiHead(nn.Module):
    """What self- and cross-attention share: the head layout, the optional q/k RMSNorm, dropout and
    the output projection. Subclasses create their input projections between :meth:`_init_heads`
    and :meth:`_init_output` (so parameters register in the order checkpoints hold them)."""

    def _init_heads(
        self, dim: int, num_heads: int | None, head_dim: int | None, dropout: float
    ) -> None:
        self.num_heads = resolve_heads(dim, num_heads, head_dim)
        self.head_dim = dim // self.num_heads
        self.dropout = dropout

    def _init_output(self, dim: int, qk_norm: bool, zero_init: bool) -> None:
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        if zero_init:
            zero_module(self.proj)

    def _attend(self, q, k, v, key_mask=None, bias=None) -> torch.Tensor:
        """Attention of ``(B, H, L, D)`` heads, merged and projected back to ``(B, L, dim)``."""
        p = self.dropout if self.training else 0.0
        out = attention(q, k, v, key_mask=key_mask, bias=bias, dropout_p=p)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))


class SelfAttention(_MultiHead):
    """Multi-head self-attention on tokens (B, L, dim) with optional RoPE, bias and key mask.

    ``qk_norm`` applies RMSNorm to queries and keys (stabilises large models; SD3, ViT-22B).
    ``zero_init`` zero-initialises the output projection so a residual block starts as identity.
    ``processor`` (None, or e.g. :class:`~vidiff.nn.cross_frame.CrossFrameAttention`) may extend the
    keys and values of calls whose caller says how many rows one sample has (``frames``): spatial
    attention, where each row is one frame.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int | None = None,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        dropout: float = 0.0,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self._init_heads(dim, num_heads, head_dim, dropout)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self._init_output(dim, qk_norm, zero_init)
        self.processor = None  # no weights: not part of the state dict

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        bias: torch.Tensor | None = None,
        frames: int | None = None,
    ) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b l (n h d) -> n b h l d", n=3, h=self.num_heads)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.processor is not None and frames is not None:
            if key_mask is not None or bias is not None:
                raise ValueError("an attention processor takes calls without key_mask or bias")
            k, v = self.processor(self, k, v, frames)
        return self._attend(q, k, v, key_mask=key_mask, bias=bias)


class CrossAttention(_MultiHead):
    """Multi-head cross-attention from tokens (B, L, dim) to a context (B, Lc, context_dim).

    ``context_mask`` (B, Lc) bool marks real tokens (True) vs padding; padded tokens get no weight.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        num_heads: int | None = None,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        dropout: float = 0.0,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self._init_heads(dim, num_heads, head_dim, dropout)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim, 2 * dim, bias=qkv_bias)
        self._init_output(dim, qk_norm, zero_init)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = rearrange(self.q(x), "b l (h d) -> b h l d", h=self.num_heads)
        k, v = rearrange(
            self.kv(context.to(x.dtype)), "b l (n h d) -> n b h l d", n=2, h=self.num_heads
        )
        q, k = self.q_norm(q), self.k_norm(k)
        return self._attend(q, k, v, key_mask=context_mask)


class FeedForward(nn.Module):
    """Transformer MLP ``Linear -> GELU(tanh) -> Linear``; ``zero_init`` zeroes the output layer."""

    def __init__(
        self, dim: int, mult: float = 4.0, dropout: float = 0.0, zero_init: bool = False
    ) -> None:
        super().__init__()
        hidden = int(dim * mult)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )
        if zero_init:
            zero_module(self.net[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
