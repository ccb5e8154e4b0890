"""Distillation rounds: the plan (64 -> 32 -> ... steps), each round's student config and guidance, the
students' exports. ``vidiff distill`` (:mod:`vidiff.commands.distill`) runs them."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidiff.config import (
    DataConfig,
    PipelineConfig,
    from_dict,
    load_config,
    to_dict,
)
from vidiff.files import CONFIG_NAME
from vidiff.pipeline import VideoPipeline


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
