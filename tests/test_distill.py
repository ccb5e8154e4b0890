"""Distillation: nested grids, progressive distillation (Salimans & Ho 2022) learns the teacher's
2-step DDIM output in 1 step, guidance distillation (Meng et al. 2023) starts as the conditional
teacher and moves to the CFG output, and `vidiff distill` runs, exports and resumes rounds."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from tests.test_pipeline import PROMPTS, micro_pipeline
from vidiff.diffusion.losses import masked_mse
from vidiff.distill import (
    GuidanceDistillation,
    ProgressiveDistillation,
    loss_weight,
    nested_grids,
)
from vidiff.distill.rounds import Round, plan_rounds, student_config, student_from_teacher
from vidiff.pipeline import VideoPipeline
from vidiff.sampling.samplers import ddim_step, ddim_to, ddim_x0_target, sample_ddim


def guided_student(teacher: VideoPipeline) -> VideoPipeline:
    """A guidance-embedded copy of ``teacher``, built the way `vidiff distill --guidance` builds it."""
    from vidiff.config import DataConfig

    rnd = Round("guidance", 4, 4, None, None)
    pc = student_config(teacher, rnd, "embedded", 3.0, (1.0, 5.0), DataConfig())
    return student_from_teacher(teacher, pc)


# --------------------------------------------------------------------------------------------------
# grids and the batched DDIM arithmetic


@pytest.mark.parametrize("parameterization", ["v", "eps", "flow"])
def test_student_grid_is_every_other_point_of_the_teachers(parameterization):
    pipe = micro_pipeline(f"diffusion.parameterization={parameterization}")
    for n in (2, 4, 8, 16, 32, 64, 128):
        teacher, student = nested_grids(pipe, n)
        assert len(teacher) == n + 1 and len(student) == n // 2 + 1
        assert torch.equal(student, teacher[::2])
        # ...and it is what sampling the student with n / 2 steps uses.
        torch.testing.assert_close(student, pipe.sigmas(n // 2).double(), rtol=1e-9, atol=0)
        assert teacher[-1] == 0 and (teacher[1:] < teacher[:-1]).all()


def test_non_nested_grids_are_refused():
    with pytest.raises(ValueError, match="not every other point"):
        nested_grids(micro_pipeline("diffusion.parameterization=edm"), 8)  # Karras
    with pytest.raises(ValueError, match="not every other point"):
        nested_grids(micro_pipeline("diffusion.sigmas={spacing: leading}"), 16)
    with pytest.raises(ValueError, match="even"):
        nested_grids(micro_pipeline(), 3)


def test_per_sample_ddim_matches_the_one_level_step_of_the_samplers():
    """Distillation steps each sample from its own (B,) noise level; that must equal the samplers'
    one-level DDIM step (float sigmas) sample by sample."""
    torch.manual_seed(0)
    x, d, x_next = (
        torch.randn(3, 3, 4, 8, 8),
        torch.randn(3, 3, 4, 8, 8),
        torch.randn(3, 3, 4, 8, 8),
    )
    sigma = torch.tensor([80.0, 3.0, 0.5], dtype=torch.float64)
    sigma_next = torch.tensor([10.0, 0.0, 0.1], dtype=torch.float64)
    stepped = ddim_to(x, d, sigma, sigma_next)
    targets = ddim_x0_target(x, sigma, x_next, sigma_next)
    for i in range(3):
        ref, _ = ddim_step(
            lambda *a, di=d[i : i + 1], **k: di, x[i : i + 1], float(sigma[i]), float(sigma_next[i])
        )
        torch.testing.assert_close(stepped[i : i + 1], ref, rtol=1e-5, atol=1e-5)
        ref = ddim_x0_target(x[i : i + 1], float(sigma[i]), x_next[i : i + 1], float(sigma_next[i]))
        torch.testing.assert_close(targets[i : i + 1], ref, rtol=1e-5, atol=1e-4)
    # one DDIM step with the target as x0 lands on x_next
    torch.testing.assert_close(ddim_to(x, targets, sigma, sigma_next), x_next, rtol=1e-4, atol=1e-4)
    w = loss_weight(torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64), "truncated_snr")
    torch.testing.assert_close(w, torch.tensor([100.0, 1.0, 1.0]))


# --------------------------------------------------------------------------------------------------
# progressive distillation


def test_progressive_loss_is_per_sample_and_batch_independent():
    teacher = micro_pipeline()  # text model, cfg 3: guidance baked into the student
    obj = ProgressiveDistillation(teacher, copy.deepcopy(teacher), 8, guidance=3.0)
    video, captions = torch.rand(4, 3, 4, 8, 8), [*PROMPTS, ""]
    whole = obj.training_loss(video, captions, [5, 6, 7, 8])
    halves = torch.cat(
        [
            obj.training_loss(video[:2], captions[:2], [5, 6]),
            obj.training_loss(video[2:], captions[2:], [7, 8]),
        ]
    )
    assert whole.shape == (4,) and torch.isfinite(whole).all() and (whole > 0).all()
    torch.testing.assert_close(whole, halves, rtol=1e-5, atol=1e-7)
    whole.mean().backward()
    assert all(p.grad is not None for p in obj.student.parameters())
    assert not any(p.requires_grad for p in obj.teacher.parameters())
    assert all(k.startswith("student.") for k in obj.state_dict())  # the teacher is not saved


def test_student_learns_the_teachers_two_step_output_in_one_step():
    """N = 2: the target is exactly the teacher's 2-step DDIM output from z = sigma_max * eps."""
    teacher = micro_pipeline("diffusion.cfg=1.0", "diffusion.p_uncond=0.0")
    student = copy.deepcopy(teacher).train()
    obj = ProgressiveDistillation(teacher, student, 2)
    video = torch.rand(4, 3, 4, 8, 8)
    captions, seeds = [*PROMPTS, "a red square moving left"], [11, 12, 13, 14]

    # The same z and conditioning the loss draws, rebuilt from its seeds.
    draws = obj.setup(video, captions, seeds)
    x0, gens, prompts, mask = draws
    assert all(torch.randint(0, 1, (1,), generator=g).item() == 0 for g in gens)
    noise = torch.cat([torch.randn((1, *x0.shape[1:]), generator=g) for g in gens])
    z = noise * float(teacher.sigmas(2)[0])
    t_cond = teacher.conditioning(x0, prompts, mask)
    # The teacher's 2-step output, by the sampler itself (known frames imposed as in generation).
    from vidiff.diffusion import frame_conditioned

    d_teacher = frame_conditioned(teacher.denoiser, x0, mask)
    t_cond = {k: v for k, v in t_cond.items() if k not in ("cond_frames", "frame_mask")}
    two = sample_ddim(d_teacher, z, teacher.sigmas(2), extra_args=t_cond)
    torch.testing.assert_close(obj.target(z, torch.zeros(4, dtype=torch.long), draws, None), two)

    def one_step_gap() -> float:
        with torch.no_grad():
            d_student = frame_conditioned(student.denoiser, x0, mask)
            one = sample_ddim(d_student, z, student.sigmas(1), extra_args=t_cond)
        return (one - two).square().mean().item()

    before = one_step_gap()
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = obj.training_loss(video, captions, seeds).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    after = one_step_gap()
    assert before > 1e-3  # one step of the teacher is not two
    assert sum(losses[-5:]) / 5 < 0.2 * sum(losses[:5]) / 5
    print(f"one-step gap to the 2-step teacher: {before:.4g} -> {after:.4g}")
    assert after < 0.2 * before, (before, after)


# --------------------------------------------------------------------------------------------------
# guidance distillation


def test_fresh_guided_student_is_the_conditional_teacher_and_learns_cfg():
    teacher = micro_pipeline("diffusion.p_uncond=0.0")
    student = guided_student(teacher).train()
    assert student.guidance_embedded and not teacher.guidance_embedded
    x = torch.randn(3, 3, 4, 8, 8) * 2
    sigma = torch.tensor([0.5, 2.0, 8.0])
    cond = teacher.encode_prompts(PROMPTS)
    with torch.no_grad():
        conditional = teacher.denoiser(x, sigma, **cond)
        for w in (1.0, 3.0, 7.5):
            out = student.denoiser(x, sigma, guidance=torch.full((3,), w), **cond)
            torch.testing.assert_close(out, conditional, rtol=0, atol=0)
        # through the pipeline: one forward pass with w instead of CFG's two
        torch.testing.assert_close(
            student.generate(PROMPTS[:2], [1, 2], cfg=4.0, steps=3, sampler="dpmpp_2m"),
            teacher.generate(PROMPTS[:2], [1, 2], cfg=1.0),
        )
    # one forward pass of batch B per step, where CFG makes one of 2B
    batches = []
    hooks = [
        m.net.register_forward_hook(lambda mod, args, out: batches.append(args[0].shape[0]))
        for m in (student, teacher)
    ]
    student.generate(PROMPTS[:2], [1, 2], cfg=4.0, steps=3, sampler="ddim")
    teacher.generate(PROMPTS[:2], [1, 2], cfg=4.0, steps=3, sampler="ddim")
    for h in hooks:
        h.remove()
    assert batches == [2, 2, 2, 4, 4, 4]
    with pytest.raises(ValueError, match="guidance_embed=True"):
        student.net(x, torch.ones(3), **cond)
    with pytest.raises(ValueError, match="guidance_embed=False"):
        teacher.net(x, torch.ones(3), guidance=torch.ones(3), **cond)

    obj = GuidanceDistillation(teacher, student, (1.0, 5.0))
    video, captions, seeds = torch.rand(4, 3, 4, 8, 8), [*PROMPTS, PROMPTS[0]], [1, 2, 3, 4]

    def gaps() -> tuple[float, float]:
        """(student - CFG teacher, conditional teacher - CFG teacher) at the training draws."""
        draws = obj.setup(video, captions, seeds)
        x0, gens, prompts, mask = draws
        cpu = torch.zeros(0)
        s = torch.cat([student.loss_fn.sample_sigma(1, cpu, g) for g in gens]).float()
        w = obj.draw_guidance(gens)
        z = x0 + s.view(-1, 1, 1, 1, 1) * torch.cat(
            [torch.randn((1, *x0.shape[1:]), generator=g) for g in gens]
        )
        with torch.no_grad():
            d, c = obj.teacher_denoiser(draws, w)
            cfg_out = d(z, s, **c)
            plain = teacher.denoiser(z, s, **teacher.conditioning(x0, prompts, mask))
            stud = student.denoiser(z, s, **obj.student_cond(draws, w))
        weight = loss_weight(s.double(), "truncated_snr")
        return tuple((weight * masked_mse(a, cfg_out, mask)).mean().item() for a in (stud, plain))

    before, conditional_gap = gaps()
    assert before == pytest.approx(conditional_gap) and before > 0
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    for _ in range(20):
        loss = obj.training_loss(video, captions, seeds).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = gaps()
    print(f"gap to the CFG teacher: {before:.4g} -> {after:.4g}")
    assert after < 0.3 * before, (before, after)
    emb = student.net.guidance_embed.mlp[2].weight
    assert emb.abs().max() > 0  # the guidance input is being used


def test_baked_guidance_refuses_a_second_cfg(tmp_path):
    teacher = micro_pipeline()
    rnd = Round("progressive", 4, 2, None, None)
    from vidiff.config import DataConfig

    pc = student_config(teacher, rnd, "baked", 3.0, None, DataConfig())
    assert pc.diffusion.cfg == 1.0 and pc.diffusion.steps == 2 and pc.diffusion.sampler == "ddim"
    student = student_from_teacher(teacher, pc)
    assert student.baked_cfg == 3.0
    out = student.generate(PROMPTS[:1], [0])  # default cfg 1: the guidance is in the weights
    assert out.shape == (1, 3, 4, 8, 8)
    with pytest.raises(ValueError, match="baked"):
        student.generate(PROMPTS[:1], [0], cfg=3.0)


def test_plan_rounds():
    rounds = plan_rounds(__import__("pathlib").Path("o"), 64, 8, True)
    assert [(r.kind, r.teacher_steps, r.student_steps) for r in rounds] == [
        ("guidance", 64, 64),
        ("progressive", 64, 32),
        ("progressive", 32, 16),
        ("progressive", 16, 8),
    ]
    assert rounds[-1].export_dir.name == "student-8"
    with pytest.raises(ValueError, match="power of two"):
        plan_rounds(__import__("pathlib").Path("o"), 48, 8, False)
    with pytest.raises(ValueError, match="nothing to do"):
        plan_rounds(__import__("pathlib").Path("o"), 8, 8, False)


# --------------------------------------------------------------------------------------------------
# the command


DATA = "data:\n  name: shapes\n  num_frames: 4\n  size: 8\n  num_items: 64\n"


def _args(teacher, out, config, *extra):
    return [
        "distill",
        str(teacher),
        "--config",
        str(config),
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--log-every",
        "1",
        "--ckpt-every",
        "2",
        "--warmup-steps",
        "1",
        "--no-progress",
        *extra,
    ]


def test_cli_rounds_export_and_resume(tmp_path, capsys):
    from vidiff.cli import main
    from vidiff.train.logging import read_metrics

    teacher = micro_pipeline()  # cfg 3: baked
    teacher.save(tmp_path / "teacher")
    config = tmp_path / "data.yaml"
    config.write_text(DATA)
    out = tmp_path / "out"
    args = _args(
        tmp_path / "teacher", out, config, "--from-steps", "4", "--to-steps", "1",
        "--steps-per-round", "3",
    )  # fmt: skip
    assert main(args) == 0
    for n in (2, 1):
        cfg = json.loads((out / f"student-{n}" / "config.json").read_text())["diffusion"]
        assert cfg["steps"] == n and cfg["sampler"] == "ddim" and cfg["cfg"] == 1.0
        d = cfg["distilled"]
        assert d["method"] == "progressive" and d["teacher_steps"] == 2 * n and d["steps"] == n
        assert d["guidance"] == "baked" and d["cfg"] == 3.0 and d["train_steps"] == 3
        assert d["data"]["name"] == "shapes"
    assert len(cfg["distilled"]["history"]) == 1  # the 4 -> 2 round
    assert len(read_metrics(out / "round-2to1" / "metrics.jsonl")) == 3
    student = VideoPipeline.load(out / "student-1")
    video = student.generate(PROMPTS[:1], [0])  # 1 DDIM step by default
    assert video.shape == (1, 3, 4, 8, 8)
    weights = load_file(str(out / "student-1" / "model.safetensors"))

    # finished rounds are skipped; a lost export is rewritten from the round's last checkpoint
    (out / "student-1" / "model.safetensors").unlink()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "student-2 exists; skipping" in said and "already finished" in said
    again = load_file(str(out / "student-1" / "model.safetensors"))
    assert again.keys() == weights.keys()
    assert all(torch.equal(again[k], weights[k]) for k in weights), [
        k for k in weights if not torch.equal(again[k], weights[k])
    ][:3]
    assert main(args) == 2  # without --resume: a clear error, nothing overwritten
    assert "--resume" in capsys.readouterr().err


def test_cli_guidance_stage_then_progressive(tmp_path):
    from vidiff.cli import main

    micro_pipeline().save(tmp_path / "teacher")
    config = tmp_path / "data.yaml"
    config.write_text(DATA)
    out = tmp_path / "out"
    args = _args(
        tmp_path / "teacher", out, config, "--guidance", "--from-steps", "2", "--to-steps", "1",
        "--steps-per-round", "2", "--w-min", "1", "--w-max", "4",
    )  # fmt: skip
    assert main(args) == 0
    guided = VideoPipeline.load(out / "guided-2")
    assert guided.guidance_embedded and guided.config.diffusion.distilled["method"] == "guidance"
    student = VideoPipeline.load(out / "student-1")
    d = student.config.diffusion
    assert student.guidance_embedded and d.steps == 1 and d.cfg == 3.0
    assert d.distilled["guidance"] == "embedded" and d.distilled["guidance_range"] == [1.0, 4.0]
    a, b = (student.generate(PROMPTS[:1], [0], cfg=w) for w in (1.5, 4.0))
    assert a.shape == (1, 3, 4, 8, 8) and torch.isfinite(a).all() and torch.isfinite(b).all()
    # the data travel with a distilled model: it can teach a further run without --config
    more = ["--to-steps", "1", "--steps-per-round", "1", "--batch-size", "2", "--no-progress"]
    assert main(["distill", str(out / "guided-2"), "--out", str(tmp_path / "x"), *more]) == 0
    assert VideoPipeline.load(tmp_path / "x" / "student-1").config.diffusion.steps == 1


def test_any_denoiser_network_distils_the_same_way():
    """Nothing is U-Net specific: a flow-matching DiT distils through the same denoiser contract."""
    net = "{hidden_size: 24, depth: 2, head_dim: 12, mlp_ratio: 2.0, patch_size: [1, 2, 2]}"
    teacher = micro_pipeline(
        "model.arch=dit", "model.preset=dit-tiny", f"model.net={net}",
        "diffusion.parameterization=flow", "diffusion.sigmas={shift: 2.0}",
    )  # fmt: skip
    obj = ProgressiveDistillation(teacher, copy.deepcopy(teacher), 4, guidance=3.0)
    video, captions = torch.rand(2, 3, 4, 8, 8), PROMPTS[:2]
    loss = obj.training_loss(video, captions, [1, 2])
    assert loss.shape == (2,) and torch.isfinite(loss).all() and (loss > 0).all()
    loss.mean().backward()
    student = guided_student(teacher)
    x, sigma, cond = (
        torch.randn(2, 3, 4, 8, 8),
        torch.tensor([0.3, 3.0]),
        teacher.encode_prompts(captions),
    )
    with torch.no_grad():
        torch.testing.assert_close(
            student.denoiser(x, sigma, guidance=torch.full((2,), 4.0), **cond),
            teacher.denoiser(x, sigma, **cond),
            rtol=0,
            atol=0,
        )
    # A fresh guided student is the teacher's conditional model, so its loss is 0 (to rounding) where
    # the seed drops the caption (CFG of an empty prompt is the unconditional model), > 0 elsewhere.
    objective = GuidanceDistillation(teacher, student, (1.0, 5.0))
    seeds = list(range(8))
    videos, prompts = video.repeat(4, 1, 1, 1, 1), captions * 4
    dropped = torch.tensor([p == "" for p in objective.setup(videos, prompts, seeds)[2]])
    assert dropped.any() and not dropped.all(), "the seeds should draw both kinds of sample"
    g = objective.training_loss(videos, prompts, seeds)
    assert torch.isfinite(g).all()
    assert (g[dropped] < 1e-12).all() and (g[~dropped] > 1e-6).all()
