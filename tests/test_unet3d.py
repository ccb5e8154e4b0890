"""Factorized space-time U-Net: shapes, identity-initialised temporal layers, conditioning, presets."""

import dataclasses

import pytest
import torch

from vidiff.models import build_config, build_model, build_model_from_config
from vidiff.models.unet3d import UNET_PRESETS, UNet3D, UNet3DConfig, coordinate_channels

CTX = 8


def _tiny(**kw) -> UNet3D:
    torch.manual_seed(0)
    return build_model("unet3d", "unet-tiny", **kw)


def _perturb(model, keep=lambda name: False, scale=0.05, seed=0):
    """Add noise to every parameter whose name ``keep`` rejects (zero-initialised ones included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not keep(name):
                p.add_(torch.randn(p.shape, generator=g) * scale)


def _is_temporal(name: str) -> bool:
    return ".temporal." in name


def _inputs(b=2, t=4, s=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, t, s, s, generator=g), torch.rand(b, generator=g) * 1000


def test_shapes_video_and_image():
    net = _tiny(context_dim=CTX)
    x, c = _inputs(t=5)
    ctx = torch.randn(2, 6, CTX)
    assert net(x, c, context=ctx).shape == (2, 3, 5, 8, 8)
    assert net(x[:, :, :1], c, context=ctx).shape == (2, 3, 1, 8, 8)
    assert isinstance(net.config, UNet3DConfig)
    out = _tiny(out_channels=6)(x, c)
    assert out.shape == (2, 6, 5, 8, 8)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output conv


def test_fresh_temporal_layers_are_identity_and_perturbed_ones_mix_frames():
    # float64: the equality is exact math, so fp32 rounding (amplified by GroupNorm on the 1x1
    # bottleneck of an 8x8 input with random weights) must not blur it
    net = _tiny(context_dim=CTX, temporal_position="relative_bias")
    _perturb(net, keep=_is_temporal)  # every spatial weight random, temporal ones as built
    net = net.double()
    x, c = _inputs(t=4)
    x, c, ctx = x.double(), c.double(), torch.randn(2, 3, CTX, dtype=torch.float64)
    video = net(x, c, context=ctx)
    frames = torch.cat([net(x[:, :, i : i + 1], c, context=ctx) for i in range(4)], dim=2)
    assert video.abs().max() > 1e-2  # not vacuous: the output is not zero
    torch.testing.assert_close(video, frames, atol=1e-10, rtol=1e-8)

    _perturb(net, keep=lambda n: not _is_temporal(n), seed=1)  # now the temporal layers too
    video = net(x, c, context=ctx)
    assert (video - frames).abs().max() > 1e-3
    x2 = x.clone()
    x2[:, :, 0] = torch.randn_like(x2[:, :, 0])
    assert (
        net(x2, c, context=ctx)[:, :, 3] - video[:, :, 3]
    ).abs().max() > 1e-4  # frame 0 -> frame 3


def test_images_skip_temporal_weights():
    a = _tiny()
    _perturb(a, keep=_is_temporal)
    b = _tiny()
    b.load_state_dict(a.state_dict())
    _perturb(b, keep=lambda n: not _is_temporal(n), scale=1.0)  # wildly different temporal weights
    x, c = _inputs(t=1)
    assert torch.equal(a(x, c), b(x, c))


def test_cross_attention_uses_context_and_respects_mask():
    net = _tiny(context_dim=CTX)
    _perturb(net)
    x, c = _inputs(t=2)
    ctx = torch.randn(2, 5, CTX)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    y = net(x, c, context=ctx, context_mask=mask)
    other = ctx.clone()
    other[:, 0] = torch.randn(2, CTX)
    assert (net(x, c, context=other, context_mask=mask) - y).abs().max() > 1e-4
    padded = ctx.clone()
    padded[0, 3:], padded[1, 1:] = 7.0, -7.0  # only masked tokens change
    torch.testing.assert_close(net(x, c, context=padded, context_mask=mask), y)
    with pytest.raises(ValueError, match="context_dim"):
        _tiny()(x, c, context=ctx)


def test_pooled_context_conditions_the_noise_embedding():
    """The masked mean of the prompt reaches every ResBlock through the noise embedding."""
    x, c = _inputs(t=2)
    ctx = torch.randn(2, 5, CTX)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    assert _tiny(context_dim=CTX, pooled_context=False).context_pool is None
    net = _tiny(context_dim=CTX)
    assert net.config.pooled_context  # the presets turn it on
    _perturb(net)
    with torch.no_grad():  # silence cross-attention: only the pooled path can carry the prompt
        for name, p in net.named_parameters():
            if ".cross." in name:
                p.zero_()
    y = net(x, c, context=ctx, context_mask=mask)
    other = ctx.clone()
    other[0, 1] += 1.0  # a real token of sample 0
    diff = (net(x, c, context=other, context_mask=mask) - y).abs().flatten(1).amax(1)
    assert diff[0] > 1e-4 and diff[1] == 0


def test_frame_embedding_tells_frames_apart():
    """Frames of a static clip are alike to a net without temporal layers, unless each frame embeds
    its position; a fresh embedding changes nothing (zero-initialised)."""
    flat = dict(temporal_conv=False, temporal_attention=False)
    x, c = _inputs(t=4)
    x = x[:, :, :1].expand_as(x).contiguous()  # every frame the same
    plain = _tiny(**flat)
    _perturb(plain)
    y = plain(x, c)
    assert (y - y[:, :, :1]).abs().max() < 1e-5
    net = _tiny(**flat, frame_embedding=True)
    net.load_state_dict(plain.state_dict(), strict=False)
    # zero-initialised: the same function at first (up to the float rounding of a per-frame matmul,
    # which a perturbed net amplifies)
    assert (net(x, c) - y).abs().max() < 5e-3 * y.abs().max()
    _perturb(net, keep=lambda name: not name.startswith("frame_embed"))
    y = net(x, c)
    assert (y - y[:, :, :1]).abs().amax(dim=(0, 1, 3, 4))[1:].min() > 1e-4
    down = _tiny(frame_embedding=True, temporal_downsample=True)  # merged frames average theirs
    assert down(torch.randn(1, 3, 8, 16, 16), c[:1]).shape == (1, 3, 8, 16, 16)
    image = net(x[:, :, :1], c)  # T = 1: no frame embedding, as without it
    torch.testing.assert_close(image, plain(x[:, :, :1], c))
    assert (y - plain(x, c)).abs().max() > 5e-2 * y.abs().max()  # the perturbed one does differ


def test_spatial_coords_tell_positions_apart():
    """A one-level net without attention levels (12 convolutions deep: padding reaches 12 px in) gives
    the same output at the centre pixels of a uniform frame -- it cannot tell where it is; with coordinate channels it can. Fresh
    coordinate weights are zero: the same function as the net without them."""
    grid = coordinate_channels(torch.zeros(2, 3, 4, 6))
    assert grid.shape == (2, 2, 4, 6)
    torch.testing.assert_close(grid[0, 1, 0], torch.tensor([-5, -3, -1, 1, 3, 5]) / 6)
    torch.testing.assert_close(grid[0, 0, :, 0], torch.tensor([-3.0, -1, 1, 3]) / 4)
    flat = dict(
        temporal_conv=False,
        temporal_attention=False,
        channel_mult=(1,),
        attention_resolutions=(),
        head_dim=16,
    )
    plain = _tiny(**flat)
    net = _tiny(**flat, spatial_coords=True)
    assert net.input_conv.in_channels == 5
    state = plain.state_dict()
    state["input_conv.weight"] = torch.cat(
        [state["input_conv.weight"], torch.zeros(16, 2, 3, 3)], 1
    )
    net.load_state_dict(state)
    _, c = _inputs()
    x = torch.ones(2, 3, 1, 32, 32)
    torch.testing.assert_close(net(x, c), plain(x, c))
    _perturb(plain)
    y = plain(x, c)[..., 16, :]  # (B, C, T, W): one row
    torch.testing.assert_close(y[..., 14:18], y[..., 14:15].expand_as(y[..., 14:18]))
    _perturb(net)
    y = net(x, c)[..., 16, :]
    assert (y[..., 15] - y[..., 16]).abs().max() > 1e-3  # neighbours at the centre differ
    assert (y - y.flip(-1)).abs().max() > 1e-3  # left is not right
    assert _tiny(spatial_coords=True, frame_conditioning=True).input_conv.in_channels == 9


def test_layout_prior_starts_as_identity_and_reads_the_prompt():
    """The layout read-out is zero-initialised (a net grown from one without it starts as it);
    trained, it is a prompt-dependent coarse clip resized to the input, zeros without a prompt."""
    x, c = _inputs(t=4, s=16)
    ctx = torch.randn(2, 5, CTX, generator=torch.Generator().manual_seed(0))
    plain = _tiny(context_dim=CTX, frame_embedding=True)
    _perturb(plain)
    y = plain(x, c, context=ctx)
    net = _tiny(context_dim=CTX, frame_embedding=True, layout_prior=True)
    state = plain.state_dict()
    w = state["input_conv.weight"]  # three more input channels, their weights perturbed too
    state["input_conv.weight"] = torch.cat([w, torch.randn(16, 3, 3, 3) * 0.1], 1)
    net.load_state_dict(state, strict=False)  # all but the layout MLP
    torch.testing.assert_close(net(x, c, context=ctx), y)
    _perturb(net, keep=lambda name: not name.startswith("layout"))
    assert (net(x, c, context=ctx) - y).abs().max() > 1e-3
    layout = net.layout.render(ctx, None, x)
    assert layout.shape == (2, 3, 4, 16, 16)
    assert (layout[0] - layout[1]).abs().max() > 1e-3  # the prompt sets it
    assert (layout[0] - layout[0, :, :1, :1, :1]).abs().max() > 1e-3  # it varies over (t, y, x)
    assert not net.layout.render(None, None, x).any()


def test_frame_conditioning():
    net = _tiny(frame_conditioning=True)
    assert net.input_conv.in_channels == 7  # [x_in, cond_frames * mask, mask]
    _perturb(net)
    x, c = _inputs(t=4)
    cond = torch.randn_like(x)
    none = torch.zeros(2, 4, dtype=torch.bool)
    # cond_frames=None is "nothing known"
    torch.testing.assert_close(net(x, c), net(x, c, cond_frames=cond, frame_mask=none))
    first = none.clone()
    first[:, 0] = True
    y = net(x, c, cond_frames=cond, frame_mask=first)
    assert (y - net(x, c)).abs().max() > 1e-4  # the known frame is used
    cond2 = cond.clone()
    cond2[:, :, 1:] = 0.0  # unknown frames' content does not matter
    torch.testing.assert_close(net(x, c, cond_frames=cond2, frame_mask=first), y)
    with pytest.raises(ValueError, match="frame_mask"):
        net(x, c, cond_frames=cond)
    with pytest.raises(ValueError, match="frame_conditioning"):
        _tiny()(x, c, cond_frames=cond, frame_mask=first)


@pytest.mark.parametrize("option", ["gradient_checkpointing", "temporal_checkpointing"])
def test_gradient_checkpointing_same_gradients(option):
    torch.manual_seed(0)
    ref = _tiny(context_dim=CTX)
    _perturb(ref)
    ck = _tiny(context_dim=CTX, **{option: True})
    ck.load_state_dict(ref.state_dict())
    x, c = _inputs(t=2)
    ctx = torch.randn(2, 3, CTX)
    for net in (ref, ck):
        net.train()
        net(x, c, context=ctx).square().mean().backward()
    for (name, p), q in zip(ref.named_parameters(), ck.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert sum(p.grad.abs().sum() for p in ref.parameters()) > 0


def _saved_bytes(net: UNet3D, x: torch.Tensor, c: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x, c)
    return total


def test_temporal_checkpointing_keeps_less_for_backward():
    torch.manual_seed(0)
    ref = _tiny()
    ck = _tiny(temporal_checkpointing=True)
    ck.load_state_dict(ref.state_dict())
    x, c = torch.randn(1, 3, 16, 16, 16), torch.rand(1) * 1000
    full, less = _saved_bytes(ref.train(), x, c), _saved_bytes(ck.train(), x, c)
    assert less < 0.9 * full, (less, full)
    # evaluation (no recomputation possible or needed) is unaffected
    with torch.no_grad():
        torch.testing.assert_close(ck.eval()(x, c), ref.eval()(x, c))


def test_temporal_downsample_handles_video_and_image():
    net = _tiny(temporal_downsample=True)  # T halved at all 3 downsamples: 16 -> 8 -> 4 -> 2
    _perturb(net)
    c = torch.rand(1) * 1000
    assert net(torch.randn(1, 3, 16, 16, 16), c).shape == (1, 3, 16, 16, 16)
    assert net(torch.randn(1, 3, 1, 16, 16), c).shape == (1, 3, 1, 16, 16)
    assert net(torch.randn(1, 3, 2, 16, 16), c).shape == (1, 3, 2, 16, 16)  # 2 -> 1 -> 1 -> 1
    with pytest.raises(ValueError, match="T=6"):
        net(torch.randn(1, 3, 6, 16, 16), c)
    partial = _tiny(temporal_downsample=(1,))
    assert partial(torch.randn(1, 3, 6, 16, 16), c).shape == (1, 3, 6, 16, 16)


def test_presets_parameter_counts():
    def count(preset):
        with torch.device("meta"):
            net = build_model("unet3d", preset, context_dim=64)
        return sum(p.numel() for p in net.parameters())

    assert 1.0e6 <= count("unet-tiny") <= 3.0e6
    assert 10e6 <= count("unet-small") <= 20e6
    assert count("unet-base") >= 100e6
    # sized to make-a-video-pytorch's SpaceTimeUnet(dim=18), 6.07M, within 10% (benchmarks/README.md)
    assert 0.9 * 6.07e6 <= count("unet-cpu") <= 1.1 * 6.07e6


def test_cpu_preset_halves_time_in_its_low_levels():
    # unet-cpu runs its 8x8 and 4x4 levels on T/2 and T/4 frames (Lumiere): T must split in 4
    net = build_model("unet3d", "unet-cpu")
    _perturb(net)
    c = torch.rand(1) * 1000
    x = torch.randn(1, 3, 4, 8, 8)
    assert net(x, c).shape == x.shape
    assert net(torch.randn(1, 3, 1, 8, 8), c).shape == (1, 3, 1, 8, 8)  # images still work
    with pytest.raises(ValueError, match="T=6"):
        net(torch.randn(1, 3, 6, 8, 8), c)


def test_build_model_validation_and_config_round_trip():
    with pytest.raises(ValueError, match="nope"):
        build_model("unet3d", "unet-tiny", nope=1)
    with pytest.raises(ValueError, match="unet-huge"):
        build_model("unet3d", "unet-huge")
    with pytest.raises(ValueError, match="transformer"):
        build_model("transformer", "unet-tiny")
    with pytest.raises(ValueError, match="attention_resolutions"):
        build_config("unet3d", "unet-tiny", attention_resolutions=(3,))
    with pytest.raises(ValueError, match="temporal_position"):
        build_config("unet3d", "unet-tiny", temporal_position="sinusoid")
    net = _tiny(context_dim=CTX)
    d = dataclasses.asdict(net.config)
    d["channel_mult"] = list(d["channel_mult"])  # as JSON gives it back
    again = build_model_from_config("unet3d", d)
    assert again.config == net.config
    assert UNET_PRESETS["unet-tiny"].context_dim is None  # presets are not mutated by overrides
    with pytest.raises(ValueError, match="bogus"):
        build_model_from_config("unet3d", {**d, "bogus": 1})


def test_overfits_one_batch():
    # a micro U-Net (2 levels, 8 channels) keeps this to a few seconds on a loaded CPU
    net = _tiny(
        context_dim=CTX,
        model_channels=8,
        channel_mult=(1, 2),
        attention_resolutions=(2,),
        head_dim=8,
    )
    x, c = _inputs(b=1, t=2, s=8)
    ctx = torch.randn(1, 3, CTX)
    target = torch.randn_like(x).clamp(-1, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = (net(x, c, context=ctx) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
