"""``vidiff edit``: regenerate a region of a video (``--mask``) or re-render it (``--strength``).

Everything the user typed is checked, and the input and mask are read and fitted, before the model
is loaded; nothing is written unless the edit succeeds. The edited video depends only on the input,
mask, prompt, seed and settings.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from vidiff.commands import checks
from vidiff.data.video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from vidiff.errors import UserError
from vidiff.registry import resolve_model
from vidiff.runtime import DEFAULT_MODEL, resolve_device


def edit(
    input: str,
    prompt: str = "",
    *,
    mask: str | None = None,
    strength: float | None = None,
    resample: int = 0,
    layered: bool = False,
    structure: float = 0.0,
    model: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    sampler: str | None = None,
    noise_correlation: float | None = None,
    out: str = "edited.mp4",
    device: str = "auto",
) -> Path:
    """Edit a video with a prompt: regenerate inside a mask, or re-render it all (video to video).

    Examples: vidiff edit clip.mp4 "a green circle moving right" --mask box:8,8,24,24 -o green.mp4
              vidiff edit clip.mp4 "a blue circle moving right" --strength 0.5 -o blue.mp4
              vidiff edit clip.mp4 "a blue circle moving right" --strength 1 --structure 0.5 -o blue.mp4

    A clip longer than the model's is cut to its first frames and one of another size is resized and
    centre-cropped (each said in one warning line); a shorter clip is refused.

    Args:
        input: the video to edit (.mp4, .gif, .png filmstrip, ...), at least as long as the model's clips.
        prompt: what the edited video shows; empty: unconditional.
        mask: where to regenerate (white = regenerate): box:x0,y0,x1,y1 (input pixels, x1/y1
            exclusive), an image (every frame) or a mask video, of the input's size. Outside it the
            input is kept exactly. A mask of whole frames (regenerate the end of a clip) uses the
            model's frame conditioning when it has it.
        strength: in (0, 1]: how far the input is noised before it is denoised with the prompt
            (SDEdit); runs ceil(strength x steps) of the model's steps (the shipped 8-step model:
            0.5 runs 4 of its 8 steps); 1 is generation from noise. Default: 1 with --mask; without
            --mask it is required.
        resample: RePaint resampling: repeat each step this many more times after re-noising (with
            --mask; costs (1 + R) x the steps; on the shipped model 2 lifts recolouring from 92% to
            95%, see docs/editing.md).
        layered: with --mask, edit the video's foreground on black (the background the model was
            trained on) and lay the regenerated region over the input's static background (its
            per-pixel median outside the mask): for a model trained on black backgrounds editing a
            clip with another (on photographs: new colour in 57.8% -> 93.8% of 64 clips, see docs/editing.md).
        structure: in [0, 1], with --strength: the share of the steps during which the edit keeps
            the input's brightness (its largest colour channel), so that things stay where they are
            and move as they did while the prompt recolours them (pixel models; 0: plain SDEdit).
            Recolouring on the shipped model: 0.5 at strength 1, see docs/editing.md.
        model: an exported model folder or a shipped model's name; default: the model shipped in
            the package.
        seed: the seed of the edit's noise.
        steps: sampling steps of the full schedule (default: the model's).
        sampler: euler, heun, euler_ancestral, dpmpp_2m, ddim or ddpm (default: the model's).
        noise_correlation: share of the noise common to all frames, in [0, 1) (default: the model's).
        out: the edited video (.mp4, .webm, .mov, .mkv, .m4v, .gif or .png filmstrip).
        device: auto (the GPU when there is one), cpu, cuda, cuda:N or mps.
    """
    from vidiff.commands.sample import _check_vocabulary
    from vidiff.data.edit_inputs import fit_clip, fit_mask, read_mask
    from vidiff.data.video_io import read_video, write_video
    from vidiff.pipeline import VideoPipeline

    # Everything the user typed is checked, and the input and mask read, before the model is loaded.
    src = Path(input)
    if not src.is_file():
        raise UserError(f"input video not found: {src}")
    if src.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise UserError(f"input {src}: unknown video type {src.suffix!r}")
    if strength is not None and not 0.0 < strength <= 1.0:
        raise UserError(f"--strength must be in (0, 1] (0 would change nothing), got {strength:g}")
    if mask is None and strength is None:
        raise UserError("give --mask (regenerate inside it) and/or --strength (video to video)")
    if resample < 0 or (resample and mask is None):
        raise UserError(f"--resample takes a count >= 0 and needs --mask, got {resample}")
    if layered and mask is None:
        raise UserError("--layered needs --mask (the region to regenerate)")
    checks.fraction("--structure", structure, 0, 1, closed=True)
    if structure and strength is None:
        raise UserError("--structure guides video to video: give --strength too")
    checks.positive("--steps", steps)
    checks.seed_range("--seed", seed)
    checks.sampler_name(sampler)
    checks.fraction("--noise-correlation", noise_correlation, 0, 1)
    checks.video_file("--out", out)
    torch_device = resolve_device(device)
    model = str(resolve_model(model)) if model is not None else str(DEFAULT_MODEL)

    video, fps = read_video(src)  # (3, T, H, W)
    regions = None if mask is None else read_mask(mask, video.shape[1], *video.shape[2:])
    pipe = VideoPipeline.load(model, device=torch_device)
    _check_vocabulary(pipe, [prompt])
    video, notes = fit_clip(video, pipe.num_frames, pipe.size, name=f"input {src.name}")
    if regions is not None:
        regions = fit_mask(regions, pipe.num_frames, pipe.size)[None]
    for note in notes:  # one `vidiff: warning:` line each
        warnings.warn(note, stacklevel=2)
    result = pipe.edit(
        video[None],
        [prompt],
        [seed],
        mask=regions,
        strength=strength,
        resample=resample,
        layered=layered,
        structure=structure,
        steps=steps,
        sampler=sampler,
        noise_correlation=noise_correlation,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(result[0].cpu(), path, fps=fps or pipe.config.video.fps)
    print(f"wrote {path}")
    return path
