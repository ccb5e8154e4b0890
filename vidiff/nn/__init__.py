"""Shared neural-network primitives: the attention op, embeddings, RoPE, norms and temporal layers.

Only true primitives live here; each architecture is one readable file in ``vidiff.models``.
"""

from vidiff.nn.attention import CrossAttention, FeedForward, SelfAttention, attention, resolve_heads
from vidiff.nn.embeddings import TimestepEmbedding, masked_mean, timestep_embedding
from vidiff.nn.norms import (
    ChannelRMSNorm,
    GroupNorm32,
    LayerNorm32,
    RMSNorm,
    group_norm,
    modulate,
)
from vidiff.nn.rope import RoPE, apply_rope
from vidiff.nn.temporal import (
    RelativePositionBias,
    TemporalAttention,
    TemporalConv,
    TemporalDownsample,
    TemporalUpsample,
    relative_position_bucket,
)

__all__ = [
    "CrossAttention",
    "FeedForward",
    "GroupNorm32",
    "LayerNorm32",
    "RMSNorm",
    "ChannelRMSNorm",
    "RoPE",
    "RelativePositionBias",
    "SelfAttention",
    "TemporalAttention",
    "TemporalConv",
    "TemporalDownsample",
    "TemporalUpsample",
    "TimestepEmbedding",
    "apply_rope",
    "attention",
    "group_norm",
    "masked_mean",
    "modulate",
    "relative_position_bucket",
    "resolve_heads",
    "timestep_embedding",
]
