"""``vidiff sample`` and ``vidiff generate``: videos from an exported model.

``sample`` needs ``--model DIR``; ``generate`` defaults to the model shipped inside the package, so
it works right after setup with no download and no GPU. Video ``i`` of a prompt uses seed ``seed + i``;
a video depends only on (model, prompt, seed, sampler settings), never on the batch it was made in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default-model"


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the GPU when there is one, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _read_prompts(prompt: str | None, prompts: str | None) -> list[str]:
    if (prompt is None) == (prompts is None):
        raise ValueError("give exactly one of a prompt or --prompts FILE")
    if prompt is not None:
        return [prompt]
    path = Path(prompts)
    if not path.is_file():
        raise FileNotFoundError(f"prompts file not found: {path}")
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise ValueError(f"no prompts in {path}")
    return lines


def sample(
    *,
    prompt: str | None = None,
    model: str | None = None,
    prompts: str | None = None,
    seed: int = 0,
    num_videos: int = 1,
    steps: int | None = None,
    sampler: str | None = None,
    cfg: float | None = None,
    noise_correlation: float | None = None,
    first_frame: str | None = None,
    out: str = "sample.mp4",
    out_dir: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
    num_frames: int | None = None,
    long: str | None = None,
    context: int = 4,
    anchor: bool = False,
    stride: int = 3,
    keyframe_model: str | None = None,
) -> list[Path]:
    """Sample videos from an exported model (`--model DIR`).

    `--prompt TEXT` writes `--out` (a captioned sheet when `--num-videos` > 1); `--prompts FILE` (one per
    line) or `--out-dir DIR` writes one file per prompt and seed plus `manifest.jsonl`
    (path, prompt, seed). `.mp4` or `.gif` by the extension of `--out`. `--noise-correlation R`
    shares a part R of the starting noise between frames (default: the model's): less flicker.

    `--num-frames N` (1..4096) makes N frames instead of the model's own length, window by window
    (docs/long-video.md), writing frames as they are made: `--long extend` (the default) continues
    each window from the last `--context` frames of the one before (`--anchor`: cross-frame attention
    to the first window); `--long keyframes` makes keyframes `--stride` frames apart with
    `--keyframe-model DIR` (one trained with the stride conditioning; default the model itself) and
    fills the frames between them with the model.
    """
    from vidiff.data.sheet import make_sheet
    from vidiff.data.video_io import write_video
    from vidiff.pipeline import VideoPipeline
    from vidiff.sampling.long import LONG_MODES, check_num_frames

    if model is None:
        raise ValueError("--model DIR is required (an exported model folder; see `vidiff export`)")
    if num_videos < 1:
        raise ValueError(f"--num-videos must be >= 1, got {num_videos}")
    if num_frames is not None:
        check_num_frames(num_frames)
    if long is not None and long not in LONG_MODES:
        raise ValueError(f"--long must be one of {list(LONG_MODES)}, got {long!r}")
    if long is not None and num_frames is None:
        raise ValueError("--long needs --num-frames N")
    texts = _read_prompts(prompt, prompts)
    pipe = VideoPipeline.load(model, device=resolve_device(device))
    jobs = [(p, seed + i) for p in texts for i in range(num_videos)]
    if num_frames is not None:
        return _sample_long(
            pipe,
            jobs,
            num_frames,
            long or "extend",
            first_frame=first_frame,
            context=context,
            anchor=anchor,
            stride=stride,
            keyframe_model=keyframe_model,
            device=device,
            out=out,
            out_dir=out_dir if prompts is None else (out_dir or str(Path(out).with_suffix(""))),
            options={
                "steps": steps,
                "sampler": sampler,
                "cfg": cfg,
                "noise_correlation": noise_correlation,
            },
        )
    known = mask = None
    if first_frame is not None:
        from vidiff.data.folder import load_image

        frame = load_image(first_frame, pipe.size)  # (3, 1, size, size), resized and centre-cropped
        known = torch.zeros(
            len(jobs), pipe.config.video.channels, pipe.num_frames, pipe.size, pipe.size
        )
        known[:, :, :1] = frame
        mask = torch.zeros(len(jobs), pipe.num_frames, dtype=torch.bool)
        mask[:, 0] = True
    videos = pipe.generate(
        [p for p, _ in jobs],
        [s for _, s in jobs],
        steps=steps,
        sampler=sampler,
        cfg=cfg,
        noise_correlation=noise_correlation,
        known_frames=known,
        frame_mask=mask,
        batch_size=batch_size,
    ).cpu()
    fps = pipe.config.video.fps
    suffix = Path(out).suffix or ".mp4"
    written: list[Path] = []
    if prompts is not None or out_dir is not None:
        directory = Path(out_dir or Path(out).with_suffix(""))
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for k, ((p, s), video) in enumerate(zip(jobs, videos)):
            path = directory / f"{k:04d}_seed{s}{suffix}"
            write_video(video, path, fps=fps)
            rows.append({"path": path.name, "prompt": p, "seed": s})
            written.append(path)
        manifest = directory / "manifest.jsonl"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {len(rows)} videos and {manifest}")
    else:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(videos) == 1:
            write_video(videos[0], path, fps=fps)
        else:
            captions = [f"{p} (seed {s})" for p, s in jobs]
            write_video(make_sheet(list(videos), captions), path, fps=fps)
        written.append(path)
        print(f"wrote {path}")
    return written


def generate(
    prompt: str | None = None,
    *,
    model: str | None = None,
    prompts: str | None = None,
    seed: int = 0,
    num_videos: int = 1,
    steps: int | None = None,
    sampler: str | None = None,
    cfg: float | None = None,
    noise_correlation: float | None = None,
    first_frame: str | None = None,
    out: str = "video.mp4",
    out_dir: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
    num_frames: int | None = None,
    long: str | None = None,
    context: int = 4,
    anchor: bool = False,
    stride: int = 3,
    keyframe_model: str | None = None,
) -> list[Path]:
    """Generate videos from a prompt with the model shipped in the package (or `--model DIR`).

    Example: vidiff generate "a red circle moving right" --seed 3 --out circle.gif
    Long video: vidiff generate "a red circle moving right" --num-frames 128 --out long.mp4
    (`--num-frames`, `--long`, `--context`, `--anchor`, `--stride`, `--keyframe-model`: see `vidiff
    sample --help` and docs/long-video.md).
    """
    if model is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise FileNotFoundError(
                f"no default model is shipped at {DEFAULT_MODEL}; pass --model DIR (see `vidiff export`)"
            )
        model = str(DEFAULT_MODEL)
    return sample(
        prompt=prompt,
        model=model,
        prompts=prompts,
        seed=seed,
        num_videos=num_videos,
        steps=steps,
        sampler=sampler,
        cfg=cfg,
        noise_correlation=noise_correlation,
        first_frame=first_frame,
        out=out,
        out_dir=out_dir,
        batch_size=batch_size,
        device=device,
        num_frames=num_frames,
        long=long,
        context=context,
        anchor=anchor,
        stride=stride,
        keyframe_model=keyframe_model,
    )


def _sample_long(
    pipe,
    jobs,
    num_frames,
    mode,
    *,
    first_frame,
    context,
    anchor,
    stride,
    keyframe_model,
    device,
    out,
    out_dir,
    options,
) -> list[Path]:
    """``--num-frames``: every job's video made window by window and written as it comes
    (one file per job under ``out_dir``, else ``out``: the video, or a sheet of all of them)."""
    from vidiff.data.sheet import make_sheet
    from vidiff.data.video_io import VideoWriter
    from vidiff.pipeline import VideoPipeline
    from vidiff.sampling.long import extend, keyframe_cascade

    prompts, seeds = [p for p, _ in jobs], [s for _, s in jobs]
    first = None
    if first_frame is not None:
        from vidiff.data.folder import load_image

        first = load_image(first_frame, pipe.size)[None].expand(len(jobs), -1, -1, -1, -1)
    if mode == "keyframes":
        if first is not None:
            raise ValueError("--first-frame is not supported with --long keyframes")
        key_pipe = pipe
        if keyframe_model is not None:
            key_pipe = VideoPipeline.load(keyframe_model, device=resolve_device(device))
        chunks = keyframe_cascade(
            key_pipe, pipe, prompts, seeds, num_frames, stride=stride, context=context, **options
        )
    else:
        chunks = extend(
            pipe,
            prompts,
            seeds,
            num_frames,
            context=context,
            anchor=anchor,
            first_frame=first,
            **options,
        )
    fps = pipe.config.video.fps
    suffix = Path(out).suffix or ".mp4"
    if out_dir is not None:
        directory = Path(out_dir)
        paths = [directory / f"{k:04d}_seed{s}{suffix}" for k, (_, s) in enumerate(jobs)]
        writers = [VideoWriter(path, fps=fps) for path in paths]
    else:
        paths = [Path(out)]
        writers = [VideoWriter(out, fps=fps)]
    captions = [f"{p} (seed {s})" for p, s in jobs]
    try:
        for chunk in chunks:  # (B, C, n, H, W), written as each window is decoded
            if out_dir is not None:
                for writer, video in zip(writers, chunk):
                    writer.write(video)
            elif len(jobs) == 1:
                writers[0].write(chunk[0])
            else:
                writers[0].write(make_sheet(list(chunk), captions))
    except BaseException as e:
        for writer in writers:
            writer.__exit__(type(e), e, None)
        raise
    for writer in writers:
        writer.close()
    if out_dir is not None:
        rows = [{"path": p.name, "prompt": q, "seed": s} for p, (q, s) in zip(paths, jobs)]
        manifest = Path(out_dir) / "manifest.jsonl"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {len(rows)} videos of {num_frames} frames and {manifest}")
    else:
        print(f"wrote {paths[0]} ({num_frames} frames)")
    return paths
