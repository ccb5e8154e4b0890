"""Conditioning as data (vidiff/nn/conditioning.py): the specs a network declares, their checks, their
null values under classifier-free guidance, and a conditioning added from outside the model files."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.models import build_model
from vidiff.nn.conditioning import (
    CONDITIONINGS,
    CondSpec,
    builtin_conditions,
    loss_mask,
    null_conditioning,
)
from vidiff.nn.embeddings import TimestepEmbedding

CTX = 8


def _unet(**kw):
    kw = {"model_channels": 8, "channel_mult": (1, 2), "head_dim": 8, "context_dim": CTX, **kw}
    return build_model("unet3d", "unet-tiny", attention_resolutions=(2,), **kw).eval()


def _dit(**kw):
    kw = {"hidden_size": 24, "depth": 2, "head_dim": 12, "patch_size": (1, 4, 4), **kw}
    return build_model("dit", "dit-tiny", **{"context_dim": CTX, **kw}).eval()


def _perturb(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)


X = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
C_NOISE = torch.tensor([100.0, 700.0])


def test_networks_declare_their_conditions():
    names = [s.name for s in _unet(frame_conditioning=True, guidance_embed=True).conditions]
    assert names == ["context", "context_mask", "cond_frames", "frame_mask", "guidance"]
    assert [s.name for s in _dit(context_dim=None).conditions] == []
    kinds = {s.name: s.kind for s in _dit(frame_conditioning=True).conditions}
    assert kinds == {
        "context": "tokens",
        "context_mask": "mask",
        "cond_frames": "channels",
        "frame_mask": "mask",
    }


@pytest.mark.parametrize("make", [_unet, _dit])
def test_bad_conditioning_is_named(make):
    net = make(frame_conditioning=True)
    with pytest.raises(ValueError, match=r"unknown conditioning 'camera'.*takes \['cond_frames'"):
        net(X, C_NOISE, camera=torch.zeros(2, 6))
    with pytest.raises(ValueError, match="guidance given but the model has guidance_embed=False"):
        net(X, C_NOISE, guidance=2.0)
    with pytest.raises(ValueError, match=r"context must be \(B, L, 8\) with B=2, got \(2, 5, 7\)"):
        net(X, C_NOISE, context=torch.zeros(2, 5, 7))
    ctx = torch.zeros(2, 5, CTX)
    with pytest.raises(ValueError, match=r"context_mask must be bool \(B, L\) with B=2, L=5"):
        net(X, C_NOISE, context=ctx, context_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="context_mask must be bool"):
        net(X, C_NOISE, context=ctx, context_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="context_mask given without context"):
        net(X, C_NOISE, context_mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"cond_frames must be \(B, C, T, H, W\) with B=2, C=3"):
        net(X, C_NOISE, cond_frames=X[:, :, :2], frame_mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"frame_mask must be bool \(B, T\) with B=2, T=4"):
        net(X, C_NOISE, cond_frames=X, frame_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="cond_frames and frame_mask go together"):
        net(X, C_NOISE, cond_frames=X)
    guided = make(guidance_embed=True)
    with pytest.raises(ValueError, match="guidance_embed=True: pass guidance"):
        guided(X, C_NOISE)
    with pytest.raises(ValueError, match=r"guidance must be \(B,\) with B=2, got \(3,\)"):
        guided(X, C_NOISE, guidance=torch.ones(3))
    # a number is the same weight for every sample
    _perturb(guided)
    torch.testing.assert_close(
        guided(X, C_NOISE, guidance=2.5), guided(X, C_NOISE, guidance=torch.full((2,), 2.5))
    )


class Recorder:
    """A denoiser that returns x and records the cond of its (one, batched) call."""

    def __init__(self, conditions):
        self.conditions, self.calls = conditions, []

    def __call__(self, x, sigma, **cond):
        self.calls.append(cond)
        return x + sum(v.float().flatten(1).sum(1).view(-1, 1) for v in cond.values())[:, :, None]


def test_cfg_reads_the_null_value_of_each_spec():
    specs = (
        *builtin_conditions(
            SimpleNamespace(
                context_dim=2,
                pooled_context=True,
                frame_conditioning=True,
                in_channels=1,
                guidance_embed=False,
            )
        ),
        CondSpec(
            "camera", "vector", ("B", 6), "conditions", null="zeros", embed=nn.Linear, module="m"
        ),
    )
    b = 2
    cond = {
        "context": torch.ones(b, 3, 2),
        "context_mask": torch.ones(b, 3, dtype=torch.bool),
        "cond_frames": torch.ones(b, 1, 4, 2, 2),
        "frame_mask": torch.ones(b, 4, dtype=torch.bool),
        "camera": torch.ones(b, 6),
    }
    source = {
        "context": torch.full((1, 1, 2), 5.0),
        "context_mask": torch.ones(1, 1, dtype=torch.bool),
    }
    uncond = null_conditioning(specs, cond, source)
    assert sorted(uncond) == ["context", "context_mask"]  # "source" keys only
    assert null_conditioning(specs, {}, source) == {}  # nothing to guide (unconditional model)
    inner = Recorder(specs)
    cfg_denoiser(inner, 3.0, uncond)(torch.zeros(b, 1, 4, 2, 2), torch.ones(b), **cond)
    seen = inner.calls[0]
    assert seen["context"].shape == (2 * b, 3, 2)  # the empty prompt, padded to the longer length
    assert (seen["context"][b:, 0] == 5).all() and (seen["context"][b:, 1:] == 0).all()
    assert not seen["context_mask"][b:, 1:].any() and seen["context_mask"][b:, 0].all()
    assert torch.equal(seen["cond_frames"][b:], cond["cond_frames"])  # "keep": known in both halves
    assert torch.equal(seen["frame_mask"][b:], cond["frame_mask"])
    assert not seen["camera"][b:].any() and seen["camera"][:b].all()  # "zeros"
    assert torch.equal(loss_mask(specs, cond), cond["frame_mask"])
    assert loss_mask(specs, {"context": cond["context"]}) is None


def _toy_conditionings(monkeypatch, per_frame: bool):
    """Register two conditionings the model files know nothing about: a 2-channel per-frame heat
    map (channels) and a camera motion, 6 numbers per clip or per frame (vector)."""

    def heat_channels(x, heat, _mask):
        return torch.zeros_like(x[:, :2]) if heat is None else heat.to(x.dtype)

    class Camera(nn.Module):  # zero-initialised: a fresh camera embedding adds nothing
        def __init__(self, width):
            super().__init__()
            self.proj = nn.Linear(6, width)
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

        def forward(self, motion):
            return self.proj(motion)

    shape = ("B", "T", 6) if per_frame else ("B", 6)
    monkeypatch.setitem(
        CONDITIONINGS,
        "heat",
        lambda cfg: (
            CondSpec("heat", "channels", ("B", 2, "T", "H", "W"), "conditions", null="zeros",
                     channels=2, to_channels=heat_channels),
        ),
    )  # fmt: skip
    monkeypatch.setitem(
        CONDITIONINGS,
        "camera",
        lambda cfg: (
            CondSpec("camera", "vector", shape, "conditions", null="zeros", embed=Camera,
                     module="camera_embed", per_frame=per_frame),
        ),
    )  # fmt: skip


@pytest.mark.parametrize("per_frame", [False, True], ids=["per_clip", "per_frame"])
@pytest.mark.parametrize("arch", ["unet3d", "dit"])
def test_an_added_conditioning_starts_as_no_change_and_then_conditions(
    arch, per_frame, monkeypatch
):
    _toy_conditionings(monkeypatch, per_frame)
    make = _unet if arch == "unet3d" else _dit
    torch.manual_seed(0)
    base = make()
    _perturb(base)
    torch.manual_seed(0)
    grown = make(conditions=("heat", "camera"))
    assert [s.name for s in grown.conditions][-2:] == ["heat", "camera"]
    # the trained weights carry over; the new ones are the fresh zero-initialised ones
    state = grown.state_dict()
    first = "input_conv.weight" if arch == "unet3d" else "patch_embed.weight"
    for k, v in base.state_dict().items():
        if k == first and arch == "unet3d":
            assert not state[k][:, 3:].any()  # the heat map's input weights start at zero
            state[k][:, :3] = v
        elif k == first:
            w = state[k].view(v.shape[0], -1, 5)
            assert not w[:, :, 3:].any()
            w[:, :, :3] = v.view(v.shape[0], -1, 3)
        else:
            state[k] = v
    grown.load_state_dict(state)
    assert (
        not set(grown.state_dict())
        - set(base.state_dict())
        - {
            "camera_embed.proj.weight",
            "camera_embed.proj.bias",
        }
    )
    g = torch.Generator().manual_seed(2)
    ctx = torch.randn(2, 3, CTX, generator=g)
    heat = torch.rand(2, 2, 4, 8, 8, generator=g)
    camera = torch.randn(2, 4, 6, generator=g) if per_frame else torch.randn(2, 6, generator=g)
    with torch.no_grad():
        ref = base(X, C_NOISE, context=ctx)
        out = grown(X, C_NOISE, context=ctx, heat=heat, camera=camera)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grown(X, C_NOISE, context=ctx), ref, atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match=r"heat must be \(B, 2, T, H, W\)"):
            grown(X, C_NOISE, heat=heat[:, :1])
        # once trained (here: perturbed), each conditioning changes the output
        _perturb(grown, seed=3)
        out = grown(X, C_NOISE, context=ctx, heat=heat, camera=camera)
        assert not torch.allclose(out, grown(X, C_NOISE, context=ctx, camera=camera), atol=1e-4)
        assert not torch.allclose(out, grown(X, C_NOISE, context=ctx, heat=heat), atol=1e-4)
        if per_frame:  # frame i's camera reaches frame i
            moved = camera.clone()
            moved[:, 3] += 1
            diff = (grown(X, C_NOISE, context=ctx, heat=heat, camera=moved) - out).abs()
            assert diff[:, :, 3].mean() > diff[:, :, 0].mean()


def test_per_frame_vectors_follow_the_dit_patches(monkeypatch):
    """With pt = 2 and T = 5 the DiT pads T to 6 and a token spans two frames: a per-frame
    embedding is averaged over them, so the output still has T frames and reads every frame's."""
    _toy_conditionings(monkeypatch, per_frame=True)
    net = _dit(conditions=("camera",), patch_size=(2, 4, 4))
    _perturb(net)
    x = torch.randn(2, 3, 5, 8, 8, generator=torch.Generator().manual_seed(4))
    camera = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = net(x, C_NOISE, camera=camera)
        assert out.shape == x.shape
        for f in range(5):
            moved = camera.clone()
            moved[:, f] += 1
            assert not torch.allclose(net(x, C_NOISE, camera=moved), out, atol=1e-5)
    with pytest.raises(ValueError, match="unknown conditioning 'nope'"):
        _dit(conditions=("nope",))


def test_the_guidance_weight_is_a_vector_spec():
    (spec,) = [s for s in _dit(guidance_embed=True).conditions if s.name == "guidance"]
    assert spec.kind == "vector" and spec.required and spec.module == "guidance_embed"
    assert isinstance(spec.embed(16), TimestepEmbedding)


def test_a_dataset_field_reaches_the_network_through_training(monkeypatch):
    """A conditioning added by registry + ``model.net.conditions`` trains from the item's ``cond``
    field: collate stacks it, ``training_loss`` passes it to the network, which checks it."""
    from tests.test_pipeline import micro_pipeline
    from vidiff.train.data import collate_train

    _toy_conditionings(monkeypatch, per_frame=True)
    pipe = micro_pipeline(
        "model.net={model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2], "
        "head_dim: 8, conditions: [camera]}"
    )
    assert pipe.conditions[-1].name == "camera"
    g = torch.Generator().manual_seed(0)
    items = [
        {"video": torch.rand(3, 4, 8, 8, generator=g), "caption": "a red circle", "seed": s,
         "cond": {"camera": torch.randn(4, 6, generator=g)}}
        for s in (1, 2)
    ]  # fmt: skip
    batch = collate_train(items)
    assert batch["cond"]["camera"].shape == (2, 4, 6)
    with torch.no_grad():
        pipe.net.camera_embed.proj.weight.normal_(generator=g)
    loss = pipe.training_loss(batch["video"], batch["caption"], batch["seed"], **batch["cond"])
    still = pipe.training_loss(batch["video"], batch["caption"], batch["seed"])
    assert loss.shape == (2,) and not torch.allclose(loss, still)
    with pytest.raises(ValueError, match=r"camera must be \(B, T, 6\)"):
        pipe.training_loss(batch["video"], batch["caption"], batch["seed"], camera=torch.ones(2, 6))
    # and at sampling time (a CLI option builds the tensor): CFG gives it its null value, zeros
    camera = torch.randn(2, 4, 6, generator=g) * 3
    prompts = ["a red circle moving right"] * 2
    with_camera = pipe.generate(prompts, [0, 1], cfg=2.0, cond={"camera": camera})
    assert not torch.allclose(with_camera, pipe.generate(prompts, [0, 1], cfg=2.0))
    # a video depends on its own camera, not on its batch
    alone = pipe.generate(prompts[1:], [1], cfg=2.0, cond={"camera": camera[1:]})
    torch.testing.assert_close(alone[0], with_camera[1])
