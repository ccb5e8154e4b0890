"""Preconditioning algebra and losses, checked against a closed-form Gaussian denoiser."""

import math

import pytest
import torch

from vidiff.diffusion.losses import EDMLoss, FlowLoss, VPLoss, build_loss, masked_mse
from vidiff.diffusion.precond import EDMPrecond, EpsPrecond, FlowPrecond, VPrecond, build_precond
from vidiff.diffusion.schedules import VPSchedule

SHAPE = (4, 3, 2, 4, 4)  # (B, C, T, H, W)
SCHED = VPSchedule("cosine")


def gaussian_denoiser(mu: float, s: float):
    """Exact posterior mean for x0 ~ N(mu, s^2) per element, x = x0 + sigma eps."""

    def d_star(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return mu + s**2 / (s**2 + sigma**2) * (x - mu)

    return d_star


def sigma_from_c_noise(kind, c):
    """The inverse of each documented c_noise mapping (the test's own derivation)."""
    c = c.double()
    if kind in ("eps", "v"):
        return SCHED.t_to_sigma(c)
    if kind == "edm":
        return ((c - 500) / 125).exp()
    t = c / 1000
    return t / (1 - t)


class OracleNet(torch.nn.Module):
    """Outputs the exact native target (eps, v, F or velocity) computed from D*."""

    def __init__(self, kind, d_star, sigma_data=0.5):
        super().__init__()
        self.kind, self.d_star, self.sd = kind, d_star, sigma_data

    def forward(self, x_in, c_noise, **cond):
        x_in = x_in.double()
        sigma = sigma_from_c_noise(self.kind, c_noise).reshape(-1, 1, 1, 1, 1)
        if self.kind in ("eps", "v"):
            x = x_in * (1 + sigma**2).sqrt()
        elif self.kind == "edm":
            x = x_in * (sigma**2 + self.sd**2).sqrt()
        else:
            x = x_in * (1 + sigma)
        d = self.d_star(x, sigma.flatten())
        eps = (x - d) / sigma
        if self.kind == "eps":
            out = eps
        elif self.kind == "v":  # v = alpha eps - sigma_vp x0
            out = (eps - sigma * d) / (1 + sigma**2).sqrt()
        elif self.kind == "edm":  # F = (x0 - c_skip x) / c_out
            c_skip = self.sd**2 / (sigma**2 + self.sd**2)
            c_out = sigma * self.sd / (sigma**2 + self.sd**2).sqrt()
            out = (d - c_skip * x) / c_out
        else:  # rectified-flow velocity eps - x0
            out = eps - d
        return out.float()


def _precond(kind, net):
    return {
        "eps": lambda: EpsPrecond(net, SCHED),
        "v": lambda: VPrecond(net, SCHED),
        "edm": lambda: EDMPrecond(net),
        "flow": lambda: FlowPrecond(net),
    }[kind]()


@pytest.mark.parametrize("kind", ["eps", "v", "edm", "flow"])
def test_precond_recovers_exact_denoiser(kind):
    d_star = gaussian_denoiser(0.3, 0.7)
    den = _precond(kind, OracleNet(kind, d_star))
    g = torch.Generator().manual_seed(0)
    sigma = torch.tensor([0.05, 0.5, 3.0, 40.0])
    x = d_star(torch.randn(SHAPE, generator=g), 0.0) + sigma.reshape(-1, 1, 1, 1, 1) * torch.randn(
        SHAPE, generator=g
    )
    out = den(x, sigma)
    assert out.dtype == torch.float32 and out.shape == SHAPE
    torch.testing.assert_close(out, d_star(x, sigma), rtol=1e-4, atol=1e-4)
    # a python float / 0-d sigma broadcasts over the batch
    torch.testing.assert_close(den(x, 0.5), d_star(x, 0.5), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="sigma"):
        den(x, torch.ones(3))


def test_c_noise_scale():
    net = torch.nn.Identity()
    assert EpsPrecond(net, SCHED).c_noise(SCHED.sigmas[[0, 999]].float()).tolist() == pytest.approx(
        [0, 999], abs=1e-3
    )
    assert FlowPrecond(net).c_noise(torch.tensor([1.0])).item() == pytest.approx(500)
    edm = EDMPrecond(net).c_noise(torch.tensor([math.exp(-4), 1.0, math.exp(4)]))
    assert edm.tolist() == pytest.approx([0, 500, 1000], abs=1e-3)


class TinyNet(torch.nn.Module):
    """A small conv net with a c_noise dependence; records the dtype it was fed."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 3, 3, padding=1)
        self.emb = torch.nn.Linear(1, 3)
        self.seen_dtype = None

    def forward(self, x, c_noise, **cond):
        self.seen_dtype = x.dtype
        e = self.emb((c_noise / 1000).reshape(-1, 1).to(x.dtype)).reshape(-1, 3, 1, 1, 1)
        return self.conv(x) + e


def test_fp32_boundary_with_bf16_net():
    torch.manual_seed(0)
    net = TinyNet()
    x, sigma = torch.randn(SHAPE), torch.full((4,), 0.7)
    ref = EDMPrecond(net)(x, sigma)
    net_bf16 = TinyNet().to(torch.bfloat16)
    net_bf16.load_state_dict(net.state_dict())
    out = EDMPrecond(net_bf16)(x, sigma)
    assert net_bf16.seen_dtype == torch.bfloat16 and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=0.03, rtol=0.03)


def test_build_precond():
    net = TinyNet()
    assert isinstance(build_precond("v", net, schedule="linear"), VPrecond)
    assert build_precond("eps", net).schedule.kind == "cosine"
    assert build_precond("edm", net, sigma_data=1.0).sigma_data == 1.0
    assert isinstance(build_precond("flow", net), FlowPrecond)
    assert build_precond(
        "eps", net, schedule="linear", num_train_timesteps=500
    ).schedule.sigmas.shape == (500,)
    with pytest.raises(ValueError, match="eps, v, edm, flow"):
        build_precond("x0", net)
    with pytest.raises(ValueError, match="min_snr_gamma"):
        build_precond("v", net, min_snr_gamma=5.0)  # a loss option is not a precond option


# ---------------------------------------------------------------- losses

LOSSES = {
    "eps": lambda: VPLoss(SCHED, "eps"),
    "v": lambda: VPLoss(SCHED, "v"),
    "edm": lambda: EDMLoss(),
    "flow": lambda: FlowLoss(shift=2.0),
}


@pytest.mark.parametrize("kind", ["eps", "v", "edm", "flow"])
def test_perfect_denoiser_zero_loss(kind):
    # data is a single point: the exact denoiser through the oracle net and the wrapper returns it
    d_star = gaussian_denoiser(0.25, 0.0)
    den = _precond(kind, OracleNet(kind, d_star))
    x0 = torch.full(SHAPE, 0.25)
    loss = LOSSES[kind]()(den, x0, generator=torch.Generator().manual_seed(1))
    assert loss.shape == (4,) and loss.max() < 1e-6
    wrong = LOSSES[kind]()(den, x0 + 0.1, generator=torch.Generator().manual_seed(1))
    assert wrong.min() > 1e-4


@pytest.mark.parametrize("kind", ["eps", "v", "edm", "flow"])
def test_loss_equals_native_objective(kind):
    """The D-space weighted loss equals the parameterisation's own MSE on the raw net output."""
    torch.manual_seed(0)
    net = TinyNet()
    den = _precond(kind, net)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(SHAPE, generator=g) * 0.5
    noise = torch.randn(SHAPE, generator=g)
    sigma = torch.tensor([0.02, 0.3, 2.0, 60.0], dtype=torch.float64)
    got = LOSSES[kind]().at(den, x0, sigma, noise)
    s = sigma.float().reshape(-1, 1, 1, 1, 1)
    if kind in ("eps", "v"):
        alpha, sigma_vp = (1 + s**2).rsqrt(), s * (1 + s**2).rsqrt()
        x_vp = alpha * x0 + sigma_vp * noise
        out = net(x_vp, SCHED.sigma_to_t(sigma).float())
        target = noise if kind == "eps" else alpha * noise - sigma_vp * x0
    elif kind == "edm":
        sd = 0.5
        x = x0 + s * noise
        out = net(x / (s**2 + sd**2).sqrt(), 125 * sigma.float().log() + 500)
        target = (x0 - sd**2 / (s**2 + sd**2) * x) / (s * sd / (s**2 + sd**2).sqrt())
    else:
        t = s / (1 + s)
        out = net((1 - t) * x0 + t * noise, 1000 * t.flatten())
        target = noise - x0
    native = ((out - target) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(got, native, rtol=2e-4, atol=1e-6)


def test_min_snr_weighting():
    torch.manual_seed(0)
    den = EpsPrecond(TinyNet(), SCHED)
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    sigma = torch.tensor([0.1, 0.4, 1.0, 5.0], dtype=torch.float64)
    plain = VPLoss(SCHED, "eps").at(den, x0, sigma, noise)
    gamma = 5.0
    snr = sigma**-2
    for pred in ("eps", "v"):
        base = VPLoss(SCHED, pred).at(den, x0, sigma, noise)
        msnr = VPLoss(SCHED, pred, min_snr_gamma=gamma).at(den, x0, sigma, noise)
        native_w = (
            snr if pred == "eps" else snr + 1
        )  # Hang et al.: min(SNR, g)/SNR (eps), /(SNR+1) (v)
        torch.testing.assert_close(
            msnr, (base * snr.clamp(max=gamma) / native_w).float(), rtol=1e-5, atol=0
        )
    # sigma = 0.1 has SNR 100 > gamma: down-weighted; sigma = 1, 5 have SNR <= gamma: unchanged for eps
    msnr = VPLoss(SCHED, "eps", min_snr_gamma=gamma).at(den, x0, sigma, noise)
    assert msnr[0] < plain[0] and torch.allclose(msnr[2:], plain[2:])


@pytest.mark.parametrize("kind", ["eps", "v", "edm", "flow"])
def test_generator_determinism(kind):
    torch.manual_seed(0)
    den = _precond(kind, TinyNet())
    x0 = torch.randn(SHAPE)
    loss = LOSSES[kind]()
    a = loss(den, x0, generator=torch.Generator().manual_seed(7))
    b = loss(den, x0, generator=torch.Generator().manual_seed(7))
    c = loss(den, x0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("kind", ["v", "flow"])
def test_seeded_loss_is_batch_independent(kind):
    """Per-sample generators: a sample's loss is the same alone or in any batch (exact DDP/resume)."""
    torch.manual_seed(0)
    den = _precond(kind, TinyNet())
    x0 = torch.randn(SHAPE)
    loss = LOSSES[kind]()

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    seeds = [11, 12, 13, 14]
    whole = loss.seeded(den, x0, gens(seeds))
    halves = torch.cat(
        [loss.seeded(den, x0[:2], gens(seeds[:2])), loss.seeded(den, x0[2:], gens(seeds[2:]))]
    )
    torch.testing.assert_close(whole, halves, rtol=1e-6, atol=0)
    other = loss.seeded(den, x0, gens([21, 22, 23, 24]))
    assert not torch.allclose(whole, other)
    with pytest.raises(ValueError, match="generators"):
        loss.seeded(den, x0, gens(seeds[:3]))


def test_noise_level_densities():
    g = torch.Generator().manual_seed(0)
    x0 = torch.zeros(1)
    n = 20000
    t = SCHED.sigma_to_t(VPLoss(SCHED).sample_sigma(n, x0, g))
    assert (
        torch.allclose(t, t.round(), atol=1e-6)
        and abs(t.mean().item() - 499.5) < 10
        and t.min() >= 0
        and t.max() <= 999
    )
    # The SD3 shift on the VP time axis: same draws, moved to higher noise (median t' = 3/4 at s = 3).
    g3 = torch.Generator().manual_seed(0)
    t3 = SCHED.sigma_to_t(build_loss("v", shift=3.0).sample_sigma(n, x0, g3))
    assert abs(t3.median().item() / 999 - 0.75) < 0.02 and t3.max() <= 999
    g1 = torch.Generator().manual_seed(0)
    torch.testing.assert_close(build_loss("v", shift=1.0).sample_sigma(n, x0, g1),
                               VPLoss(SCHED).sample_sigma(n, x0, torch.Generator().manual_seed(0)))  # fmt: skip
    ln = EDMLoss(P_mean=-1.2, P_std=1.2).sample_sigma(n, x0, g).log()
    assert abs(ln.mean().item() + 1.2) < 0.05 and abs(ln.std().item() - 1.2) < 0.05
    s = FlowLoss().sample_sigma(n, x0, g)
    logit = (s / (1 + s)).logit()  # t / (1 - t) = sigma
    assert abs(logit.mean().item()) < 0.05 and abs(logit.std().item() - 1.0) < 0.05
    s3 = FlowLoss(shift=3.0).sample_sigma(n, x0, g)
    assert (s3 / (1 + s3)).median() > 0.7  # shift 3 moves the median t from 0.5 to 0.75


def test_frame_masked_loss():
    d, x0 = torch.zeros(2, 1, 3, 1, 1), torch.zeros(2, 1, 3, 1, 1)
    d[:, :, 0] = 1.0  # error only on frame 0
    mask = torch.tensor([[True, False, False], [True, True, True]])
    assert masked_mse(d, x0).tolist() == pytest.approx([1 / 3, 1 / 3])
    # sample 0: frame 0 known -> excluded; sample 1: all known -> falls back to all frames
    assert masked_mse(d, x0, mask).tolist() == pytest.approx([0.0, 1 / 3])
    with pytest.raises(ValueError, match="frame_mask"):
        masked_mse(d, x0, mask[:, :2])


def test_build_loss():
    assert isinstance(build_loss("v", schedule="linear", min_snr_gamma=5.0), VPLoss)
    assert build_loss("eps").prediction == "eps"
    assert isinstance(build_loss("edm"), EDMLoss) and isinstance(
        build_loss("flow", shift=3.0), FlowLoss
    )
    assert build_loss("eps", num_train_timesteps=200).schedule.num_train_timesteps == 200
    with pytest.raises(ValueError, match="eps, v, edm, flow"):
        build_loss("x0")
    with pytest.raises(ValueError, match="sigma_data"):
        build_loss("flow", sigma_data=0.5)
    with pytest.raises(ValueError, match="min_snr_gamma"):
        VPLoss(min_snr_gamma=0)
    with pytest.raises(ValueError, match="shift"):
        VPLoss(shift=0)
