"""Shared primitives: attention op, embeddings, RoPE, norms, temporal layers."""

import math

import pytest
import torch

from vidiff.nn import (
    CrossAttention,
    RoPE,
    SelfAttention,
    TemporalAttention,
    TemporalConv,
    TemporalDownsample,
    TemporalUpsample,
    apply_rope,
    attention,
    group_norm,
    relative_position_bucket,
    timestep_embedding,
)


def _perturb(module: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def test_timestep_embedding_values():
    c = torch.tensor([0.0, 1.0, 500.0, 999.0])
    e = timestep_embedding(c, 16)
    assert e.shape == (4, 16) and e.dtype == torch.float32
    assert torch.equal(e[0], torch.cat([torch.ones(8), torch.zeros(8)]))  # cos(0)=1, sin(0)=0
    # highest frequency is 1 rad per unit: sin(1 * 1) at index 8
    assert e[1, 8].item() == pytest.approx(math.sin(1.0), abs=1e-6)
    # embeddings of distinct noise levels on the 0..1000 scale are far apart
    assert (e[2] - e[3]).norm() > 1.0
    with pytest.raises(ValueError, match="c_noise"):
        timestep_embedding(torch.zeros(2, 1), 16)
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(c, 15)


def test_attention_matches_reference_with_mask_and_bias():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)
    k = torch.randn(2, 4, 7, 8)
    v = torch.randn(2, 4, 7, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    bias = torch.randn(4, 5, 7)
    out = attention(q, k, v, key_mask=mask, bias=bias)
    logits = q @ k.transpose(-1, -2) / math.sqrt(8) + bias
    logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = logits.softmax(-1) @ v
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_self_attention_key_mask_and_zero_init():
    torch.manual_seed(0)
    attn = SelfAttention(16, num_heads=2)
    x = torch.randn(2, 6, 16)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]] * 2, dtype=torch.bool)
    y = attn(x, key_mask=mask)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(2, 2, 16)  # masked keys change
    y2 = attn(x2, key_mask=mask)
    torch.testing.assert_close(y[:, :4], y2[:, :4])  # queries that are kept see no difference
    assert not torch.allclose(attn(x2), attn(x))  # without the mask they would
    zero = SelfAttention(16, head_dim=8, zero_init=True)
    assert zero.num_heads == 2
    assert torch.equal(zero(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="head_dim"):
        SelfAttention(16, head_dim=5)


def test_cross_attention_uses_context_and_mask():
    torch.manual_seed(0)
    ca = CrossAttention(16, context_dim=12, num_heads=4)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 12)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    y = ca(x, ctx, mask)
    ctx2 = ctx.clone()
    ctx2[0, 2], ctx2[1, 1:] = 5.0, -3.0  # only masked tokens change
    torch.testing.assert_close(ca(x, ctx2, mask), y)
    ctx3 = ctx.clone()
    ctx3[:, 0] += 1.0  # a real token changes
    assert (ca(x, ctx3, mask) - y).abs().max() > 1e-3


def test_rope_is_relative_and_norm_preserving():
    torch.manual_seed(0)
    rope = RoPE((8,))
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m, n):
        cm, sm = rope(torch.tensor([float(m)]))
        cn, sn = rope(torch.tensor([float(n)]))
        return (apply_rope(q, cm, sm) * apply_rope(k, cn, sn)).sum().item()

    assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-5)  # depends on m - n only
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)
    cos, sin = rope(torch.arange(5.0))
    x = torch.randn(2, 3, 5, 8)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


def test_rope_3d_axes():
    rope = RoPE((4, 6, 6))
    pos = torch.stack(
        torch.meshgrid(torch.arange(2), torch.arange(3), torch.arange(3), indexing="ij"), -1
    )
    cos, sin = rope(pos.reshape(-1, 3).float())
    assert cos.shape == (18, 16) and sin.shape == (18, 16)
    # moving along t only rotates the t pairs (first 2 of 8 pairs): the h/w angles are unchanged
    c_a, _ = rope(torch.tensor([[0.0, 1.0, 2.0]]))
    c_b, _ = rope(torch.tensor([[5.0, 1.0, 2.0]]))
    assert not torch.allclose(c_a[:, :2], c_b[:, :2])
    torch.testing.assert_close(c_a[:, 2:8], c_b[:, 2:8])
    with pytest.raises(ValueError, match="even"):
        RoPE((3, 5))
    with pytest.raises(ValueError, match="positions"):
        rope(torch.zeros(4, 2))


def test_group_norm_divisor():
    assert group_norm(48).num_groups == 24
    assert group_norm(64).num_groups == 32
    assert group_norm(7).num_groups == 7


def test_relative_position_bucket():
    rel = torch.arange(-200, 201)
    b = relative_position_bucket(rel, num_buckets=32, max_distance=128)
    assert b.min() >= 0 and b.max() < 32
    assert b[200] != b[201] and b[200] != b[199]  # 0, +1 and -1 are distinct buckets
    assert b[0] == b[1]  # far offsets share the last bucket


@pytest.mark.parametrize(
    "layer_fn",
    [
        lambda: TemporalConv(8),
        lambda: TemporalAttention(8, num_heads=2, position="rope"),
        lambda: TemporalAttention(8, num_heads=2, position="relative_bias"),
    ],
)
def test_temporal_layers_identity_then_mixing(layer_fn):
    torch.manual_seed(0)
    layer = layer_fn()
    x = torch.randn(2, 8, 5, 3, 4)
    assert torch.equal(layer(x), x)  # zero-initialised output: exact identity at init
    _perturb(layer)
    y = layer(x)
    assert not torch.allclose(y, x)
    x2 = x.clone()
    x2[:, :, 0] = torch.randn_like(x2[:, :, 0])  # change frame 0 only ...
    assert (
        layer(x2)[:, :, 1] - y[:, :, 1]
    ).abs().max() > 1e-4  # ... and frame 1 changes: frames mix
    # the ((B T), C, H, W) layout of an image U-Net gives the same result
    x4 = x.permute(0, 2, 1, 3, 4).reshape(10, 8, 3, 4)
    y4 = layer(x4, num_frames=5)
    torch.testing.assert_close(y4, y.permute(0, 2, 1, 3, 4).reshape(10, 8, 3, 4))
    # T == 1 is skipped: the very same tensor comes back
    img = torch.randn(2, 8, 1, 3, 4)
    assert layer(img) is img
    with pytest.raises(ValueError, match="num_frames"):
        layer(x4)


def test_temporal_down_up_sampling():
    down, up = TemporalDownsample(4), TemporalUpsample(4)
    x = torch.randn(1, 4, 8, 2, 2)
    d = down(x)
    assert d.shape == (1, 4, 4, 2, 2)
    torch.testing.assert_close(d, (x[:, :, 0::2] + x[:, :, 1::2]) / 2)  # starts as pair averaging
    u = up(d, 8)
    assert u.shape == x.shape
    torch.testing.assert_close(u, d.repeat_interleave(2, dim=2))  # starts as frame repetition
    img = torch.randn(1, 4, 1, 2, 2)
    assert down(img) is img and up(img, 1) is img
    with pytest.raises(ValueError, match="even"):
        down(torch.randn(1, 4, 3, 2, 2))
    with pytest.raises(ValueError, match="2T"):
        up(d, 5)


def test_channel_rms_norm_normalises_channels_per_pixel_and_frame():
    from vidiff.nn import ChannelRMSNorm, RMSNorm

    x = torch.randn(2, 6, 3, 4, 5) * torch.arange(1, 6).view(1, 1, 1, 1, 5)  # scale varies by pixel
    y = ChannelRMSNorm(6)(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(2, 3, 4, 5), rtol=1e-4, atol=1e-4)
    y[:, :, 1:] = 0  # causal: frame 0's output depends on frame 0 alone
    torch.testing.assert_close(ChannelRMSNorm(6)(x[:, :, :1]), y[:, :, :1])
    assert not torch.allclose(RMSNorm(5)(x), ChannelRMSNorm(6)(x))  # the other axis
