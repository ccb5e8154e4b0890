"""benchmarks/gpu.py runs on CPU (``--smoke``): every code path of the GPU benchmark, tiny shapes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_smoke(gpu, tmp_path, capsys):
    import json

    # eager for both presets, compiled (dynamo, eager backend) for the DiT: the compile path
    # without tracing the U-Net as well, which would double the test's time
    eager = gpu.main(["--smoke", "--compile", "off", "--peak", "1e12"])
    out = capsys.readouterr().out
    compiled = gpu.main(
        ["--smoke", "--models", "dit-tiny", "--compile", "on", "--json", str(tmp_path / "r.json")]
    )
    assert [(r.model, r.compile) for r in eager] == [("unet-tiny", False), ("dit-tiny", False)]
    assert "| unet-tiny |" in out and "MFU" in out
    for r in [*eager, *compiled]:
        assert r.gflop_step > 0 and r.step_s > 0 and r.sample_s > 0
        assert r.samples_per_s == pytest.approx(r.batch / r.step_s)
    for r in eager:  # MFU = model FLOPs / step time / peak
        assert r.mfu == pytest.approx(r.gflop_step * 1e9 / r.step_s / 1e12)
    # the same model counts the same FLOPs compiled or not; no peak known on CPU: no MFU
    assert compiled[0].gflop_step == pytest.approx(eager[1].gflop_step)
    assert compiled[0].mfu is None and compiled[0].compile
    assert json.loads((tmp_path / "r.json").read_text())[0]["model"] == "dit-tiny"


def test_peak_table_and_errors(gpu):
    assert gpu.peak_for_name("NVIDIA H200") == 989e12
    assert gpu.peak_for_name("NVIDIA H100 PCIe") == 756e12
    assert gpu.peak_for_name("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu.peak_for_name("Some GPU") is None
    with pytest.raises(SystemExit, match="unknown model 'unet-huge'"):
        gpu.main(["--smoke", "--models", "unet-huge"])


def test_attention_quality_counts_cpu_attention(monkeypatch):
    """The scaling benchmark's FLOP counter sees the CPU attention kernel, forward and backward:
    Q K^T and P V are B * heads * L * L * d multiply-adds each; going back the scores are recomputed
    and dV, dP, dQ, dK formed: five such products (torch's own formulas for the CUDA kernels)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its sibling job_pool, as a script
    spec = importlib.util.spec_from_file_location(
        "bench_aq", ROOT / "benchmarks/attention_quality.py"
    )
    aq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(aq)
    b, h, n, d = 2, 3, 40, 8
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))
    aten = torch.ops.aten
    mapping = {
        aten._scaled_dot_product_flash_attention_for_cpu: aq._cpu_attention_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: aq._cpu_attention_backward_flops,
    }
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = F.scaled_dot_product_attention(q, k, v)
    forward = 2 * (2 * b * h * n * n * d)
    assert counter.get_total_flops() == forward
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out.sum().backward()
    assert counter.get_total_flops() == forward * 5 // 2


def test_leaderboard_wall_clock_skips_the_time_a_run_stood_stopped(tmp_path, monkeypatch):
    """Training wall-clock = logged steps over their logged speed; a resumed run re-logs steps from
    its checkpoint (the last log counts) and the hours between crash and resume are not counted."""
    import json

    spec = importlib.util.spec_from_file_location(
        "bench_lb", ROOT / "benchmarks" / "leaderboard.py"
    )
    leaderboard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(leaderboard)
    monkeypatch.setattr(leaderboard, "ROOT", tmp_path)
    rows = [
        (25, 0.0, 1.0),
        (50, 25.0, 1.0),
        (75, 50.0, 1.0),  # then a crash; hours later, a resume from the step-50 checkpoint
        (75, 9050.0, 0.5),
        (100, 9100.0, 0.5),
    ]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "time": t, "it_per_s": r}) + "\n" for s, t, r in rows)
    )
    seconds, steps = leaderboard.wall_clock(["run"])
    assert steps == "100" and seconds == pytest.approx(25 + 25 + 50 + 50)
    assert leaderboard.wall_clock(["missing"]) is None
