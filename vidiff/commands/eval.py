"""``vidiff eval``: score a model (sampling a fixed prompt set) or a folder of videos, write a report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vidiff.commands import checks
from vidiff.errors import UserError
from vidiff.eval import report
from vidiff.eval.evaluate import (
    check_eval_args,
    evaluate_folder,
    evaluate_model,
    i3d_on_device,
    load_pipeline,
    record_figures,
)
from vidiff.eval.runner import SPLITS
from vidiff.registry import resolve_model
from vidiff.runtime import resolve_device


def evaluate(
    *,
    model: str | None = None,
    videos: str | None = None,
    manifest: str | None = None,
    dataset: str = "shapes",
    num_videos: int = 64,
    steps: list[int] | None = None,
    sampler: str | None = None,
    cfg: float | None = None,
    noise_correlation: float | None = None,
    seed: int = 0,
    out: str = "eval-out",
    batch_size: int = 16,
    splits: list[str] | None = None,
    record: bool = False,
    i3d: str | None = None,
    device: str = "auto",
    progress: bool = True,
    all_prompts: bool = False,
    seeds_per_prompt: int = 1,
) -> dict:
    """Evaluate generated video exactly: prompt adherence, temporal consistency, physics, FD/KID.

    Either --model DIR (an exported model: samples a fixed, seeded prompt set per split, in-distribution
    and held-out, once per --steps value) or --videos DIR [--manifest FILE] (score videos made
    anywhere; manifest rows are JSON with `path` and `caption` or `prompt`, as `vidiff data export`
    writes; default DIR/manifest.jsonl). --splits train|heldout limits --model to those prompt sets
    (default both; each set is the same whichever others are asked for). --noise-correlation R
    overrides the model's share of starting noise common to all frames. --record also writes the
    figures into the model folder as eval.json, which `vidiff demo` shows. Writes OUT/metrics.json
    and OUT/report.html (playing videos with prompts and verdicts, metric tables, plots). --i3d FILE
    (Kinetics-400 InceptionI3d weights, .safetensors or .pt, pytorch-i3d names) adds the standard FVD
    and its real-vs-real floor. --all-prompts (MovingShapes, --model) samples every caption of each
    split --seeds-per-prompt times instead of --num-videos sampled ones.

    Args:
        model: an exported model folder, or a shipped model's name (`vidiff models`), to sample and
            score.
        videos: a folder of videos to score (made anywhere) instead of a model.
        manifest: the JSONL list of the --videos (default: DIR/manifest.jsonl).
        dataset: the benchmark whose prompts and probes to use: shapes, balls or digits.
        num_videos: videos per split (at least 2; FD needs a covariance).
        steps: sampling step counts to evaluate, one run each (default: the model's).
        sampler: the sampler (default: the model's).
        cfg: classifier-free guidance weight (default: the model's).
        noise_correlation: share of the starting noise common to all frames, in [0, 1) (default:
            the model's).
        seed: seed of the prompt set and of the videos.
        out: the folder for metrics.json, report.html and the videos.
        batch_size: videos sampled at once.
        splits: the prompt sets to sample: train (in-distribution), heldout (default: both).
        record: also write the figures into the model folder as eval.json (`vidiff demo` shows it).
        i3d: Kinetics-400 InceptionI3d weights (.safetensors or .pt): adds the standard FVD.
        device: auto (the GPU when there is one), cpu, cuda, cuda:N or mps.
        progress: show a progress bar of the sampling on stderr.
        all_prompts: sample every MovingShapes caption of each split (with --model) instead of
            --num-videos drawn ones.
        seeds_per_prompt: with --all-prompts, videos per caption (seeds seed, seed + 1, ...).
    """
    check_eval_args(dataset, num_videos, steps, splits)
    checks.positive("--batch-size", batch_size)
    checks.seed_range("--seed", seed)
    checks.sampler_name(sampler)
    checks.non_negative("--cfg", cfg)
    checks.fraction("--noise-correlation", noise_correlation, 0, 1)
    checks.input_file("--i3d", i3d)
    checks.folder("--out", out)
    resolve_device(device)
    if model is not None and (videos is not None or manifest is not None):
        raise UserError("give either --model DIR or --videos DIR [--manifest FILE], not both")
    if record and model is None:
        raise UserError("--record writes eval.json into a model folder: it needs --model DIR")
    if model is None and videos is None and manifest is None:
        raise UserError("nothing to evaluate: give --model DIR or --videos DIR [--manifest FILE]")
    sampling = {"--steps": steps, "--sampler": sampler, "--cfg": cfg,
                "--noise-correlation": noise_correlation, "--splits": splits,
                "--all-prompts": all_prompts or None}  # fmt: skip
    if all_prompts and dataset != "shapes":
        raise UserError(f"--all-prompts enumerates MovingShapes captions; got --dataset {dataset}")
    if seeds_per_prompt < 1 or (seeds_per_prompt > 1 and not all_prompts):
        raise UserError(f"--seeds-per-prompt {seeds_per_prompt}: needs --all-prompts and >= 1")
    if model is None and (given := [k for k, v in sampling.items() if v is not None]):
        raise UserError(
            f"{', '.join(given)}: for sampling a --model only; --videos scores the files as they are"
        )
    if videos is not None and not Path(videos).is_dir():
        raise FileNotFoundError(f"videos folder not found: {videos}")
    if manifest is not None and not Path(manifest).is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    if model is not None:
        model = str(resolve_model(model))  # a folder or a shipped model's name
    pipe = load_pipeline(model, device) if model is not None else None
    i3d_model = i3d_on_device(i3d) if i3d else None
    out_dir = Path(out)  # created only once the inputs are known to be good
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if pipe is not None:
        from tqdm.auto import tqdm

        total = None if all_prompts else num_videos * len(splits or SPLITS) * len(steps or [None])
        bar = tqdm(total=total, unit="video", file=sys.stderr, disable=not progress)
        metrics = evaluate_model(
            pipe,
            model,
            dataset,
            num_videos,
            steps,
            sampler,
            cfg,
            noise_correlation,
            seed,
            out_dir,
            batch_size,
            i3d_model,
            tuple(splits) if splits else SPLITS,
            bar.update,
            seeds_per_prompt if all_prompts else 0,
        )
        bar.close()
    else:
        metrics = evaluate_folder(videos, manifest, dataset, seed, out_dir, i3d_model)
    metrics["eval_seconds"] = time.time() - t0
    report.write_json(metrics, out_dir / "metrics.json")
    head = {k: metrics[k] for k in ("adherence", "adherence_heldout", "flicker_median", "jitter_median", "fd")
            if k in metrics}  # fmt: skip
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in head.items()}))
    print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.html'}")
    if record:
        print(f"recorded the figures in {record_figures(metrics, Path(model))}")
    return metrics
