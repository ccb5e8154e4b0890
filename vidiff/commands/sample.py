"""``vidiff generate`` (alias ``vidiff sample``): videos from an exported model.

Without ``--model`` it uses the model shipped inside the package, so it works right after setup with no
download and no GPU. Video ``i`` of a prompt uses seed ``seed + i``; a video depends only on (model,
prompt, seed, sampler settings), never on the batch it was made in. Every option and the output path
are checked before the model is loaded; videos are sampled a batch at a time and each batch is written
as soon as it is done.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from vidiff.commands import checks
from vidiff.commands.control import TRAJECTORY_MODEL, control_conditions
from vidiff.errors import UserError
from vidiff.nn.control import CAMERA
from vidiff.registry import ASSETS, resolve_model
from vidiff.runtime import DEFAULT_MODEL, resolve_device


def _read_prompts(prompt: str | None, prompts: str | None, optional: bool = False) -> list[str]:
    if optional and prompt is None and prompts is None:
        return [""]  # the null prompt: a camera move needs no words
    if (prompt is None) == (prompts is None):
        raise UserError("give exactly one of a prompt or --prompts FILE")
    if prompt is not None:
        if not prompt.strip():
            raise UserError(
                "the prompt is empty; say what the video shows, e.g. 'a red circle moving right'"
            )
        return [prompt]
    path = Path(prompts)
    if not path.is_file():
        raise UserError(f"--prompts: file not found: {path}")
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise UserError(f"no prompts in {path} (one per line; '#' starts a comment)")
    return lines


def _tuned_source(lora, first_frame, num_frames, trajectory, camera, hw):
    """``(clip (1, C, T, H, W), structure)`` when ``lora`` is a one-shot adapter (vidiff tune),
    whose videos start from the clip it learnt; None otherwise. Options that would make another
    clip are refused in one line."""
    if lora is None:
        return None
    from vidiff.adapters import tuned_source

    source = tuned_source(lora)
    if source is None:
        return None
    given = {"--first-frame": first_frame, "--num-frames": num_frames,
             "--trajectory": trajectory, "--camera": camera, "--size": hw}  # fmt: skip
    clash = [k for k, v in given.items() if v is not None]
    if clash:
        raise UserError(
            f"{clash[0]}: {lora} is a one-shot adapter (vidiff tune); its videos start from the "
            "clip it learnt, which fixes the first frame, size and length"
        )
    clip, structure = source
    print(
        f"vidiff: {lora} was tuned on one clip: sampling starts from it (its layout and motion "
        f"kept for {structure:g} of the steps)",
        file=sys.stderr,
    )
    return clip[None], structure


def _check_vocabulary(pipe, texts: list[str]) -> None:
    """Every word of every prompt is one the model knows (its built-in word tokenizer), all unknown
    words named at once; a Hugging Face tokenizer takes any text."""
    from vidiff.models.text import WordTokenizer

    tokenizer = getattr(pipe, "tokenizer", None) or getattr(pipe.text_encoder, "tokenizer", None)
    if not isinstance(tokenizer, WordTokenizer):
        return
    words = [w for text in texts for w in tokenizer.split(text)]
    unknown = list(dict.fromkeys(w for w in words if w not in tokenizer.stoi))
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise UserError(
            f"unknown word{'s' if len(unknown) > 1 else ''} {shown} in the prompt"
            f"{'s' if len(texts) > 1 else ''}; the model's vocabulary is: {' '.join(tokenizer.vocab)}"
        )
    for text in texts:
        tokenizer.encode_one(text)  # too long for the model: its own error names the prompt


def _check_family_options(pipe, model: str, family: dict, **diffusion) -> None:
    """Options of another model family are refused, naming them: the diffusion sampling options
    for a GAN or VideoGPT model, VideoGPT's temperature / top-k for the others."""
    own = getattr(pipe, "sampling_options", None)  # None: a diffusion model
    kind = getattr(pipe, "family", "diffusion")
    if own is not None and (given := [k for k, v in diffusion.items() if v is not None]):
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise UserError(f"{flags}: diffusion sampling options; {model} is a {kind} model")
    if wrong := [k for k in family if k not in (own or ())]:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise UserError(f"{flags}: VideoGPT sampling options; {model} is a {kind} model")


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
    trajectory: str | None = None,
    camera: str | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    out: str = "video.mp4",
    out_dir: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
    num_frames: int | None = None,
    size: str | None = None,
    long: str | None = None,
    context: int = 4,
    anchor: bool = False,
    stride: int = 3,
    keyframe_model: str | None = None,
    lora: str | None = None,
    lora_scale: float = 1.0,
) -> list[Path]:
    """Generate videos from a prompt with the model shipped in the package (or --model DIR).

    Example: vidiff generate "a red circle moving right" --seed 3 --out circle.gif
    Long video: vidiff generate "a red circle moving right" --num-frames 128 --out long.mp4
    (made window by window and written as it is made; docs/long-video.md)

    Args:
        prompt: what the video shows, e.g. "a red circle moving right" (or give --prompts FILE).
        model: an exported model folder (`vidiff export`) or a shipped model's name (`vidiff
            models`); default: the model shipped in the package.
        prompts: a text file with one prompt per line ('#' starts a comment); writes one file per
            prompt and seed into --out-dir plus manifest.jsonl.
        seed: seed of the first video of each prompt; video i uses seed + i.
        num_videos: videos per prompt (with one prompt and --out, a captioned sheet of them).
        steps: sampling steps (default: the model's).
        sampler: euler, heun, euler_ancestral, dpmpp_2m, ddim or ddpm (default: the model's).
        cfg: classifier-free guidance weight; 1 is unguided (default: the model's).
        noise_correlation: share of the starting noise common to all frames, in [0, 1); more is less
            flicker (default: the model's).
        first_frame: an image to start the video from (image to video; models with frame
            conditioning).
        trajectory: the object's path, x0,y0:x1,y1[:x2,y2 ...] in pixels (x right, y down),
            spread over the clip at constant speed; models trained with the trajectory
            conditioning (docs/control.md).
        camera: a camera move NAME[:SPEED], NAME one of pan-left, pan-right, pan-up, pan-down,
            zoom-in, zoom-out, static; SPEED in px/frame for pans, percent per frame for zooms;
            models trained with the camera conditioning (the prompt is then optional).
        temperature: VideoGPT models: divides the code logits, > 0; lower is more conservative
            (default: the model's).
        top_k: VideoGPT models: sample each code among the k likeliest, 0 = all (default: the
            model's).
        out: the video file (.mp4, .webm, .mov, .mkv, .m4v, .gif or .png filmstrip); with --prompts
            its suffix is the format and, without --out-dir, its name without the suffix the folder.
        out_dir: write one file per prompt and seed here, plus manifest.jsonl (path, prompt, seed).
        batch_size: videos sampled at once; each batch is written as soon as it is done.
        device: auto (the GPU when there is one), cpu, cuda, cuda:N or mps.
        progress: show a progress bar on stderr when there are several videos.
        num_frames: frames per video, 1 to 4096 (default: the model's own length); a DiT makes any
            length in one pass (unless --long), other models make more than their length window by
            window (--long) and write them as they are made.
        size: frame height x width, e.g. 32x48 (default: the model's); a DiT samples sizes other
            than its training size, in whole patches.
        long: how a video longer than the model's clips is made: extend (each window continues the
            last --context frames of the one before) or keyframes (keyframes --stride frames apart
            from --keyframe-model, then the frames between them); default extend.
        context: frames each extension window knows from the one before (1 to the model's length - 1).
        anchor: cross-frame attention: every later window's frames also attend to the first window.
        stride: frames between keyframes (--long keyframes).
        keyframe_model: a model trained with the stride conditioning for --long keyframes (default:
            --model when it has it, else the shipped keyframe model shapes-keyframes).
        lora: a LoRA adapter folder (vidiff export of a train.trainable=lora run, or vidiff tune)
            to apply to --model; --model may also be such a folder (its base model + adapter).
        lora_scale: the strength of the LoRA adapter: 1 as trained, 0 the base model.
    """
    from vidiff.data.sheet import make_sheet
    from vidiff.data.video_io import write_video
    from vidiff.families import load_model

    # Everything the user typed is checked before the model is loaded.
    texts = _read_prompts(prompt, prompts, optional=camera is not None)
    checks.positive("--num-videos", num_videos)
    checks.positive("--batch-size", batch_size)
    checks.positive("--steps", steps)
    checks.seed_range("--seed", seed, num_videos)
    checks.sampler_name(sampler)
    checks.non_negative("--cfg", cfg)
    checks.fraction("--noise-correlation", noise_correlation, 0, 1)
    checks.input_file("--first-frame", first_frame)
    hw = checks.video_size("--size", size)
    if hw is not None and long is not None:
        raise UserError("--size goes with a DiT's clips made in one pass, not with --long windows")
    checks.positive("--temperature", temperature)
    checks.non_negative("--top-k", top_k)
    if num_frames is not None:
        from vidiff.sampling.long import check_num_frames

        check_num_frames(num_frames)
    _check_long(long, num_frames, context, stride, keyframe_model)
    if num_frames is not None and (trajectory is not None or camera is not None):
        option = "--trajectory" if trajectory is not None else "--camera"
        raise UserError(f"{option} spans the model's own clip length; drop --num-frames")
    to_folder = prompts is not None or out_dir is not None
    suffix = Path(out).suffix or ".mp4"
    if to_folder:
        checks.video_suffix("--out", f"video{suffix}")
        directory = checks.folder("--out-dir", out_dir or Path(out).with_suffix(""))
    else:
        checks.video_file("--out", out)
    checks.non_negative("--lora-scale", lora_scale)
    torch_device = resolve_device(device)
    from vidiff.adapters import adapter_base, is_adapter

    if model is not None and is_adapter(model) and not (Path(model) / "config.json").is_file():
        if lora is not None:  # --model ADAPTER: its base model, adapted
            raise UserError(f"--model {model} is a LoRA adapter already; drop --lora or --model")
        lora, model = model, str(resolve_model(adapter_base(model), f"the base of --model {model}"))
    if lora is not None and not is_adapter(lora):
        raise UserError(f"--lora {lora} is not a LoRA adapter folder (no vidiff_adapter.json)")
    if model is None and trajectory is not None and (TRAJECTORY_MODEL / "config.json").is_file():
        model = str(TRAJECTORY_MODEL)  # the shipped control model, when there is one
    if model is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise UserError(
                f"no default model is shipped at {DEFAULT_MODEL}; pass --model DIR (see `vidiff export`)"
            )
        model = str(DEFAULT_MODEL)
    else:
        model = str(resolve_model(model))
    extra = control_conditions(model, trajectory, camera)  # {key: (1, ...)}, checked before loading

    pipe = load_model(model, device=torch_device)
    if lora is not None:
        from vidiff.adapters import load_adapter

        if not hasattr(pipe, "denoiser"):
            raise UserError(f"--lora adapts a diffusion model; {model} is a {pipe.family} model")
        load_adapter(pipe, lora, scale=lora_scale)
    source = _tuned_source(lora, first_frame, num_frames, trajectory, camera, hw)
    family = {k: v for k, v in (("temperature", temperature), ("top_k", top_k)) if v is not None}
    _check_family_options(pipe, model, family, steps=steps, sampler=sampler, cfg=cfg,
                          noise_correlation=noise_correlation, first_frame=first_frame,
                          num_frames=num_frames)  # fmt: skip
    _check_vocabulary(pipe, texts)
    # A DiT samples any length and size in one pass (spacetime patches and 3D RoPE take any grid);
    # other networks make longer videos window by window (--long), at their own size.
    native = pipe.config.model.arch == "dit" and long is None
    shape: dict = {}  # the clip shape a diffusion pipeline is asked for; other families make their own
    if getattr(pipe, "sampling_options", None) is None:
        try:
            t, h, w = pipe.video_shape(num_frames if native else None, hw)
        except ValueError as e:
            raise UserError(f"--size/--num-frames: {e}") from None
        shape = {"num_frames": t, "size": (h, w)}
    elif hw is not None:
        raise UserError(f"--size: {model} is a {pipe.family} model, which makes clips of one size")
    else:
        t, h, w = pipe.num_frames, pipe.size, pipe.size
    jobs = [(p, seed + i) for p in texts for i in range(num_videos)]
    frame = None
    if first_frame is not None:
        from vidiff.data.folder import load_image

        if not pipe.config.model.frame_conditioning:
            raise UserError(
                f"--first-frame: the model {model} was trained without frame conditioning"
            )
        frame = load_image(first_frame, (h, w))  # (3, 1, h, w), resized and centre-cropped
    move = extra.pop(CAMERA, None)  # (1, T, 3): made the model's camera cond per batch
    if num_frames is not None and not native:
        return _generate_long(
            pipe,
            jobs,
            num_frames,
            long or "extend",
            first_frame=frame,
            context=context,
            anchor=anchor,
            stride=stride,
            key_pipe=_keyframe_pipe(pipe, keyframe_model, torch_device)
            if long == "keyframes"
            else pipe,
            out=Path(out),
            directory=directory if to_folder else None,
            suffix=suffix,
            batch_size=batch_size,
            options={
                "steps": steps,
                "sampler": sampler,
                "cfg": cfg,
                "noise_correlation": noise_correlation,
            },
        )

    def batches():
        """Videos ``(B, C, T, H, W)`` on the CPU, one batch of jobs at a time."""
        for start in range(0, len(jobs), batch_size):
            part = jobs[start : start + batch_size]
            if source is not None:  # a one-shot adapter: from the clip it learnt (Tune-A-Video)
                clip, structure = source
                videos = pipe.edit(clip.expand(len(part), -1, -1, -1, -1), [p for p, _ in part],
                                   [s for _, s in part], strength=1.0, structure=structure,
                                   steps=steps, sampler=sampler, cfg=cfg,
                                   noise_correlation=noise_correlation)  # fmt: skip
                yield part, videos.cpu()
                continue
            prompts, seeds = [p for p, _ in part], [s for _, s in part]
            cond = {k: v.expand(len(part), *v.shape[1:]) for k, v in extra.items()}
            options = dict(steps=steps, sampler=sampler, cfg=cfg, batch_size=batch_size,
                           noise_correlation=noise_correlation, **shape, **family)  # fmt: skip
            first = None if frame is None else frame[:, 0].expand(len(part), -1, -1, -1)
            if move is not None:  # the model's camera cond; a first frame drawn when it needs one
                paths = move.expand(len(part), -1, -1)
                videos = pipe.generate_camera(prompts, seeds, paths, first, cond=cond, **options)
                yield part, videos.cpu()
                continue
            known = mask = None
            if first is not None:
                known = torch.zeros(len(part), pipe.config.video.channels, t, h, w)
                known[:, :, 0] = first
                mask = torch.zeros(len(part), t, dtype=torch.bool)
                mask[:, 0] = True
            if cond:
                options["cond"] = cond
            videos = pipe.generate(prompts, seeds, known_frames=known, frame_mask=mask, **options)
            yield part, videos.cpu()

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(jobs), unit="video", file=sys.stderr, disable=not progress or len(jobs) < 2
    )
    fps = pipe.config.video.fps
    written: list[Path] = []
    if to_folder:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / "manifest.jsonl"
        tmp = manifest.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as rows:
            for part, videos in batches():
                for (p, s), video in zip(part, videos):
                    path = directory / f"{len(written):04d}_seed{s}{suffix}"
                    write_video(video, path, fps=fps)
                    rows.write(json.dumps({"path": path.name, "prompt": p, "seed": s}) + "\n")
                    written.append(path)
                bar.update(len(part))
        tmp.replace(manifest)  # the manifest appears once every video is written
        bar.close()
        print(f"wrote {len(written)} videos and {manifest}")
        return written
    path = Path(out)
    videos = []  # one file: a sheet of every video needs them all
    for _, batch in batches():
        videos.extend(batch)
        bar.update(len(batch))
    bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(videos) == 1:
        write_video(videos[0], path, fps=fps)
    else:
        write_video(make_sheet(videos, [f"{p} (seed {s})" for p, s in jobs]), path, fps=fps)
    print(f"wrote {path}")
    return [path]


KEYFRAME_MODEL = ASSETS / "shapes-keyframes"  # `make keyframe-model`


def _keyframe_pipe(pipe, keyframe_model: str | None, device):
    """The keyframe model of ``--long keyframes``: --keyframe-model, else --model when it has the
    stride conditioning, else the shipped one (KEYFRAME_MODEL) when it makes --model's clips."""
    from vidiff.nn.conditioning import STRIDE
    from vidiff.pipeline import VideoPipeline

    if keyframe_model is not None:
        return VideoPipeline.load(resolve_model(keyframe_model), device=device)
    if any(spec.name == STRIDE for spec in pipe.conditions):
        return pipe
    if (KEYFRAME_MODEL / "config.json").is_file():
        from vidiff.pipeline import read_model_config

        if read_model_config(KEYFRAME_MODEL).video == pipe.config.video:  # it makes these clips
            return VideoPipeline.load(KEYFRAME_MODEL, device=device)
    return pipe  # keyframe_cascade names what is missing


def _check_long(long, num_frames, context, stride, keyframe_model) -> None:
    """The long-video options, before the model is loaded."""
    from vidiff.sampling.long import LONG_MODES

    if long is not None and long not in LONG_MODES:
        raise UserError(f"--long must be one of {', '.join(LONG_MODES)}, got {long!r}")
    if long is not None and num_frames is None:
        raise UserError("--long needs --num-frames N")
    checks.positive("--context", context)
    checks.positive("--stride", stride)
    if keyframe_model is not None and long != "keyframes":
        raise UserError("--keyframe-model goes with --long keyframes")
    if keyframe_model is not None:
        resolve_model(keyframe_model, "--keyframe-model")  # a folder or a shipped model's name


def _generate_long(
    pipe,
    jobs,
    num_frames,
    mode,
    *,
    first_frame,
    context,
    anchor,
    stride,
    key_pipe,
    out,
    directory,
    suffix,
    batch_size,
    options,
) -> list[Path]:
    """``--num-frames``: every video made window by window (:mod:`vidiff.sampling.long`) and written
    as each window is decoded: one file per job under ``directory`` (``batch_size`` videos at a
    time), else ``out`` (the video, or a captioned sheet of all of them, made as one batch)."""
    from vidiff.data.sheet import make_sheet
    from vidiff.sampling.long import extend, keyframe_cascade

    if mode == "keyframes" and first_frame is not None:
        raise UserError("--first-frame does not go with --long keyframes")

    def chunks(part):
        """The windows of the videos of ``part`` (jobs), ``(B, C, n, H, W)`` as they are made."""
        prompts, seeds = [p for p, _ in part], [s for _, s in part]
        if mode == "keyframes":
            return keyframe_cascade(
                key_pipe,
                pipe,
                prompts,
                seeds,
                num_frames,
                stride=stride,
                context=context,
                **options,
            )
        first = None if first_frame is None else first_frame[None].expand(len(part), -1, -1, -1, -1)
        return extend(
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
    if directory is not None:  # one file per video: --batch-size videos at a time
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"{k:04d}_seed{s}{suffix}" for k, (_, s) in enumerate(jobs)]
        for start in range(0, len(jobs), batch_size):
            part = jobs[start : start + batch_size]
            _stream(chunks(part), paths[start : start + batch_size], fps, lambda c: list(c))
    else:  # one file: the video, or a sheet of all of them (one batch)
        paths = [out]
        captions = [f"{p} (seed {s})" for p, s in jobs]
        sheet = (
            (lambda c: [c[0]]) if len(jobs) == 1 else (lambda c: [make_sheet(list(c), captions)])
        )
        _stream(chunks(jobs), paths, fps, sheet)
    if directory is None:
        print(f"wrote {out} ({num_frames} frames)")
        return paths
    manifest = directory / "manifest.jsonl"
    rows = [{"path": p.name, "prompt": q, "seed": s} for p, (q, s) in zip(paths, jobs)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} videos of {num_frames} frames and {manifest}")
    return paths


def _stream(chunks, paths: list[Path], fps: float, videos_of) -> None:
    """Write each chunk ``(B, C, n, H, W)`` as it comes: ``videos_of(chunk)`` gives one ``(C, n, H,
    W)`` piece per path; on any error the partial files are removed."""
    from vidiff.data.video_io import VideoWriter

    writers = [VideoWriter(path, fps=fps) for path in paths]
    try:
        for chunk in chunks:
            for writer, video in zip(writers, videos_of(chunk)):
                writer.write(video)
    except BaseException as e:
        for writer in writers:
            writer.__exit__(type(e), e, None)
        raise
    for writer in writers:
        writer.close()
