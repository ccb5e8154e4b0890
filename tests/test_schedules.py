"""Schedules and discretisations: exact diffusers tables, round trips, endpoints, validation."""

import math

import pytest
import torch

from vidiff.diffusion.schedules import (
    FLOW_T_MAX,
    VPSchedule,
    flow_shift,
    get_sigmas,
    get_sigmas_flow,
    get_sigmas_karras,
    get_sigmas_vp,
    get_sigmas_vp_timesteps,
    shift_t,
    vp_timesteps,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize(
    ("kind", "beta"),
    [("cosine", "squaredcos_cap_v2"), ("linear", "linear"), ("scaled_linear", "scaled_linear")],
)
def test_vp_tables_match_diffusers_exactly(kind, beta):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDPMScheduler(
        beta_schedule=beta,
        beta_start=0.00085 if kind == "scaled_linear" else 1e-4,
        beta_end=0.012 if kind == "scaled_linear" else 0.02,
    )
    s = VPSchedule(kind)
    assert torch.equal(s.alphas_cumprod.float(), ref.alphas_cumprod)
    assert s.sigmas.shape == (1000,) and (s.sigmas[1:] > s.sigmas[:-1]).all()
    assert s.sigma_min == pytest.approx(
        math.sqrt((1 - ref.alphas_cumprod[0].double()) / ref.alphas_cumprod[0].double())
    )


def test_cosine_formula_and_clipping():
    s = VPSchedule("cosine", num_train_timesteps=100)
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    # unclipped timesteps follow abar(t) = f(t/N) / f(0)
    assert float(s.alphas_cumprod[49]) == pytest.approx(f(0.5) / f(0), rel=1e-5)
    assert float(s.betas.max()) == pytest.approx(0.999, rel=1e-6)  # the clipped last beta


def test_sigma_t_round_trip():
    s = VPSchedule("linear")
    t = torch.tensor([0.0, 1.0, 17.0, 17.25, 500.5, 998.9, 999.0], dtype=torch.float64)
    sig = s.t_to_sigma(t)
    assert torch.allclose(s.sigma_to_t(sig), t, atol=1e-9)
    assert torch.allclose(s.t_to_sigma(torch.tensor([0.0, 17.0, 999.0])), s.sigmas[[0, 17, 999]])
    # log-linear in between
    assert float(s.t_to_sigma(17.25)) == pytest.approx(
        math.exp(0.75 * math.log(s.sigmas[17]) + 0.25 * math.log(s.sigmas[18]))
    )
    # outside the table: clamp to the ends (sigma = 0 -> t = 0)
    assert s.sigma_to_t(torch.tensor([0.0, 1e-9, 1e9])).tolist() == [0.0, 0.0, 999.0]
    with pytest.raises(ValueError, match="timesteps"):
        s.t_to_sigma(1000.0)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 7, 10, 50, 999])
def test_vp_timesteps_match_diffusers(spacing, n):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDIMScheduler(
        timestep_spacing=spacing, steps_offset=1 if spacing == "leading" else 0
    )
    ref.set_timesteps(n)
    ts = vp_timesteps(1000, n, spacing, steps_offset=1 if spacing == "leading" else 0)
    assert torch.equal(ts, ref.timesteps)


def test_get_sigmas_vp():
    s = VPSchedule("cosine")
    sig = get_sigmas_vp(s, 10, "trailing")
    assert sig.shape == (11,) and sig[-1] == 0 and (sig[1:] < sig[:-1]).all()
    assert sig[0] == s.sigmas[999] and sig[-2] == s.sigmas[99]
    assert torch.equal(
        get_sigmas_vp_timesteps(s, [999, 899.0]),
        torch.cat([s.sigmas[[999, 899]], torch.zeros(1, dtype=torch.float64)]),
    )
    for bad in [
        dict(n=0),
        dict(n=1001),
        dict(n=5, spacing="bogus"),
        dict(n=5, spacing="trailing", steps_offset=1),
    ]:
        with pytest.raises(ValueError):
            get_sigmas_vp(s, **bad)
    with pytest.raises(ValueError, match="descending"):
        get_sigmas_vp_timesteps(s, [1, 2])
    with pytest.raises(ValueError, match="kind"):
        VPSchedule("quadratic")


def test_karras():
    sig = get_sigmas_karras(5, 0.002, 80.0, rho=7.0)
    assert sig.shape == (6,) and sig[-1] == 0
    assert float(sig[0]) == pytest.approx(80.0) and float(sig[-2]) == pytest.approx(0.002)
    r = sig[:-1] ** (1 / 7)
    assert torch.allclose(r[1:] - r[:-1], (r[1] - r[0]).expand(4))  # uniform in sigma^(1/rho)
    with pytest.raises(ValueError):
        get_sigmas_karras(5, 1.0, 0.5)


def test_flow_sigmas_and_shift():
    sig = get_sigmas_flow(4)
    t = sig / (1 + sig)
    assert torch.allclose(t, torch.tensor([FLOW_T_MAX, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    assert sig[-1] == 0 and float(sig[0]) == pytest.approx(FLOW_T_MAX / (1 - FLOW_T_MAX))
    shifted = get_sigmas_flow(4, shift=3.0)
    ts = shifted / (1 + shifted)
    assert float(ts[2]) == pytest.approx(3 * 0.5 / (1 + 2 * 0.5))  # 0.75: more steps at high noise
    assert torch.allclose(shift_t(torch.tensor(0.5), 1.0), torch.tensor(0.5))
    # flow_shift: exp(mu) with mu linear in the token count through the two anchors (flux)
    assert flow_shift(256) == pytest.approx(math.exp(0.5))
    assert flow_shift(4096) == pytest.approx(math.exp(1.15))
    assert flow_shift(8 * 4096) > flow_shift(4096) > flow_shift(1024) > 1.0
    with pytest.raises(ValueError):
        get_sigmas_flow(4, t_max=1.0)


def test_get_sigmas_dispatch():
    assert torch.equal(
        get_sigmas("karras", 5, sigma_min=0.01, sigma_max=10), get_sigmas_karras(5, 0.01, 10)
    )
    assert torch.equal(get_sigmas("flow", 6, shift=2.0), get_sigmas_flow(6, 2.0))
    assert torch.equal(
        get_sigmas("vp", 6, schedule="linear", spacing="leading"),
        get_sigmas_vp(VPSchedule("linear"), 6, "leading"),
    )
    with pytest.raises(ValueError, match="unknown sigma schedule"):
        get_sigmas("cosine", 5)
    with pytest.raises(ValueError, match="rh0"):
        get_sigmas("karras", 5, sigma_min=0.01, sigma_max=10, rh0=7)
    assert torch.equal(get_sigmas("karras", 5), get_sigmas_karras(5, 0.002, 80.0))  # EDM defaults
