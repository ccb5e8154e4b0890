"""Shared neural-network primitives: the attention op, embeddings, RoPE, norms and temporal layers.

Only true primitives live here; each architecture is one readable file in ``vidiff.models``. The
conditioning specs and the embedding both architectures share are in :mod:`vidiff.nn.conditioning`.
"""

from vidiff.nn.attention import CrossAttention, FeedForward, SelfAttention, attention, resolve_heads
from vidiff.nn.conditioning import (
    CONDITIONINGS,
    ConditionedNet,
    CondSpec,
    network_conditions,
    register_conditioning,
)
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
    "CONDITIONINGS",
    "CondSpec",
    "ConditionedNet",
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
    "network_conditions",
    "register_conditioning",
    "relative_position_bucket",
    "resolve_heads",
    "timestep_embedding",
]
