"""Samplers driven by exact (closed-form) denoisers; seeded noise; guidance and frame conditioning."""

from types import SimpleNamespace

import pytest
import torch

from vidiff.diffusion.conditioning import frame_conditioned, random_frame_mask
from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.diffusion.precond import FlowPrecond
from vidiff.diffusion.schedules import get_sigmas_flow, get_sigmas_karras
from vidiff.nn.conditioning import builtin_conditions
from vidiff.sampling import SAMPLERS, SeededNoise, ddim_step, ddim_x0_target, sample
from vidiff.sampling.samplers import sample_ddim, sample_ddpm, sample_euler, sample_euler_ancestral

MU = torch.tensor([0.5, -0.3, 0.0], dtype=torch.float64)
STD = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
POINTS = torch.tensor([[-1.0, -1.0], [1.0, 0.5], [0.2, 1.5]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def gauss_d(x, sigma):
    """Exact D for x0 ~ N(MU, diag(STD^2)) (x: (B, 3))."""
    s2, sig2 = STD.to(x) ** 2, sigma.to(x)[:, None] ** 2
    return MU.to(x) + s2 / (s2 + sig2) * (x - MU.to(x))


def gauss_ode_exact(x_T, sigma_T):
    """Probability-flow ODE solution at sigma = 0 for the Gaussian: each coordinate scales linearly."""
    mu, s = MU.to(x_T), STD.to(x_T)
    return mu + s / (s**2 + sigma_T**2).sqrt() * (x_T - mu)


def mixture_d(x, sigma):
    """Exact D for a mixture of weighted points: softmax(log w_k - |x - p_k|^2 / 2 sigma^2) @ p."""
    d2 = ((x[:, None, :] - POINTS.to(x)) ** 2).sum(-1)
    logits = WEIGHTS.to(x).log() - d2 / (2 * sigma.to(x)[:, None] ** 2)
    return logits.softmax(-1) @ POINTS.to(x)


def _start(shape, sigmas, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * sigmas[0]


SECOND_ORDER = ("heun", "dpmpp_2m")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_gaussian_statistics(name):
    # First-order samplers converge like 1/n: at 200 steps their std is ~2% low (at 40: ~13%), while
    # the second-order ones are within 0.5% at 40 steps.
    steps, rtol = (40, 0.02) if name in SECOND_ORDER else (200, 0.045)
    sigmas = get_sigmas_karras(steps, 0.002, 80.0)
    x = _start((10000, 3), sigmas, 0)  # < 32768 elements: torch stays single-threaded
    g = torch.Generator().manual_seed(123)
    out = sample(
        gauss_d, x, sigmas, sampler=name, noise=lambda x: torch.randn(x.shape, generator=g)
    )
    assert out.dtype == torch.float32 and out.shape == x.shape
    mean, std = out.double().mean(0), out.double().std(0)
    assert torch.allclose(mean, MU, atol=0.03), (name, mean)
    assert torch.allclose(std, STD, rtol=rtol), (name, std)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_mixture_mode_weights(name):
    sigmas = get_sigmas_karras(30, 0.002, 80.0)
    x = _start((8000, 2), sigmas, 1)
    g = torch.Generator().manual_seed(123)
    out = sample(
        mixture_d, x, sigmas, sampler=name, noise=lambda x: torch.randn(x.shape, generator=g)
    )
    dist = torch.cdist(out, POINTS)
    nearest = dist.argmin(1)
    frac = torch.bincount(nearest, minlength=3).float() / len(out)
    assert dist.min(1).values.max() < 1e-2  # every sample lands on a data point
    assert torch.allclose(frac, WEIGHTS, atol=0.025), (name, frac)  # 4 standard errors


def test_second_order_beats_euler():
    sigmas_T = 80.0
    x = _start((512, 3), [sigmas_T], 2).double()
    exact = gauss_ode_exact(x, torch.tensor(sigmas_T, dtype=torch.float64))
    err = {}
    for name in ("euler", "heun", "dpmpp_2m"):
        for n in (16, 32, 64):
            out = SAMPLERS[name](gauss_d, x, get_sigmas_karras(n, 0.002, sigmas_T))
            err[name, n] = (out - exact).abs().max().item()
    # measured: euler 0.53, 0.27, 0.13; heun 0.20, 0.043, 0.010; dpmpp_2m 0.23, 0.046, 0.010
    for n in (32, 64):
        assert (
            err["heun", n] < 0.4 * err["euler", n] and err["dpmpp_2m", n] < 0.4 * err["euler", n]
        ), err
    # convergence orders: doubling the steps halves Euler's error, quarters the 2nd-order ones'
    assert 0.4 < err["euler", 64] / err["euler", 32] < 0.6, err
    assert (
        err["heun", 64] / err["heun", 32] < 0.3 and err["dpmpp_2m", 64] / err["dpmpp_2m", 32] < 0.3
    ), err


def test_sampler_identities():
    sigmas = get_sigmas_karras(12, 0.01, 20.0)
    x = _start((64, 2), sigmas, 3)
    seeds = list(range(64))
    # DDIM at eta = 0 is the Euler method
    torch.testing.assert_close(
        sample_ddim(mixture_d, x, sigmas), sample_euler(mixture_d, x, sigmas), atol=1e-5, rtol=1e-5
    )
    # ancestral Euler == DDIM with the same eta, and eta = 1 == DDPM posterior sampling (same noise)
    a = sample_euler_ancestral(mixture_d, x, sigmas, noise=SeededNoise(seeds), eta=0.5)
    b = sample_ddim(mixture_d, x, sigmas, noise=SeededNoise(seeds), eta=0.5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    c = sample_ddpm(mixture_d, x, sigmas, noise=SeededNoise(seeds))
    d = sample_ddim(mixture_d, x, sigmas, noise=SeededNoise(seeds), eta=1.0)
    torch.testing.assert_close(c, d, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(b, d)
    # one exposed DDIM step == the first step of the sampler
    x1, den = ddim_step(mixture_d, x, sigmas[0], sigmas[1])
    steps = []
    sample_ddim(mixture_d, x, sigmas[:3], callback=steps.append)
    torch.testing.assert_close(den, steps[0]["denoised"])
    torch.testing.assert_close(x1, steps[1]["x"])
    # the distillation target inverts a DDIM step
    torch.testing.assert_close(
        ddim_x0_target(x, sigmas[0], x1, sigmas[1]), den, atol=1e-4, rtol=1e-4
    )


def test_flow_euler_equivalence():
    """sample_euler through FlowPrecond is the rectified-flow Euler sampler x_t += dt * u(x_t, t)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 3)

    class VelocityNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x, c_noise):
            return self.lin(x) * (1 + c_noise[:, None] / 1000)

    net = VelocityNet()
    sigmas = get_sigmas_flow(10, shift=3.0)
    ts = sigmas / (1 + sigmas)
    noise = torch.randn(16, 3)
    with torch.no_grad():
        xt = ts[0].float() * noise  # = x / (1 + sigma_0)
        for t, t_next in zip(ts[:-1].tolist(), ts[1:].tolist()):
            xt = xt + (t_next - t) * net(xt, torch.full((16,), 1000 * t))
    out = sample_euler(FlowPrecond(net), noise * sigmas[0], sigmas)
    torch.testing.assert_close(out, xt, atol=1e-4, rtol=1e-4)


def tiny_denoiser(x, sigma, **cond):
    """Deterministic, per-sample (no batch mixing) stand-in for a model."""
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return torch.tanh(x / (1 + s)) * 0.8


@pytest.mark.parametrize("name", ["ddpm", "euler_ancestral", "dpmpp_2m"])
def test_seeded_noise_batch_independence(name):
    seeds, shape = [11, 22, 33], (3, 2, 4, 4)  # (C, T, H, W)
    sigmas = get_sigmas_karras(6, 0.01, 10.0)
    noise = SeededNoise(seeds)
    batch = sample(tiny_denoiser, noise.randn(shape) * sigmas[0], sigmas, sampler=name, noise=noise)
    for i, s in enumerate(seeds):
        one = SeededNoise([s])
        single = sample(
            tiny_denoiser, one.randn(shape) * sigmas[0], sigmas, sampler=name, noise=one
        )
        torch.testing.assert_close(batch[i : i + 1], single, atol=1e-6, rtol=0)
    assert not torch.allclose(batch[0], batch[1])
    with pytest.raises(ValueError, match="seeds"):
        SeededNoise([1, 2])(torch.zeros(3, 1))


def test_frame_correlated_noise():
    """``SeededNoise.video``: rho = 0 is exactly ``randn``; otherwise every frame stays unit normal,
    frames correlate by rho, and each sample still depends only on its own seed."""
    shape = (2, 8, 16, 16)
    torch.testing.assert_close(
        SeededNoise([3, 4]).video(shape, 0.0), SeededNoise([3, 4]).randn(shape)
    )
    x = SeededNoise(list(range(64))).video(shape, 0.3)  # (64, C, T, H, W)
    frames = x.transpose(1, 2).reshape(64, 8, -1)  # (B, T, C*H*W)
    assert abs(frames.std().item() - 1) < 0.02 and abs(frames.mean().item()) < 0.02
    corr = torch.corrcoef(frames.transpose(0, 1).reshape(8, -1))
    off = corr[~torch.eye(8, dtype=torch.bool)]
    assert (off - 0.3).abs().max() < 0.03, off
    torch.testing.assert_close(x[5:6], SeededNoise([5]).video(shape, 0.3))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="correlation"):
            SeededNoise([0]).video(shape, bad)


def test_callback_and_dispatch_errors():
    sigmas = get_sigmas_karras(5, 0.01, 10.0)
    seen = []
    sample(tiny_denoiser, torch.randn(2, 3) * 10, sigmas, sampler="heun", callback=seen.append)
    assert [s["i"] for s in seen] == [0, 1, 2, 3, 4] and set(seen[0]) == {
        "i",
        "x",
        "sigma",
        "denoised",
    }
    assert seen[0]["sigma"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="dpmpp_2m"):
        sample(tiny_denoiser, torch.randn(2, 3), sigmas, sampler="plms")
    with pytest.raises(ValueError, match="eta"):
        sample(tiny_denoiser, torch.randn(2, 3), sigmas, sampler="dpmpp_2m", eta=0.5)
    with pytest.raises(ValueError, match="decreasing"):
        sample_euler(tiny_denoiser, torch.randn(2, 3), torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------- guidance


class CondDenoiser:
    """x0 depends on the text context; records every call's batch and keys. Declares the specs of a
    text- and frame-conditioned net (CFG reads them to pad and to duplicate keys)."""

    conditions = builtin_conditions(
        SimpleNamespace(
            context_dim=3,
            pooled_context=False,
            frame_conditioning=True,
            in_channels=3,
            guidance_embed=False,
        )
    )

    def __init__(self):
        self.calls = []

    def __call__(
        self, x, sigma, context=None, context_mask=None, cond_frames=None, frame_mask=None
    ):
        self.calls.append(
            {
                "batch": x.shape[0],
                "context": context,
                "mask": context_mask,
                "frames": cond_frames,
                "frame_mask": frame_mask,
            }
        )
        c = (
            (context * context_mask[..., None]).sum(1)
            if context_mask is not None
            else context.sum(1)
        )
        return 0.5 * x + c[:, :, None, None, None] * torch.linspace(-1, 1, x.shape[-1])


def test_cfg_denoiser():
    g = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(2, 3, 2, 4, 4, generator=g), torch.tensor([1.0, 2.0])
    ctx, mask = torch.randn(2, 5, 3, generator=g), torch.ones(2, 5, dtype=torch.bool)
    u_ctx, u_mask = torch.randn(1, 2, 3, generator=g), torch.ones(1, 2, dtype=torch.bool)
    inner = CondDenoiser()
    cond = {"context": ctx, "context_mask": mask}
    d_c = inner(x, sigma, **cond)
    d_u = inner(x, sigma, context=u_ctx.expand(2, -1, -1), context_mask=u_mask.expand(2, -1))
    inner.calls.clear()

    one = cfg_denoiser(inner, 1.0, {"context": u_ctx, "context_mask": u_mask})(x, sigma, **cond)
    assert len(inner.calls) == 1 and inner.calls[0]["batch"] == 2  # scale 1: no uncond pass
    torch.testing.assert_close(one, d_c)

    inner.calls.clear()
    out = cfg_denoiser(inner, 3.0, {"context": u_ctx, "context_mask": u_mask})(x, sigma, **cond)
    assert len(inner.calls) == 1 and inner.calls[0]["batch"] == 4  # one batched pass
    assert (
        inner.calls[0]["context"].shape == (4, 5, 3) and not inner.calls[0]["mask"][2:, 2:].any()
    )  # padded
    torch.testing.assert_close(out, d_u + 3.0 * (d_c - d_u))

    resc = cfg_denoiser(inner, 7.0, {"context": u_ctx, "context_mask": u_mask}, rescale=1.0)(
        x, sigma, **cond
    )
    torch.testing.assert_close(resc.flatten(1).std(1), d_c.flatten(1).std(1))
    half = cfg_denoiser(inner, 7.0, {"context": u_ctx, "context_mask": u_mask}, rescale=0.5)(
        x, sigma, **cond
    )
    full = d_u + 7.0 * (d_c - d_u)
    torch.testing.assert_close(half, 0.5 * resc + 0.5 * full)

    with pytest.raises(ValueError, match="uncond has keys"):
        cfg_denoiser(inner, 2.0, {"context": u_ctx, "bogus": u_mask})(x, sigma, **cond)
    with pytest.raises(ValueError, match="rescale"):
        cfg_denoiser(inner, 2.0, {}, rescale=1.5)


def test_frame_conditioned_with_cfg():
    g = torch.Generator().manual_seed(1)
    b, t = 2, 4
    frames = torch.rand(b, 3, t, 4, 4, generator=g) * 2 - 1
    mask = torch.tensor([[True, False, False, False], [True, False, False, True]])
    inner = CondDenoiser()
    ctx, mask_txt = torch.randn(b, 3, 3, generator=g), torch.ones(b, 3, dtype=torch.bool)
    den = frame_conditioned(
        cfg_denoiser(inner, 2.0, {"context": torch.zeros(1, 3, 3), "context_mask": mask_txt[:1]}),
        frames,
        mask,
    )
    sigmas = get_sigmas_karras(6, 0.01, 10.0)
    x = torch.randn(frames.shape, generator=g) * sigmas[0]
    out = sample(
        den, x, sigmas, sampler="dpmpp_2m", extra_args={"context": ctx, "context_mask": mask_txt}
    )
    call = inner.calls[0]
    assert call["batch"] == 2 * b and torch.equal(call["frames"], torch.cat([frames, frames]))
    assert torch.equal(call["frame_mask"], torch.cat([mask, mask]))
    known = mask[:, None, :, None, None].expand_as(out)
    torch.testing.assert_close(out[known], frames[known])  # known frames reproduced exactly
    assert not torch.allclose(out[~known], frames[~known], atol=0.1)
    with pytest.raises(ValueError, match="mask"):
        frame_conditioned(inner, frames, mask.float())


def test_random_frame_mask():
    n, t = 20000, 8
    m = random_frame_mask(n, t, generator=torch.Generator().manual_seed(0))
    assert m.shape == (n, t) and m.dtype == torch.bool
    assert (~m).any(1).all()  # something is always left to generate
    none = (~m).all(1).float().mean()
    first_only = (m[:, 0] & ~m[:, 1:].any(1)).float().mean()
    last = m[:, -1].float().mean()  # only interpolation knows the last frame
    prefix = (m[:, 0] & m[:, 1] & ~m[:, -1]).float().mean()  # prefixes with k >= 2
    assert abs(none - 0.5) < 0.015 and abs(last - 0.15) < 0.015
    assert abs(first_only - (0.2 + 0.15 / 7)) < 0.015
    assert abs(prefix - 0.15 * 6 / 7 - 0.15 * 0) < 0.02
    # prefixes are contiguous: known frames form a prefix whenever the last frame is unknown
    pm = m[~m[:, -1]]
    assert (pm.int().diff(dim=1) <= 0).all()
    again = random_frame_mask(n, t, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m, again)
    assert not random_frame_mask(10, 1).any()  # images: nothing known
    # p_none sets the unconditional share, the rest is split by the task weights
    m = random_frame_mask(
        n,
        t,
        generator=torch.Generator().manual_seed(1),
        p_none=0.2,
        w_first=1.0,
        w_prefix=0.0,
        w_interp=0.0,
    )
    assert abs((~m).all(1).float().mean() - 0.2) < 0.015 and (m.sum(1) <= 1).all()
    with pytest.raises(ValueError, match="p_none"):
        random_frame_mask(4, 4, p_none=1.5)
    with pytest.raises(ValueError, match="weights"):
        random_frame_mask(4, 4, w_first=-1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_end_to_end():
    """Device-agnostic path: bf16 net on CUDA behind each precond, seeded CUDA noise, fp32 state."""
    from vidiff.diffusion.precond import build_precond

    net = torch.nn.Conv3d(3, 3, 1).cuda().to(torch.bfloat16)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, c_noise, **cond):
            return self.net(x)

    for kind in ("eps", "v", "edm", "flow"):
        den = build_precond(kind, Net())
        sigmas = den.default_sigmas(4)
        noise = SeededNoise([1, 2], device="cuda")
        out = sample(
            den, noise.randn((3, 2, 4, 4)) * sigmas[0], sigmas, sampler="ddpm", noise=noise
        )
        assert (
            out.device.type == "cuda" and out.dtype == torch.float32 and torch.isfinite(out).all()
        )
