"""Video DiT: shapes, adaLN-Zero identity, windows (locality, padding, shift), mode equivalences,
frame / guidance conditioning, config errors, and a pipeline round trip with a falling loss."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from vidiff.config import load_config
from vidiff.data.shapes import vocabulary
from vidiff.models import build_config, build_model, build_model_from_config
from vidiff.models.dit import (
    DIT_PRESETS,
    DiTBlock,
    DiTConfig,
    VideoDiT,
    partition,
    plan_windows,
    unpartition,
)
from vidiff.pipeline import VideoPipeline

CTX = 8
MICRO = dict(hidden_size=24, depth=2, head_dim=12, mlp_ratio=2.0)


def _dit(seed=0, **kw) -> VideoDiT:
    torch.manual_seed(seed)
    return build_model("dit", "dit-tiny", **{**MICRO, **kw})


def _perturb(model, keep=lambda name: False, scale=0.1, seed=0):
    """Add noise to every parameter whose name ``keep`` rejects (zero-initialised ones included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not keep(name):
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def _inputs(b=2, c=3, t=4, s=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, s, s, generator=g), torch.rand(b, generator=g) * 1000


# --------------------------------------------------------------------------------------------------
# shapes and initialisation


@pytest.mark.parametrize("attention", ["full", "factorized", "windowed"])
@pytest.mark.parametrize("patch", [(1, 2, 2), (2, 2, 2), (1, 4, 4)])
def test_shapes_all_modes_and_patches(attention, patch):
    net = _dit(attention=attention, patch_size=patch, context_dim=CTX, window_size=(2, 1, 1))
    _perturb(net)
    ctx = torch.randn(2, 5, CTX)
    for t in (1, 3, 4):  # T = 1 (image) and T not a multiple of pt
        x, c = _inputs(t=t)
        out = net(x, c, context=ctx)
        assert out.shape == (2, 3, t, 8, 8)
        assert torch.isfinite(out).all() and out.abs().max() > 1e-3


def test_same_class_on_latents_with_qk_norm_and_sincos():
    """VAE latents: 4 (or 16) channels, any T (a causal VAE gives 1 + T/4 frames)."""
    for ch in (4, 16):
        net = _dit(in_channels=ch, out_channels=ch, qk_norm=True, position="sincos")
        _perturb(net)
        assert net.blocks[0].attn.q_norm.__class__.__name__ == "RMSNorm"
        x, c = _inputs(c=ch, t=5)
        out = net(x, c)
        assert out.shape == (2, ch, 5, 8, 8) and out.abs().max() > 1e-3


def test_fresh_model_outputs_zero_and_params_of_presets():
    net = _dit(out_channels=6, context_dim=CTX)
    x, c = _inputs()
    out = net(x, c, context=torch.randn(2, 3, CTX))
    assert out.shape == (2, 6, 4, 8, 8) and torch.equal(out, torch.zeros_like(out))
    tiny = build_model("dit", "dit-tiny", context_dim=64)
    n = sum(p.numel() for p in tiny.parameters())
    assert 2e6 <= n <= 5e6, n
    assert set(DIT_PRESETS) == {"dit-tiny", "dit-small", "dit-base"}


def test_adaln_zero_blocks_start_as_identity():
    # float64: the equality is exact math
    net = _dit(context_dim=CTX, attention="full")
    fresh = lambda n: n.startswith("blocks.") and (".ada." in n or ".cross.proj." in n)
    _perturb(net, keep=fresh)  # everything random except the adaLN-Zero gates / cross-attn output
    net = net.double()
    no_blocks = copy.deepcopy(net)
    no_blocks.blocks = nn.ModuleList()
    x, c = _inputs()
    x, c, ctx = x.double(), c.double(), torch.randn(2, 3, CTX, dtype=torch.float64)
    out = net(x, c, context=ctx)
    assert out.abs().max() > 1e-2  # not vacuous
    torch.testing.assert_close(out, no_blocks(x, c, context=ctx), atol=1e-12, rtol=0)
    _perturb(net.blocks[0].ada)  # open the gates: the block now acts
    assert not torch.allclose(net(x, c, context=ctx), out)


def test_sincos_position_and_gradient_checkpointing_match():
    for position in ("rope", "sincos"):
        net = _perturb(_dit(position=position, context_dim=CTX)).train()
        ck = copy.deepcopy(net)
        ck.config.gradient_checkpointing = True
        x, c = _inputs()
        ctx = torch.randn(2, 3, CTX)
        net(x, c, context=ctx).square().sum().backward()
        ck(x, c, context=ctx).square().sum().backward()
        for (n, p), q in zip(net.named_parameters(), ck.parameters()):
            torch.testing.assert_close(p.grad, q.grad, msg=n)


def test_rope_alone_cannot_place_anything_absolute_position_can():
    """A clip that is the same everywhere gives every token the same value; attention then averages
    equal values whatever its RoPE weights, so a RoPE-only net's output is the same at every place
    and frame -- it cannot put a prompted object on the left (docs/latent-dit.md). ``sincos`` and
    ``rope+sincos`` break the tie."""
    x = torch.ones(1, 3, 4, 8, 8)
    c = torch.full((1,), 500.0)
    for position, placed in (("rope", False), ("sincos", True), ("rope+sincos", True)):
        for attention in ("full", "factorized"):
            net = _perturb(_dit(position=position, attention=attention)).eval()
            with torch.no_grad():
                out = net(x, c)
            spread = (out - out[:, :, :1, :1, :1]).abs().amax().item()
            # a 2x2 patch's four pixels may differ; tokens may not
            token_spread = (out[..., ::2, ::2] - out[:, :, :1, :1, :1]).abs().amax().item()
            assert spread > 1e-4, (position, attention)
            assert (token_spread > 1e-4) == placed, (position, attention, token_spread)


def test_layout_prior_starts_as_identity_and_reads_the_prompt():
    """The DiT's layout read-out is zero-initialised (a net with it computes what one without it
    does), joins the input as channels after the frame-conditioning ones, and once trained gives a
    prompt-dependent coarse clip."""
    x, c = _inputs()
    ctx = torch.randn(2, 3, CTX, generator=torch.Generator().manual_seed(1))
    kw = dict(context_dim=CTX, position="rope+sincos", frame_conditioning=True)
    plain = _perturb(_dit(**kw))
    y = plain(x, c, context=ctx)
    net = _dit(layout_prior=True, **kw)
    state = plain.state_dict()
    w = net.input_channels_view(net.patch_embed.weight).detach().clone()  # (D, patch, in + 3)
    w[..., : w.shape[-1] - 3] = plain.input_channels_view(state["patch_embed.weight"])
    state["patch_embed.weight"] = w.reshape(net.patch_embed.weight.shape)
    missing = net.load_state_dict(state, strict=False).missing_keys
    assert sorted(missing) == [
        "layout.0.bias",
        "layout.0.weight",
        "layout.2.bias",
        "layout.2.weight",
    ]
    torch.testing.assert_close(net(x, c, context=ctx), y)
    _perturb(net, keep=lambda name: not name.startswith("layout"))
    assert (net(x, c, context=ctx) - y).abs().max() > 1e-3
    layout = net.layout.render(ctx, None, x)
    assert layout.shape == (2, 3, *x.shape[2:])
    assert (layout[0] - layout[1]).abs().max() > 1e-3  # the prompt sets it
    assert not net.layout.render(None, None, x).any()
    assert _dit(layout_prior=True).layout is None  # no text, no layout


# --------------------------------------------------------------------------------------------------
# windows


@pytest.mark.parametrize(
    "grid,window,shift",
    [((3, 4, 4), (2, 2, 2), False), ((3, 4, 4), (2, 2, 2), True), ((5, 3, 4), (4, 2, 8), True)],
)
def test_partition_round_trip(grid, window, shift):
    plan = plan_windows(grid, window, shift)
    x = torch.randn(2, grid[0] * grid[1] * grid[2], 5)
    win = partition(x, plan)
    assert win.shape[1] == plan.tokens
    torch.testing.assert_close(unpartition(win, plan, 2), x, atol=0, rtol=0)


def _window_id(coord, plan):
    return tuple((c + f) // w for c, f, w in zip(coord, plan.front, plan.window))


@pytest.mark.parametrize("shift", [False, True])
def test_windowed_block_is_local(shift):
    """One spatio-temporal window block: changing a token changes exactly outputs in its window."""
    cfg = DiTConfig(**MICRO, attention="windowed", context_dim=None)
    torch.manual_seed(0)
    block = _perturb(DiTBlock(cfg, (2, 2, 2), shift)).double()
    grid = (3, 4, 4)  # T not a multiple of the window: padded and masked
    plan = plan_windows(grid, block.window, shift)
    assert plan.needs_pad
    x = torch.randn(1, 48, 24, dtype=torch.float64)
    emb = torch.randn(1, 24, dtype=torch.float64)
    coords = [(t, h, w) for t in range(3) for h in range(4) for w in range(4)]
    src = 2 * 16 + 1 * 4 + 1  # token (2, 1, 1)
    y = x.clone()
    y[0, src] += torch.randn(24, dtype=torch.float64)  # not a constant: LayerNorm would remove it
    diff = (block(y, emb, grid, None, None, None) - block(x, emb, grid, None, None, None)).abs()
    changed = {coords[i] for i in range(48) if diff[0, i].max() > 1e-12}
    same_window = {p for p in coords if _window_id(p, plan) == _window_id(coords[src], plan)}
    assert changed == same_window and len(changed) > 1


def test_padded_window_equals_attention_over_real_tokens_only():
    """A window holding one real frame and one padded frame equals that frame attended alone."""
    cfg = DiTConfig(**MICRO, attention="factorized")
    torch.manual_seed(0)
    block = _perturb(DiTBlock(cfg, (2, None, None), False)).double()
    x = torch.randn(
        1, 3 * 4, 24, dtype=torch.float64
    )  # grid (3, 2, 2): windows {t0, t1}, {t2, pad}
    emb = torch.randn(1, 24, dtype=torch.float64)
    full = block(x, emb, (3, 2, 2), None, None, None)
    torch.testing.assert_close(
        full[:, 8:], block(x[:, 8:], emb, (1, 2, 2), None, None, None), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        full[:, :8], block(x[:, :8], emb, (2, 2, 2), None, None, None), atol=1e-12, rtol=0
    )


def test_windowed_model_is_local_in_pixels():
    """A one-block windowed DiT with 2x2 spatial windows: a pixel only affects its frame's window."""
    net = _dit(
        attention="windowed", depth=1, patch_size=(1, 1, 1), spatial_window=(2, 2), context_dim=CTX
    )
    _perturb(net)
    net = net.double()
    x, c = _inputs(b=1, t=2, s=4)
    x, c, ctx = x.double(), c.double(), torch.randn(1, 3, CTX, dtype=torch.float64)
    y = x.clone()
    y[0, :, 1, 3, 0] += 1.0  # frame 1, row 3, column 0 -> window (t=1, rows 2-3, cols 0-1)
    diff = (net(y, c, context=ctx) - net(x, c, context=ctx)).abs().amax(dim=(0, 1))  # (T, H, W)
    expect = torch.zeros(2, 4, 4, dtype=torch.bool)
    expect[1, 2:, :2] = True
    assert torch.equal(diff > 1e-12, expect)


# --------------------------------------------------------------------------------------------------
# mode equivalences


def test_factorized_image_skips_temporal_blocks_and_fresh_temporal_is_per_frame():
    net = _dit(attention="factorized", depth=4, context_dim=CTX)
    temporal = lambda n: n.startswith(("blocks.1.", "blocks.3."))
    assert [b.is_temporal for b in net.blocks] == [False, True, False, True]
    _perturb(net, keep=temporal)  # spatial blocks random, temporal blocks as built (gate 0)
    net = net.double()
    x, c = _inputs(t=3)
    x, c, ctx = x.double(), c.double(), torch.randn(2, 3, CTX, dtype=torch.float64)
    video = net(x, c, context=ctx)
    frames = torch.cat([net(x[:, :, i : i + 1], c, context=ctx) for i in range(3)], dim=2)
    assert video.abs().max() > 1e-2
    torch.testing.assert_close(video, frames, atol=1e-10, rtol=0)  # RoPE: relative positions
    image = net(x[:, :, :1], c, context=ctx)
    _perturb(net, keep=lambda n: not temporal(n), seed=3)  # now the temporal weights change
    torch.testing.assert_close(net(x[:, :, :1], c, context=ctx), image, atol=0, rtol=0)
    assert not torch.allclose(net(x, c, context=ctx), video)


def test_full_equals_windowed_when_windows_cover_the_grid():
    full = _perturb(_dit(attention="full", context_dim=CTX)).double()
    win = _dit(attention="windowed", window_size=(8, 8, 8), window_shift=True, context_dim=CTX)
    win.load_state_dict(full.state_dict())
    win = win.double()
    x, c = _inputs(t=1)  # one frame: the spatial windows (whole frame) are the full grid too
    x, c, ctx = x.double(), c.double(), torch.randn(2, 3, CTX, dtype=torch.float64)
    torch.testing.assert_close(win(x, c, context=ctx), full(x, c, context=ctx), atol=1e-12, rtol=0)


def test_temporal_padding_equals_explicit_replicate_padding():
    net = _perturb(_dit(attention="full", patch_size=(2, 2, 2))).double()
    x, c = _inputs(t=3)
    x, c = x.double(), c.double()
    padded = torch.cat([x, x[:, :, -1:]], dim=2)
    torch.testing.assert_close(net(x, c), net(padded, c)[:, :, :3], atol=1e-12, rtol=0)


# --------------------------------------------------------------------------------------------------
# conditioning


def test_frame_conditioning_channels():
    net = _perturb(_dit(frame_conditioning=True, patch_size=(1, 2, 2)))
    assert net.patch_embed.in_features == (2 * 3 + 1) * 4  # [x, cond * mask, mask] per patch
    x, c = _inputs(t=4)
    frames = torch.randn_like(x)
    mask = torch.tensor([[True, False, False, False], [False, False, False, False]])
    out = net(x, c, cond_frames=frames, frame_mask=mask)
    # nothing known == no conditioning passed
    torch.testing.assert_close(out[1], net(x, c)[1], atol=1e-6, rtol=0)
    # unknown frames' content is ignored, known frames' content is used
    other = frames.clone()
    other[:, :, 1:] = torch.randn_like(other[:, :, 1:])
    torch.testing.assert_close(net(x, c, cond_frames=other, frame_mask=mask), out)
    other[0, :, 0] += 1.0
    assert not torch.allclose(net(x, c, cond_frames=other, frame_mask=mask)[0], out[0])


def test_guidance_embedding_starts_unguided():
    plain = _perturb(_dit(context_dim=CTX))
    guided = _dit(context_dim=CTX, guidance_embed=True)
    missing, unexpected = guided.load_state_dict(plain.state_dict(), strict=False)
    assert all(k.startswith("guidance_embed.") for k in missing) and not unexpected
    x, c = _inputs()
    ctx = torch.randn(2, 3, CTX)
    w = torch.tensor([1.0, 7.5])
    ref = plain(x, c, context=ctx)
    torch.testing.assert_close(guided(x, c, context=ctx, guidance=w), ref, atol=0, rtol=0)
    _perturb(guided.guidance_embed)
    a = guided(x, c, context=ctx, guidance=w)
    assert not torch.allclose(a, ref)
    assert not torch.allclose(a, guided(x, c, context=ctx, guidance=torch.tensor([3.0, 3.0])))
    with pytest.raises(ValueError, match="guidance_embed=False"):
        plain(x, c, guidance=w)


# --------------------------------------------------------------------------------------------------
# config errors and registry


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(attention="global"), "attention must be one of"),
        (dict(position="learned"), "position must be one of"),
        (dict(patch_size=(1, 2)), "patch_size"),
        (dict(window_size=(0, 2, 2)), "window_size"),
        (dict(hidden_size=24, head_dim=5), "head_dim=5"),
        (dict(hidden_size=20, head_dim=4), "head dim 4"),
        (dict(depth=0), "depth"),
    ],
)
def test_config_errors_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        build_config("dit", "dit-tiny", **kw)


def test_bad_inputs_and_unknown_keys_are_named():
    net = _dit()
    x, c = _inputs()
    with pytest.raises(ValueError, match="divisible by the patch size"):
        net(x[..., :7], c)
    with pytest.raises(ValueError, match="in_channels=3"):
        net(x[:, :2], c)
    with pytest.raises(ValueError, match="frame_conditioning=False"):
        net(x, c, cond_frames=x, frame_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="patch_szie"):
        build_model("dit", "dit-tiny", patch_szie=(1, 2, 2))
    with pytest.raises(ValueError, match="patch_szie"):
        DiTConfig.from_dict({"patch_szie": [1, 2, 2]})
    with pytest.raises(ValueError, match="dit-huge"):
        build_model("dit", "dit-huge")
    cfg = dataclasses.asdict(_dit(window_size=(2, 2, 2)).config)
    rebuilt = build_model_from_config("dit", {**cfg, "patch_size": [1, 2, 2]})
    assert rebuilt.config == DiTConfig(**cfg)


# --------------------------------------------------------------------------------------------------
# pipeline


def _micro_pipeline(*overrides: str) -> VideoPipeline:
    cfg = load_config(
        None,
        [
            "model.arch=dit",
            "model.preset=dit-tiny",
            "model.net={hidden_size: 24, depth: 2, head_dim: 12, mlp_ratio: 2.0, "
            "patch_size: [1, 2, 2]}",
            f"model.text={{vocab: {vocabulary()}, dim: 16, depth: 1, num_heads: 2}}",
            "data.num_frames=4",
            "data.size=8",
            "diffusion.parameterization=flow",
            "diffusion.loss={shift: 2.0}",
            "diffusion.sigmas={shift: 2.0}",
            "diffusion.sampler=euler",
            "diffusion.steps=3",
            *overrides,
        ],
    )
    torch.manual_seed(0)
    return VideoPipeline(cfg.pipeline_config())


PROMPTS = ["a red circle moving right", "a blue square moving up"]


def test_pipeline_round_trip(tmp_path):
    pipe = _micro_pipeline()
    assert type(pipe.net).__name__ == "VideoDiT" and pipe.net.config.frame_conditioning
    _perturb(pipe, scale=0.02)
    pipe.eval()
    video = torch.rand(2, 3, 4, 8, 8)
    loss = pipe.training_loss(video, PROMPTS, [0, 1])
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    out = pipe.generate(PROMPTS, [3, 4])
    assert out.shape == (2, 3, 4, 8, 8) and out.min() >= 0 and out.max() <= 1
    for sampler in ("dpmpp_2m", "heun"):  # every sampler through the common interface
        assert torch.isfinite(pipe.generate(PROMPTS[:1], [3], sampler=sampler, steps=2)).all()
    known = torch.rand(1, 3, 4, 8, 8)
    mask = torch.tensor([[True, False, False, False]])
    i2v = pipe.generate(PROMPTS[:1], [3], known_frames=known, frame_mask=mask)
    torch.testing.assert_close(i2v[0, :, 0], known[0, :, 0], atol=1e-5, rtol=0)
    pipe.save(tmp_path / "model")
    loaded = VideoPipeline.load(tmp_path / "model")
    assert loaded.net.config == pipe.net.config
    torch.testing.assert_close(loaded.generate(PROMPTS, [3, 4]), out, atol=1e-6, rtol=0)


def test_pipeline_loss_falls_when_overfitting():
    pipe = _micro_pipeline().train()
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 1, 1, 1, generator=g).expand(2, 3, 4, 8, 8).contiguous()
    opt = torch.optim.Adam(pipe.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = pipe.training_loss(video, PROMPTS, [0, 1]).mean()  # same noise every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
