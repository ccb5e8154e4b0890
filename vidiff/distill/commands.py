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

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidiff.config import (
    Config,
    DataConfig,
    PipelineConfig,
    TrainConfig,
    from_dict,
    load_config,
    to_dict,
)
from vidiff.pipeline import CONFIG_NAME, WEIGHTS_NAME, VideoPipeline

# A teacher that is not itself distilled starts from this many DDIM steps (unless --from-steps).
DEFAULT_FROM_STEPS = 64


@dataclass
class Round:
    """One distillation stage: ``kind`` is "guidance" (stage 1, steps unchanged) or "progressive"."""

    kind: str
    teacher_steps: int
    student_steps: int
    run_dir: Path
    export_dir: Path


def plan_rounds(out: Path, from_steps: int, to_steps: int, guidance_stage: bool) -> list[Round]:
    """The rounds ``from_steps -> from_steps / 2 -> ... -> to_steps`` (after a guidance stage)."""
    if to_steps < 1 or from_steps < to_steps:
        raise ValueError(f"need from_steps >= to_steps >= 1, got {from_steps} -> {to_steps}")
    ratio = from_steps // to_steps
    if from_steps % to_steps or ratio & (ratio - 1):
        raise ValueError(
            f"--from-steps {from_steps} must be --to-steps {to_steps} times a power of two"
        )
    rounds = []
    if guidance_stage:
        rounds.append(
            Round(
                "guidance",
                from_steps,
                from_steps,
                out / "round-guidance",
                out / f"guided-{from_steps}",
            )
        )
    n = from_steps
    while n > to_steps:
        rounds.append(
            Round("progressive", n, n // 2, out / f"round-{n}to{n // 2}", out / f"student-{n // 2}")
        )
        n //= 2
    if not rounds:
        raise ValueError(
            f"nothing to do: --from-steps {from_steps} equals --to-steps {to_steps} "
            "(add --guidance for guidance distillation alone)"
        )
    return rounds


def resolve_data_config(
    teacher_dir: Path, teacher: VideoPipeline, config: str | None
) -> tuple[DataConfig, str]:
    """The data to distil on: ``--config`` (a run YAML; only its ``data`` section is used), else the
    ``data`` a distilled teacher records, else the ``config.yaml`` of the run the teacher was exported
    into (``vidiff export RUN -o RUN/model``). Exported models hold no data section, so one of these
    must exist. Returns the config and where it came from."""
    distilled = teacher.config.diffusion.distilled or {}
    if config is not None:
        data, source = load_config(config).data, str(config)
    elif distilled.get("data") is not None:
        data, source = (
            from_dict(DataConfig, distilled["data"], "data."),
            f"{teacher_dir}/{CONFIG_NAME}",
        )
    elif (teacher_dir.parent / "config.yaml").is_file():
        source = str(teacher_dir.parent / "config.yaml")
        data = load_config(source).data
    else:
        raise ValueError(
            f"no training data known for teacher {teacher_dir}: an exported model does not record "
            "its dataset; pass --config RUN.yaml (the teacher's training config; only its data "
            "section is used)"
        )
    video = teacher.config.video
    if (data.num_frames, data.size) != (video.num_frames, video.size):
        raise ValueError(
            f"the data in {source} makes {data.num_frames}x{data.size}x{data.size} clips but the "
            f"teacher {teacher_dir} makes {video.num_frames}x{video.size}x{video.size}"
        )
    return data, source


def student_config(
    teacher: VideoPipeline, rnd: Round, guidance: str, cfg: float, w_range, data: DataConfig
) -> PipelineConfig:
    """The exported student's config: the teacher's, with ``diffusion.steps`` = its step count,
    ``diffusion.sampler = "ddim"`` and ``diffusion.distilled`` metadata (module docstring of
    :mod:`vidiff.distill`). A baked-guidance student gets ``diffusion.cfg = 1``."""
    pc = copy.deepcopy(teacher.config)
    pc.model.net = json.loads(json.dumps(dataclasses.asdict(teacher.net.config)))
    if rnd.kind == "guidance":
        pc.model.net["guidance_embed"] = True
    dc = pc.diffusion
    history = list((dc.distilled or {}).get("history", []))
    if dc.distilled:
        history.append({k: v for k, v in dc.distilled.items() if k not in ("history", "data")})
    dc.steps, dc.sampler = rnd.student_steps, "ddim"
    meta: dict[str, Any] = {
        "method": rnd.kind,
        "teacher_steps": rnd.teacher_steps,
        "steps": rnd.student_steps,
        "guidance": guidance,
        "cfg": cfg,
    }
    if guidance == "embedded":
        meta["guidance_range"] = list(w_range)
        dc.cfg = cfg
    elif guidance == "baked":
        dc.cfg = 1.0
    meta["data"] = to_dict(data)
    meta["history"] = history
    dc.distilled = meta
    return pc


def student_from_teacher(teacher: VideoPipeline, pc: PipelineConfig) -> VideoPipeline:
    """A student built from ``pc`` with the teacher's weights; a new guidance embedding (the only
    keys the teacher may lack) keeps its zero initialisation."""
    student = VideoPipeline(pc)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    bad = [k for k in missing if ".guidance_embed." not in k] + list(unexpected)
    if bad:
        raise ValueError(f"the student does not fit the teacher's weights: {bad[:3]}")
    return student


def export_round(run_dir: Path, pc: PipelineConfig, export_dir: Path) -> Path:
    """Export the EMA student of the newest checkpoint in ``run_dir`` as a model folder."""
    from vidiff.train.checkpoint import latest_checkpoint, load_state

    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir} to export")
    state = load_state(ckpt)
    ema = state["ema"]["module"]
    weights = {k.removeprefix("student."): v for k, v in ema.items() if k.startswith("student.")}
    pc = copy.deepcopy(pc)
    pc.diffusion.distilled = {**pc.diffusion.distilled, "train_steps": int(state["step"])}
    pipe = VideoPipeline(pc)
    pipe.load_weights(weights, ckpt)
    return pipe.save(export_dir)


def round_guidance(
    teacher: VideoPipeline, rnd: Round, cfg: float | None, w_range: tuple[float, float]
) -> tuple[str, float | tuple[float, float], float]:
    """``(mode, objective guidance, w)`` for a round: how the teacher's classifier-free guidance
    reaches the student.

    * ``"embedded"``: a guidance stage, or a guidance-embedded teacher: per-sample ``w`` in
      ``w_range`` for teacher and student; ``w`` (default sampling weight) = ``cfg`` or the teacher's.
    * ``"baked"``: a teacher that already has guidance baked in (objective weight 1), or a
      text-conditional teacher guided at ``w = cfg`` (default its ``diffusion.cfg``) != 1.
    * ``"none"``: an unconditional teacher or ``w = 1``; the student keeps the teacher's sampling cfg.
    """
    default = teacher.config.diffusion.cfg if cfg is None else cfg
    if rnd.kind == "guidance" or teacher.guidance_embedded:
        return "embedded", tuple(w_range), default
    if teacher.baked_cfg is not None:
        return "baked", 1.0, teacher.baked_cfg
    if teacher.text_encoder is not None and default != 1.0:
        return "baked", default, default
    return "none", 1.0, 1.0


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
    """
    from vidiff.distill.guidance import GuidanceDistillation
    from vidiff.distill.progressive import ProgressiveDistillation
    from vidiff.train.loop import train

    teacher_dir, out_dir = Path(teacher), Path(out)
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
        raise ValueError("--guidance needs a text-conditional teacher; this one has none")
    if pipe.baked_cfg is not None and cfg is not None and cfg != 1.0:
        raise ValueError(f"{teacher_dir} has guidance w={pipe.baked_cfg:g} baked in; drop --cfg")
    w_range = tuple(distilled.get("guidance_range", (w_min, w_max)))
    if not 0 <= w_range[0] <= w_range[1]:
        raise ValueError(f"need 0 <= --w-min <= --w-max, got {w_range}")

    rounds = plan_rounds(out_dir, from_steps, to_steps, guidance_stage)
    if not resume:
        done = [r.export_dir for r in rounds if r.export_dir.exists()]
        if done:
            raise ValueError(
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
