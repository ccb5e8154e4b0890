"""``vidiff distill``: guidance distillation and progressive distillation rounds, each a resumable
training run whose EMA student is exported as a model folder.

Layout under ``--out``::

    OUT/round-guidance/      stage 1 run (with --guidance): checkpoints/, metrics.jsonl, config.yaml
    OUT/guided-64/           its export: a guidance-embedded model, DDIM at 64 steps
    OUT/round-64to32/        progressive round run
    OUT/student-32/          its export (the teacher of the next round)
    ...
    OUT/student-8/           the final student

``--resume`` skips rounds whose export exists and continues an unfinished round from its newest
checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from vidiff.commands import checks
from vidiff.config import Config, TrainConfig
from vidiff.distill.rounds import (
    export_round,
    plan_rounds,
    resolve_data_config,
    round_guidance,
    student_config,
    student_from_teacher,
)
from vidiff.errors import UserError
from vidiff.files import CONFIG_NAME, WEIGHTS_NAME
from vidiff.pipeline import VideoPipeline
from vidiff.registry import resolve_model

# A teacher that is not itself distilled starts from this many DDIM steps (unless --from-steps).
DEFAULT_FROM_STEPS = 64


def _exported(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()


def distill(
    teacher: str,
    *,
    to_steps: int = 8,
    from_steps: int | None = None,
    guidance: bool = False,
    config: str | None = None,
    out: str = "runs/distill",
    steps_per_round: int = 2000,
    guidance_steps: int | None = None,
    batch_size: int = 8,
    lr: float = 1e-4,
    warmup_steps: int = 20,
    ema_decay: float = 0.999,
    cfg: float | None = None,
    w_min: float = 1.0,
    w_max: float = 5.0,
    weighting: str = "truncated_snr",
    ckpt_every: int = 250,
    log_every: int = 10,
    seed: int = 0,
    mixed_precision: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> None:
    """Distil a model to few DDIM steps: progressive distillation (Salimans & Ho 2022), optionally
    after guidance distillation (Meng et al. 2023).

    Rounds --from-steps -> /2 -> ... -> --to-steps; each is a training run under --out (checkpoints,
    metrics.jsonl, --resume) exported as OUT/student-N, which `vidiff sample/generate/eval` load with
    N DDIM steps as their default. --from-steps defaults to a distilled teacher's own step count, else
    64. The teacher's classifier-free guidance (--cfg, default its diffusion.cfg) is baked into the
    student; with --guidance, stage 1 first trains a guidance-embedded student (w ~ U[--w-min,
    --w-max], --guidance-steps steps) that takes --cfg at sampling in one forward pass, and the
    rounds keep it. The data come from --config (a run YAML; only its data section is used), else
    from a distilled teacher's record, else from TEACHER/../config.yaml.

    Args:
        teacher: the exported model folder (or a shipped model's name) to distil.
        to_steps: the final student's DDIM steps.
        from_steps: the teacher's DDIM steps (default: a distilled teacher's own, else 64); must be
            --to-steps times a power of two.
        guidance: first train a guidance-embedded student that takes --cfg in one forward pass.
        config: a run YAML whose data section is the data to distil on.
        out: the folder of the rounds' runs and exports.
        steps_per_round: training steps of each progressive round.
        guidance_steps: training steps of the guidance stage (default: --steps-per-round).
        batch_size: training batch size.
        lr: learning rate.
        warmup_steps: learning-rate warm-up steps.
        ema_decay: EMA decay of the student's weights (the exported ones).
        cfg: the teacher's guidance weight to bake in, or the embedded student's default weight
            (default: the teacher's diffusion.cfg).
        w_min: lowest guidance weight the guidance stage trains on.
        w_max: highest guidance weight the guidance stage trains on.
        weighting: the loss weighting over noise levels: truncated_snr or snr_plus_one.
        ckpt_every: steps between checkpoints.
        log_every: steps between metrics.jsonl lines.
        seed: the training seed.
        mixed_precision: auto (bf16 on a GPU, fp32 on the CPU), no, bf16 or fp16.
        resume: skip finished rounds and continue an unfinished one from its newest checkpoint.
        progress: show a progress bar.
    """
    from vidiff.distill.guidance import GuidanceDistillation
    from vidiff.distill.progressive import ProgressiveDistillation
    from vidiff.train.loop import train

    for option, value in [("--to-steps", to_steps), ("--from-steps", from_steps),
                          ("--steps-per-round", steps_per_round), ("--guidance-steps", guidance_steps),
                          ("--batch-size", batch_size), ("--lr", lr), ("--ckpt-every", ckpt_every),
                          ("--log-every", log_every)]:  # fmt: skip
        checks.positive(option, value)
    checks.seed_range("--seed", seed)
    checks.fraction("--ema-decay", ema_decay, 0, 1)
    checks.non_negative("--cfg", cfg)
    checks.input_file("--config", config)
    checks.folder("--out", out)
    teacher_dir, out_dir = resolve_model(teacher, "TEACHER"), Path(out)
    pipe = VideoPipeline.load(teacher_dir)
    data, source = resolve_data_config(teacher_dir, pipe, config)
    distilled = pipe.config.diffusion.distilled or {}
    if from_steps is None:
        from_steps = pipe.config.diffusion.steps if distilled else DEFAULT_FROM_STEPS

    # How the teacher's guidance reaches the student (see round_guidance).
    guidance_stage = bool(guidance) and not pipe.guidance_embedded
    if guidance and pipe.guidance_embedded:
        print(f"vidiff: {teacher_dir} is already guidance-embedded; no guidance stage needed")
    if guidance_stage and pipe.text_encoder is None:
        raise UserError("--guidance needs a text-conditional teacher; this one has none")
    if pipe.baked_cfg is not None and cfg is not None and cfg != 1.0:
        raise UserError(f"{teacher_dir} has guidance w={pipe.baked_cfg:g} baked in; drop --cfg")
    w_range = tuple(distilled.get("guidance_range", (w_min, w_max)))
    if not 0 <= w_range[0] <= w_range[1]:
        raise UserError(f"need 0 <= --w-min <= --w-max, got {w_range}")

    rounds = plan_rounds(out_dir, from_steps, to_steps, guidance_stage)
    if not resume:
        done = [r.export_dir for r in rounds if r.export_dir.exists()]
        if done:
            raise UserError(
                f"{done[0]} already exists; pass --resume to continue (finished rounds are "
                "skipped) or choose another --out"
            )
    path = [str(rounds[0].teacher_steps)] + [
        ("guided " if r.kind == "guidance" else "") + str(r.student_steps) for r in rounds
    ]
    print(f"vidiff: distilling {teacher_dir} ({' -> '.join(path)} steps); data from {source}")

    current, current_dir = pipe, teacher_dir
    for rnd in rounds:
        mode, g, w = round_guidance(current, rnd, cfg, w_range)
        pc = student_config(current, rnd, mode, w, w_range, data)
        if resume and _exported(rnd.export_dir):
            print(f"vidiff: {rnd.export_dir} exists; skipping the {rnd.kind} round")
            current, current_dir = VideoPipeline.load(rnd.export_dir), rnd.export_dir
            continue
        student = student_from_teacher(current, pc)
        if rnd.kind == "guidance":
            objective = GuidanceDistillation(current, student, w_range, weighting=weighting)
            n_steps = guidance_steps if guidance_steps is not None else steps_per_round
        else:
            objective = ProgressiveDistillation(
                current, student, rnd.teacher_steps, guidance=g, weighting=weighting
            )
            n_steps = steps_per_round
        run_config = Config(
            data=data,
            model=pc.model,
            diffusion=pc.diffusion,
            train=TrainConfig(
                out_dir=str(rnd.run_dir),
                steps=n_steps,
                batch_size=batch_size,
                lr=lr,
                warmup_steps=warmup_steps,
                ema_decay=ema_decay,
                mixed_precision=mixed_precision,
                seed=seed,
                log_every=log_every,
                ckpt_every=ckpt_every,
            ),
        )
        print(
            f"vidiff: {rnd.kind} round {rnd.teacher_steps} -> {rnd.student_steps} steps "
            f"(guidance {mode}, w={w:g}) in {rnd.run_dir}"
        )
        train(run_config, resume=resume, model=objective, progress=progress)
        export_round(rnd.run_dir, pc, rnd.export_dir)
        print(f"vidiff: exported {rnd.export_dir}")
        current, current_dir = VideoPipeline.load(rnd.export_dir), rnd.export_dir
    print(f"vidiff: final student: {current_dir}")
