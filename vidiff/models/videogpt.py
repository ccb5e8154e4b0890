"""VideoGPT's prior: a causal transformer over VQ-VAE codes with the caption as a prefix.

VideoGPT (Yan et al., 2021) models the code grid of its VQ-VAE (:mod:`vidiff.models.vqvae`)
autoregressively with a GPT (Radford et al., 2019; nanoGPT's layout): the ``t' x h' x w'`` codes are
read in raster order (time, then rows, then columns) and each is predicted from all before it. Text
conditioning is a **prefix**: the caption's word ids (fixed length, padded), then a start code, then
the codes -- the layout of DALL-E (Ramesh et al., 2021) and CogVideo. Blocks are pre-norm (RMSNorm)
with vidiff's attention op and RoPE (:mod:`vidiff.nn.attention`, :mod:`vidiff.nn.rope`) over the
sequence position; a causal additive mask keeps position ``i`` blind to ``j > i``. RoPE gives
offsets only, so each code's input also carries VideoGPT's learned **axial position** (one table
each for ``t'``, ``h'``, ``w'``, summed) of the code it predicts (``axial_positions``).

:func:`sample_codes` draws the codes one at a time with a key/value cache, temperature and top-k
(Fan et al., 2018); sample ``i``'s uniforms come from its own generator, so a clip depends on its
prompt and seed, not on its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import nn

from vidiff.config import preset_config
from vidiff.nn.attention import FeedForward, SelfAttention, attention
from vidiff.nn.norms import RMSNorm
from vidiff.nn.rope import RoPE, apply_rope


def check_sampling(temperature: float, top_k: int) -> None:
    """Refuse a sampling setting that means nothing, naming it."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no limit), got {top_k}")


@dataclass
class VideoGPTConfig:
    """Hyper-parameters of :class:`VideoGPT` (presets in :data:`VIDEOGPT_PRESETS`). The sizes set
    from the data and the VQ-VAE (``vocab_size``, ``text_len``, ``codebook_size``, ``num_codes``)
    are filled in when the model is built."""

    vocab_size: int = 0  # caption word ids (pad and BOS included)
    text_len: int = 16  # caption prefix length (the tokenizer's max_length)
    codebook_size: int = 0
    num_codes: int = 0  # codes per clip, t' h' w'
    code_grid: tuple[int, ...] = ()  # (t', h', w'), set from the VQ-VAE
    # Learned axial positions of the code being predicted (VideoGPT's), added to RoPE's offsets:
    # RoPE alone tells a token how far back another is, not where in the grid it stands.
    axial_positions: bool = False
    dim: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    # Sampling defaults (overridable per call).
    temperature: float = 1.0
    top_k: int = 0  # 0: the whole codebook

    def __post_init__(self) -> None:
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(
                f"dim={self.dim} must split into num_heads={self.num_heads} even-width heads"
            )
        check_sampling(self.temperature, self.top_k)
        self.code_grid = tuple(int(n) for n in self.code_grid)


VIDEOGPT_PRESETS: dict[str, VideoGPTConfig] = {
    "videogpt-tiny": VideoGPTConfig(axial_positions=True),  # CPU: 0.8M parameters
    "videogpt-test": VideoGPTConfig(dim=32, depth=2, num_heads=2, axial_positions=True),
}


def videogpt_config(preset: str | None, **overrides: Any) -> VideoGPTConfig:
    """A preset with ``overrides``; ``preset=None``: ``overrides`` is the complete config."""
    return preset_config(VideoGPTConfig, VIDEOGPT_PRESETS, preset, "VideoGPT", **overrides)


class Block(nn.Module):
    """Pre-norm transformer block; attention runs on a key/value cache when one is given."""

    def __init__(self, c: VideoGPTConfig):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(c.dim), RMSNorm(c.dim)
        self.attn = SelfAttention(c.dim, c.num_heads, dropout=c.dropout)
        self.mlp = FeedForward(c.dim, c.mlp_ratio, c.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        bias: torch.Tensor | None,
        cache: dict | None = None,
    ) -> torch.Tensor:
        h = self.norm1(x)
        if cache is None:
            h = self.attn(h, rope=rope, bias=bias)
        else:  # the module's projections, keys/values appended to the cache
            a = self.attn
            q, k, v = rearrange(a.qkv(h), "b l (n h d) -> n b h l d", n=3, h=a.num_heads)
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            if id(self) in cache:
                pk, pv = cache[id(self)]
                k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            cache[id(self)] = (k, v)
            h = a.proj(rearrange(attention(q, k, v, bias=bias), "b h l d -> b l (h d)"))
        x = x + h
        return x + self.mlp(self.norm2(x))


class VideoGPT(nn.Module):
    """``(text ids (B, Lt), codes (B, N)) -> logits (B, N, K)``: the logits at code ``i`` see the
    caption and codes ``< i`` only."""

    def __init__(self, config: VideoGPTConfig):
        super().__init__()
        self.config = c = config
        if c.vocab_size < 3 or c.codebook_size < 2 or c.num_codes < 1:
            raise ValueError(
                "VideoGPT needs vocab_size, codebook_size and num_codes from its data and VQ-VAE, "
                f"got {c.vocab_size}, {c.codebook_size}, {c.num_codes}"
            )
        if c.axial_positions and (len(c.code_grid) != 3 or math.prod(c.code_grid) != c.num_codes):
            raise ValueError(
                f"axial_positions needs code_grid (t', h', w') of num_codes={c.num_codes} codes, "
                f"got {list(c.code_grid)}"
            )
        self.text_embed = nn.Embedding(c.vocab_size, c.dim)
        self.code_embed = nn.Embedding(c.codebook_size + 1, c.dim)  # + the start code
        self.rope = RoPE((c.dim // c.num_heads,))
        if c.axial_positions:
            self.axial = nn.ParameterList(
                nn.Parameter(torch.randn(n, c.dim) * 0.02) for n in c.code_grid
            )
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm = RMSNorm(c.dim)
        self.head = nn.Linear(c.dim, c.codebook_size, bias=False)

    @property
    def start_code(self) -> int:
        return self.config.codebook_size

    def code_inputs(self, inputs: torch.Tensor, first: int) -> torch.Tensor:
        """Embeddings of the input codes ``(B, L)`` (the start code or code ``i - 1``) that predict
        codes ``first .. first + L - 1``, with the axial position of the code each predicts."""
        x = self.code_embed(inputs)
        if self.config.axial_positions:
            _, h, w = self.config.code_grid
            i = torch.arange(first, first + inputs.shape[1], device=inputs.device)
            x = x + self.axial[0][i // (h * w)] + self.axial[1][i // w % h] + self.axial[2][i % w]
        return x

    def _embed(self, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        start = torch.full_like(codes[:, :1], self.start_code)
        inputs = torch.cat([start, codes[:, :-1]], dim=1)  # shifted right: code i sees codes < i
        return torch.cat([self.text_embed(text), self.code_inputs(inputs, 0)], dim=1)

    def _run(self, x: torch.Tensor, offset: int, cache: dict | None) -> torch.Tensor:
        length = x.shape[1]
        pos = torch.arange(offset, offset + length, device=x.device)
        rope = self.rope(pos)
        bias = None
        if length > 1:  # causal mask over the new positions (earlier cached ones are all visible)
            full = torch.ones(length, offset + length, dtype=torch.bool, device=x.device)
            allowed = full.tril(diagonal=offset)
            bias = torch.zeros(allowed.shape, device=x.device).masked_fill(~allowed, float("-inf"))
        for block in self.blocks:
            x = block(x, rope, bias, cache)
        return self.head(self.norm(x))

    def forward(self, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        lt = text.shape[1]
        logits = self._run(self._embed(text, codes), 0, None)  # (B, Lt + N, K)
        return logits[:, lt:]  # position Lt + i (start or code i - 1) predicts code i


@torch.no_grad()
def sample_codes(
    model: VideoGPT,
    text: torch.Tensor,
    generators: list[torch.Generator],
    temperature: float | None = None,
    top_k: int | None = None,
) -> torch.Tensor:
    """Autoregressive sampling of ``(B, num_codes)`` codes for captions ``text (B, Lt)``: logits /
    temperature, restricted to the top-k, sampled by inverse CDF with one uniform per code drawn
    from sample ``i``'s generator."""
    c = model.config
    temperature = c.temperature if temperature is None else temperature
    top_k = c.top_k if top_k is None else top_k
    check_sampling(temperature, top_k)
    b, dev = text.shape[0], text.device
    start = torch.full((b, 1), model.start_code, dtype=torch.long, device=dev)
    x = torch.cat([model.text_embed(text), model.code_inputs(start, 0)], dim=1)
    cache: dict = {}
    logits = model._run(x, 0, cache)[:, -1]
    offset = x.shape[1]
    uniforms = torch.stack([torch.rand(c.num_codes, generator=g) for g in generators]).to(dev)
    out = []
    for i in range(c.num_codes):
        logits = logits.float() / temperature
        if 0 < top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        cdf = logits.softmax(-1).cumsum(-1)
        u = uniforms[:, i : i + 1] * cdf[:, -1:]
        code = torch.searchsorted(cdf, u).clamp_max(logits.shape[-1] - 1)  # (B, 1)
        out.append(code)
        if i + 1 < c.num_codes:
            logits = model._run(model.code_inputs(code, i + 1), offset, cache)[:, -1]
            offset += 1
    return torch.cat(out, dim=1)


__all__ = [
    "VIDEOGPT_PRESETS",
    "VideoGPT",
    "VideoGPTConfig",
    "check_sampling",
    "sample_codes",
    "videogpt_config",
]
