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
    temperature: float | None = None,
    top_k: int | None = None,
    out: str = "sample.mp4",
    out_dir: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> list[Path]:
    """Sample videos from an exported model (`--model DIR`).

    `--prompt TEXT` writes `--out` (a captioned sheet when `--num-videos` > 1); `--prompts FILE` (one per
    line) or `--out-dir DIR` writes one file per prompt and seed plus `manifest.jsonl`
    (path, prompt, seed). `.mp4` or `.gif` by the extension of `--out`. `--noise-correlation R`
    shares a part R of the starting noise between frames (default: the model's): less flicker.
    `--steps`, `--sampler`, `--cfg`, `--noise-correlation` and `--first-frame` are for diffusion
    models; `--temperature` and `--top-k` (0: no limit) for VideoGPT models (default: the model's).
    """
    from vidiff.data.sheet import make_sheet
    from vidiff.data.video_io import write_video
    from vidiff.families import load_model

    if model is None:
        raise ValueError("--model DIR is required (an exported model folder; see `vidiff export`)")
    if num_videos < 1:
        raise ValueError(f"--num-videos must be >= 1, got {num_videos}")
    texts = _read_prompts(prompt, prompts)
    pipe = load_model(model, device=resolve_device(device))
    family = {k: v for k, v in (("temperature", temperature), ("top_k", top_k)) if v is not None}
    if family and not hasattr(pipe, "sampling_options"):
        raise ValueError(
            f"--temperature / --top-k sample VideoGPT models; {model} is a diffusion model "
            "(it takes --steps, --sampler, --cfg)"
        )
    jobs = [(p, seed + i) for p in texts for i in range(num_videos)]
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
        **family,
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
    temperature: float | None = None,
    top_k: int | None = None,
    out: str = "video.mp4",
    out_dir: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> list[Path]:
    """Generate videos from a prompt with the model shipped in the package (or `--model DIR`).

    Example: vidiff generate "a red circle moving right" --seed 3 --out circle.gif
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
        temperature=temperature,
        top_k=top_k,
        out=out,
        out_dir=out_dir,
        batch_size=batch_size,
        device=device,
    )
