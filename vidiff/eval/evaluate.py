"""Evaluation runs: score a model (sampling a fixed prompt set) or a folder of videos, write a report.

:func:`evaluate_model` and :func:`evaluate_folder` do the work of ``vidiff eval``
(:mod:`vidiff.commands.eval`); :func:`quick_eval` is the small fast evaluation the trainer logs every
N steps; :func:`record_figures` writes a model folder's ``eval.json``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from vidiff.eval import probes, report
from vidiff.eval.runner import (
    DATASETS,
    SPLITS,
    EvalSet,
    build_real_dataset,
    check_splits,
    distribution,
    eval_sets,
    generate,
    score_videos,
)

GALLERY_MAX = 48  # videos shown per split in the report


def check_eval_args(
    dataset: str, num_videos: int, steps: list[int] | None, splits: list[str] | None = None
) -> None:
    if splits is not None:
        check_splits(splits)
    if dataset not in DATASETS:
        raise ValueError(f"unknown --dataset {dataset!r}; expected one of {list(DATASETS)}")
    if num_videos < 2:
        raise ValueError(f"--num-videos must be >= 2 (FD needs a covariance), got {num_videos}")
    for s in steps or []:
        if s < 1:
            raise ValueError(f"--steps must be positive, got {s}")


def guidance_label(metrics: dict) -> str:
    """How the videos were guided: ``cfg W``, or ``cfg W baked`` for a distilled student whose
    guidance is in its weights (it samples at cfg 1, which would read as unguided); then the frame
    noise correlation when there was one."""
    if metrics.get("cfg") is None and metrics.get("cfg_baked") is None:
        label = "no guidance"  # a GAN, VideoGPT
    elif metrics.get("cfg_baked") is not None:
        label = f"cfg {metrics['cfg_baked']:g} baked"
    else:
        label = f"cfg {metrics['cfg']}"
    rho = metrics.get("noise_correlation") or 0.0
    return label + (f", frame noise correlation {rho:g}" if rho else "")


def record_figures(metrics: dict, model: Path) -> Path:
    """Write a model's measured figures (one row per steps setting) as ``model/eval.json``."""
    from vidiff.files import EVAL_FILE

    keys = ("n", "adherence", "adherence_geo", "shape_ok", "geo_shape_ok", "flicker_median",
            "jitter_median", "fd", "sec_per_video")  # fmt: skip
    rows = []
    sampling = metrics.get("cfg") is not None or metrics.get("cfg_baked") is not None
    for run in metrics["runs"]:
        row = {
            "setting": f"{run['steps']} {metrics['sampler']} steps, {guidance_label(metrics)}"
            if sampling
            else f"{metrics['sampler']}, no guidance",
            "num_videos": metrics["num_videos"],
        }
        for split, summ in run["splits"].items():
            suffix = "" if split == "train" else f"_{split}"
            row.update({f"{k}{suffix}": summ[k] for k in keys if k in summ})
        rows.append(row)
    figures = {
        "command": f"vidiff eval --model {metrics['model']} --num-videos {metrics['num_videos']} "
        + (
            f"--steps {' '.join(str(r['steps']) for r in metrics['runs'])} --sampler {metrics['sampler']} "
            + ("" if metrics.get("cfg_baked") is not None else f"--cfg {metrics['cfg']} ")
            if sampling
            else ""
        )
        + (f"--noise-correlation {rho:g} " if (rho := metrics.get("noise_correlation")) else "")
        + f"--seed {metrics['seed']}"
        + (
            f" --all-prompts --seeds-per-prompt {k}"
            if (k := metrics.get("seeds_per_prompt"))
            else ""
        ),
        "when": time.strftime("%Y-%m-%d"),
        "eval_seconds": round(metrics.get("eval_seconds", 0.0)),
        "rows": rows,
    }
    return report.write_json(figures, model / EVAL_FILE)


# ------------------------------------------------------------------------------------------------
# --model


def load_pipeline(model: str, device: str = "auto"):
    """The model of an exported folder, any family (:func:`vidiff.families.load_model`), on
    ``device`` (``auto``: the GPU when there is one)."""
    from vidiff.families import load_model
    from vidiff.runtime import resolve_device

    if not Path(model).exists():
        raise FileNotFoundError(f"model folder not found: {model}")
    return load_model(model, device=resolve_device(device))


def i3d_on_device(path: str):
    """The I3D network of ``path`` (see :func:`vidiff.eval.frechet.load_i3d`), on the GPU when there is one."""
    from vidiff.eval.frechet import load_i3d

    model = load_i3d(path)
    return model.cuda() if torch.cuda.is_available() else model


def evaluate_model(
    pipe, model, dataset, num_videos, steps, sampler, cfg, noise_correlation, seed, out_dir: Path,
    batch_size, i3d=None, splits=SPLITS, done=None, seeds_per_prompt=0,
):  # fmt: skip
    """Sample and score ``pipe`` on each split's prompt set, once per ``steps`` value; ``done(n)`` is
    called as videos are sampled. ``seeds_per_prompt`` > 0: every prompt of each split that many
    times (``--all-prompts``)."""
    pipe.eval()
    sets = eval_sets(dataset, num_videos, pipe.num_frames, pipe.size, seed, splits,
                     all_prompts=seeds_per_prompt > 0, seeds_per_prompt=max(seeds_per_prompt, 1))  # fmt: skip
    if seeds_per_prompt:  # the sets' sizes, not --num-videos, say how many videos a row has
        num_videos = len(sets[0].prompts)
    real = {es.split: _score_real(es) for es in sets}
    runs, gen_by_run = [], []
    diffusion = getattr(pipe, "family", "diffusion") == "diffusion"
    for s in steps or [None]:
        # a GAN or VideoGPT has no diffusion steps: one run, reported as 1
        default_steps = pipe.config.diffusion.steps if diffusion else 1
        run = {"steps": s if s is not None else default_steps, "splits": {}}
        per_split = {}
        for es in sets:
            vids, dt, k = generate(
                pipe,
                es,
                steps=s,
                sampler=sampler,
                cfg=cfg,
                noise_correlation=noise_correlation,
                batch_size=batch_size,
                done=done,
            )
            verdicts = score_videos(dataset, vids, es.prompts, es.gts, num_cond_frames=k)
            summ = probes.summarize(verdicts)
            summ.update(distribution(vids, es, seed, i3d))
            summ["sec_per_video"] = dt
            run["splits"][es.split] = summ
            per_split[es.split] = (vids, verdicts)
            print(f"steps={run['steps']} {es.split}: adherence {summ.get('adherence', math.nan):.3f} "
                  f"({dt:.3f} s/video)", flush=True)  # fmt: skip
        runs.append(run)
        gen_by_run.append(per_split)
    fps = float(getattr(pipe.config.video, "fps", 8))
    best = max(range(len(runs)), key=lambda i: runs[i]["steps"])
    galleries, videos_json = [], []
    for es in sets:
        vids, verdicts = gen_by_run[best][es.split]
        items = _write_gallery(out_dir, f"{es.split}", vids, verdicts, fps)
        galleries.append((f"Generated, {es.split} split ({runs[best]['steps']} steps)", items))
        for i, (v, it) in enumerate(zip(verdicts, items)):
            videos_json.append(
                {"split": es.split, "index": i, "seed": es.seeds[i], "gif": it["gif"], **v}
            )
    metrics = {
        "dataset": dataset,
        "model": str(model),
        "num_videos": num_videos,
        "seed": seed,
        "seeds_per_prompt": seeds_per_prompt or None,  # set: every prompt (--all-prompts)
        "sampler": sampler or (pipe.config.diffusion.sampler if diffusion else pipe.family),
        "cfg": cfg if cfg is not None else (pipe.config.diffusion.cfg if diffusion else None),
        "cfg_baked": pipe.baked_cfg,
        "noise_correlation": (
            (pipe.config.diffusion.noise_correlation if diffusion else None)
            if noise_correlation is None
            else noise_correlation
        ),
        "runs": runs,
        "real": real,
        "videos": videos_json,
    }
    _headline(metrics, runs[best]["splits"])
    tables = [
        (
            f"{split} split — N = {num_videos} per row; FD only comparable at equal N",
            [(f"{r['steps']} steps", r["splits"][split]) for r in runs]
            + [("real clips", real[split])],
        )
        for split in runs[0]["splits"]
    ]
    plots = [
        p
        for p in (
            report.plot_quality_vs_steps(runs, out_dir / "quality_vs_steps.png"),
            report.plot_attributes(
                {
                    **{f"gen {k}": v for k, v in runs[best]["splits"].items()},
                    **{f"real {k}": v for k, v in real.items()},
                },
                out_dir / "attributes.png",
            ),  # fmt: skip
            report.plot_distributions(
                {f"gen {k}": v[1] for k, v in gen_by_run[best].items()}, out_dir / "consistency.png"
            ),
        )
        if p is not None
    ]
    subtitle = (
        f"model {model} · dataset {dataset} · sampler {metrics['sampler']} · {guidance_label(metrics)} · "
        f"seed {seed} · N = {num_videos} per split"
    )
    report.write_report(out_dir, "vidiff eval", subtitle, tables, plots, galleries, _notes(dataset))
    return metrics


def _score_real(es: EvalSet) -> dict:
    verdicts = score_videos(es.dataset, es.real, es.real_captions or es.prompts, es.gts)
    return probes.summarize(verdicts)


def _headline(metrics: dict, splits: dict) -> None:
    """Flat top-level numbers: the in-distribution split's, and ``*_heldout`` for the other."""
    for split, summ in splits.items():
        suffix = "" if split in ("train", "all") else f"_{split}"
        for k, v in summ.items():
            if isinstance(v, (int, float)):
                metrics[f"{k}{suffix}"] = v


def _notes(dataset: str) -> list[str]:
    notes = [
        "FD is biased in N: compare it only at equal N, against the real-vs-real floor in the same "
        "row set. KID is unbiased (may be slightly negative) and carries a 95% bootstrap CI in metrics.json.",
        "Features for FD/KID come from vidiff's own 3D-CNN trained on MovingShapes training clips "
        "(vidiff/assets/video_features.safetensors), not I3D: numbers are not comparable to published FVD.",
    ]
    if dataset == "shapes":
        notes.append(
            "A video is correct when colour (nearest palette colour), shape (CNN judge trained on "
            "ground-truth renders) and direction (least-squares velocity; static below 0.3 px/frame "
            "at 32 px) all match the prompt. 'adherence (geometric shape)' also requires the "
            "geometric shape probe (box fill and corner coverage, nearest ground-truth prototype) "
            "to read the prompted shape. Green border = correct by both."
        )
    return notes


def _write_gallery(
    out_dir: Path, prefix: str, vids, verdicts: list[dict], fps: float
) -> list[dict]:
    items = []
    for i, (v, verdict) in enumerate(zip(vids, verdicts)):
        if i < GALLERY_MAX:
            files = report.write_clip(v, out_dir / "videos" / f"{prefix}_{i:04d}", fps)
            gif, mp4 = f"videos/{files['gif']}", f"videos/{files['mp4']}"
        else:
            gif = mp4 = ""
        items.append(
            {
                "gif": gif,
                "mp4": mp4,
                "caption": verdict["caption"],
                "verdict": report.verdict_text(verdict),
                "ok": verdict.get("correct_geo", verdict.get("correct", 0)) >= 1,
            }
        )
    return items


# ------------------------------------------------------------------------------------------------
# --videos


def read_manifest(manifest: Path, videos: Path | None) -> list[dict]:
    """Rows of a JSONL manifest with resolved ``path`` and ``caption`` (``prompt`` also accepted)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    base = videos if videos is not None else manifest.parent
    rows = []
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{manifest}:{n}: not JSON ({e.msg})") from None
        if "path" not in row:
            raise ValueError(f"{manifest}:{n}: row has no 'path'")
        caption = row.get("caption", row.get("prompt"))
        if not isinstance(caption, str):
            raise ValueError(f"{manifest}:{n}: row has no 'caption' or 'prompt'")
        path = Path(row["path"])
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise FileNotFoundError(f"{manifest}:{n}: video not found: {path}")
        rows.append({**row, "path": path, "caption": caption})
    if not rows:
        raise ValueError(f"manifest {manifest} lists no videos")
    return rows


def _split_of(dataset: str, row: dict) -> str:
    split = row.get("split") or (row.get("gt") or {}).get("split")
    if split:
        return str(split)
    if dataset == "shapes":
        from vidiff.data.shapes import HELDOUT_PAIRS

        objs = probes.parse_shapes_caption(row["caption"])
        return (
            "heldout" if any((o["colour"], o["shape"]) in HELDOUT_PAIRS for o in objs) else "train"
        )
    return "all"


def evaluate_folder(videos, manifest, dataset, seed, out_dir: Path, i3d=None) -> dict:
    from vidiff.data.video_io import read_video

    vdir = Path(videos) if videos is not None else None
    if vdir is not None and not vdir.is_dir():
        raise FileNotFoundError(f"videos folder not found: {vdir}")
    mpath = Path(manifest) if manifest is not None else vdir / "manifest.jsonl"
    rows = read_manifest(mpath, vdir)
    groups: dict[str, list[tuple[dict, torch.Tensor, float]]] = {}
    for row in rows:
        clip, fps = read_video(row["path"])
        groups.setdefault(_split_of(dataset, row), []).append((row, clip, fps))
    splits, galleries, videos_json, notes = {}, [], [], _notes(dataset)
    verdicts_by_split = {}
    for split in sorted(groups, key=lambda s: (s != "train", s)):
        items = groups[split]
        clips = [c for _, c, _ in items]
        k = [int(r.get("num_cond_frames", 0)) for r, _, _ in items]
        verdicts = [
            score_videos(dataset, [c], [r["caption"]], [r.get("gt")], num_cond_frames=kk)[0]
            for (r, c, _), kk in zip(items, k)
        ]
        summ = probes.summarize(verdicts)
        summ.update(_folder_distribution(dataset, split, clips, seed, notes, i3d))
        splits[split] = summ
        verdicts_by_split[split] = verdicts
        gallery = _write_gallery(out_dir, split, clips, verdicts, items[0][2] or 8)
        galleries.append((f"{split} ({len(items)} videos)", gallery))
        for (r, _, _), v, it in zip(items, verdicts, gallery):
            videos_json.append({"split": split, "path": str(r["path"]), "gif": it["gif"], **v})
    metrics = {
        "dataset": dataset,
        "videos": videos_json,
        "manifest": str(mpath),
        "splits": splits,
        "seed": seed,
    }
    _headline(metrics, splits)
    tables = [("Scores (FD only comparable at equal N)", [(s, m) for s, m in splits.items()])]
    plots = [
        p
        for p in (
            report.plot_attributes(splits, out_dir / "attributes.png"),
            report.plot_distributions(verdicts_by_split, out_dir / "consistency.png"),
        )
        if p is not None
    ]
    report.write_report(
        out_dir,
        "vidiff eval",
        f"videos from {mpath} · dataset {dataset}",
        tables,
        plots,
        galleries,
        notes,
    )
    return metrics


def _folder_distribution(
    dataset: str, split: str, clips: list[torch.Tensor], seed: int, notes, i3d=None
) -> dict:
    """FD/KID of a folder's clips against fresh real clips of the same split, length and size."""
    n = len(clips)
    shapes = {tuple(c.shape) for c in clips}
    if n < 2 or len(shapes) != 1:
        notes.append(
            f"{split}: no FD/KID (needs >= 2 clips of one shape, got {n}, shapes {sorted(shapes)})"
        )
        return {}
    c, t, h, w = shapes.pop()
    try:
        ds = build_real_dataset(
            dataset, split if split in ("train", "heldout") else "train", 2 * n, t, h
        )
    except ValueError as e:
        notes.append(f"{split}: no FD/KID ({e})")
        return {}
    items = [ds[i] for i in range(2 * n)]
    es = EvalSet(
        dataset, split, [it["caption"] for it in items[:n]], list(range(n)),
        torch.stack([it["video"] for it in items[:n]]),
        torch.stack([it["video"] for it in items[n:]]),
    )  # fmt: skip
    return distribution(torch.stack(clips), es, seed, i3d)


# ------------------------------------------------------------------------------------------------
# the trainer's quick eval


def quick_eval(
    pipeline, num_videos: int = 16, steps: int | None = None, seed: int = 0, dataset: str = "shapes"
) -> dict[str, float]:
    """A small, fast evaluation for training logs: ``num_videos`` per split (in-distribution and
    held-out), probes only (no FD). Returns flat floats: ``adherence``, ``adherence_heldout``,
    per-attribute shares, ``flicker_median``, ``jitter_median``, ``sec_per_video``.

    A dataset without ground truth (``folder``, ``images``) has nothing to probe: ``{}`` with a
    warning, so that a training run never stops over its eval hook."""
    if dataset not in DATASETS:
        warnings.warn(f"quick_eval: no exact probes for dataset {dataset!r}; skipped", stacklevel=2)
        return {}
    check_eval_args(dataset, num_videos, [steps] if steps else None)
    was_training = pipeline.training
    pipeline.eval()
    try:
        out: dict[str, float] = {}
        for es in eval_sets(dataset, num_videos, pipeline.num_frames, pipeline.size, seed):
            vids, dt, k = generate(pipeline, es, steps=steps)
            summ = probes.summarize(
                score_videos(dataset, vids, es.prompts, es.gts, num_cond_frames=k)
            )
            summ["sec_per_video"] = dt
            suffix = "" if es.split == "train" else f"_{es.split}"
            out.update({f"{key}{suffix}": float(v) for key, v in summ.items() if key != "n"})
        return {k: v for k, v in out.items() if not (isinstance(v, float) and np.isnan(v))}
    finally:
        pipeline.train(was_training)
