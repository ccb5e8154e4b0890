"""Long videos from a model of short clips: autoregressive extension and the keyframe cascade.

A model makes ``T`` frames (its native length). Longer videos are made window by window, each window
an ordinary ``T``-frame generation whose known frames go through the model's frame conditioning
(:func:`~vidiff.diffusion.conditioning.frame_conditioned`, MCVD's masks):

* **extend** (Phenaki, Villegas et al. 2023; Kling; MCVD's autoregressive mode): window 0 is the plain
  clip; window ``w`` knows, at its first ``context`` positions, the last ``context`` frames made so far
  and adds ``T - context`` new ones.
* **keyframes** (Imagen Video's temporal super-resolution, Ho et al. 2022; NUWA-XL's coarse-to-fine):
  a keyframe model -- one that declares the ``stride`` conditioning (frame ``t`` of its clip is frame
  ``t * stride`` of the video) -- makes the keyframes (extended like above when more than ``T`` are
  needed), then an interpolation model fills the ``stride - 1`` frames between neighbours, with
  ``(T - 1) // stride`` keyframe gaps per window (known at positions ``0, stride, 2 stride, ...``).

Both are generators that yield each window's new frames ``(B, C, n, H, W)`` in ``[0, 1]`` as soon as
they are decoded, keeping only the last window: memory does not grow with the length, and a writer can
stream them (:class:`~vidiff.data.video_io.VideoWriter`). Window ``w`` of a video draws its noise from
:func:`window_seed` ``(seed, w)``, so a video depends only on (model, prompt, seed, settings); a
shorter video is a prefix of a longer one, and window 0 of ``extend`` is exactly the model's plain
``T``-frame clip for that seed. ``anchor=True`` adds cross-frame attention to window 0's frames in
every later window (:mod:`vidiff.nn.cross_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext

import torch

from vidiff.errors import UserError
from vidiff.nn.conditioning import STRIDE
from vidiff.nn.cross_frame import CrossFrameAttention, cross_frame_attention

MAX_FRAMES = 4096  # the documented cap of --num-frames (docs/long-video.md)
LONG_MODES = ("extend", "keyframes")
_MASK64 = (1 << 64) - 1


def check_num_frames(num_frames, cap: int = MAX_FRAMES) -> int:
    """``num_frames`` as an int in ``[1, cap]``, or a :class:`~vidiff.errors.UserError` naming it."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int):
        raise UserError(f"--num-frames must be a whole number, got {num_frames!r}")
    if num_frames < 1:
        raise UserError(f"--num-frames must be at least 1, got {num_frames}")
    if num_frames > cap:
        raise UserError(
            f"--num-frames {num_frames} is above the cap of {cap} frames (docs/long-video.md)"
        )
    return num_frames


def window_seed(seed: int, window: int, stream: int = 0) -> int:
    """The noise seed of window ``window`` of the video with seed ``seed``: ``seed`` itself for
    window 0 of stream 0 (so the first window is the model's plain clip), else a SplitMix64 hash of
    ``(seed, window, stream)`` (streams: 0 extension / keyframes, 1 interpolation)."""
    if window == 0 and stream == 0:
        return int(seed)
    z = (int(seed) * 0x9E3779B97F4A7C15 + (window + 1) * 0xBF58476D1CE4E5B9 + stream) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def _check_frame_conditioned(pipe, what: str) -> None:
    if not pipe.config.model.frame_conditioning:
        raise ValueError(
            f"{what} needs a frame-conditioned model (model.frame_conditioning: true); "
            "this one was trained without known frames"
        )


def extend(
    pipe,
    prompts: list[str],
    seeds: list[int],
    num_frames: int,
    *,
    context: int = 4,
    anchor: bool = False,
    first_frame: torch.Tensor | None = None,
    cond: dict[str, torch.Tensor] | None = None,
    **options,
) -> Iterator[torch.Tensor]:
    """Autoregressive extension (module docstring): yields ``(B, C, n, H, W)`` chunks in ``[0, 1]``
    adding up to ``num_frames`` frames. ``context``: known frames per window (``1 <= context < T``);
    ``anchor``: cross-frame attention to window 0's frames; ``first_frame`` ``(B, C, 1, H, W)`` in
    ``[0, 1]``: known frame 0 (image-to-video); ``cond``: further conditionings passed to every window;
    ``options``: :meth:`VideoPipeline.generate` options (steps, sampler, cfg, noise_correlation).
    Arguments are checked here, before anything is generated."""
    num_frames = check_num_frames(num_frames)
    t = pipe.num_frames
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if not 1 <= context < t:
        raise ValueError(
            f"context must be in [1, {t - 1}] (the model makes {t} frames), got {context}"
        )
    windows = 1 + max(0, math.ceil((num_frames - t) / (t - context)))
    if windows > 1:
        _check_frame_conditioned(pipe, f"a video longer than the model's {t} frames")
    b, (c, size) = len(prompts), (pipe.config.video.channels, pipe.size)
    if first_frame is not None:
        _check_frame_conditioned(pipe, "a first frame")
        if first_frame.shape != (b, c, 1, size, size):
            raise ValueError(
                f"first_frame must be {(b, c, 1, size, size)}, got {tuple(first_frame.shape)}"
            )
    return _extend(pipe, prompts, seeds, num_frames, context, anchor, first_frame, cond, options)


# Share of each extension window's starting noise common to all its frames, unless the caller sets
# noise_correlation: windows after the first continue known frames, and shared noise keeps their
# background steady (the shipped model's flicker at 256 frames: mean 0.0094 with its own 0.05, 21 of
# 68 captions over 0.01; docs/long-video.md). Window 0 stays the model's plain clip.
WINDOW_NOISE_CORRELATION = 0.5


def _extend(pipe, prompts, seeds, num_frames, context, anchor, first_frame, cond, options):
    t = pipe.num_frames
    windows = 1 + max(0, math.ceil((num_frames - t) / (t - context)))
    b, (c, size) = len(prompts), (pipe.config.video.channels, pipe.size)
    proc = CrossFrameAttention("record") if anchor and windows > 1 else None
    made, previous = 0, None
    with cross_frame_attention(pipe.net, proc) if proc is not None else nullcontext():
        for w in range(windows):
            known = mask = None
            if w == 0 and first_frame is not None:
                known = torch.zeros(b, c, t, size, size)
                known[:, :, :1] = first_frame
                mask = torch.zeros(b, t, dtype=torch.bool)
                mask[:, 0] = True
            if w > 0:
                known = torch.zeros(b, c, t, size, size)
                known[:, :, :context] = previous[:, :, -context:]
                mask = torch.zeros(b, t, dtype=torch.bool)
                mask[:, :context] = True
                if proc is not None:
                    proc.set_mode("replay")
            window_options = dict(options)
            if w > 0 and options.get("noise_correlation") is None:
                window_options["noise_correlation"] = WINDOW_NOISE_CORRELATION
            clip = pipe.generate(
                prompts,
                [window_seed(s, w) for s in seeds],
                known_frames=known,
                frame_mask=mask,
                cond=cond,
                batch_size=b,  # one batch: the anchor's recorded calls match the replayed ones
                **window_options,
            ).cpu()
            new = clip if w == 0 else clip[:, :, context:]
            n = min(new.shape[2], num_frames - made)
            made += n
            previous = clip
            yield new[:, :, :n]


def keyframe_cascade(
    key_pipe,
    interp_pipe,
    prompts: list[str],
    seeds: list[int],
    num_frames: int,
    *,
    stride: int = 3,
    context: int = 4,
    **options,
) -> Iterator[torch.Tensor]:
    """Keyframes, then interpolation (module docstring): yields ``(B, C, n, H, W)`` chunks in
    ``[0, 1]`` adding up to ``num_frames``. ``key_pipe`` must declare the ``stride`` conditioning;
    ``interp_pipe`` (it may be the same model) must be frame-conditioned; ``stride`` in ``[1, T-1]``.
    Arguments are checked here, before anything is generated."""
    num_frames = check_num_frames(num_frames)
    if not any(spec.name == STRIDE for spec in key_pipe.conditions):
        raise UserError(
            "--long keyframes needs a keyframe model: one trained with the 'stride' conditioning "
            "(model.net.conditions: [stride]; docs/long-video.md); this model has none -- "
            "use --long extend"
        )
    _check_frame_conditioned(interp_pipe, "keyframe interpolation")
    kv, iv = key_pipe.config.video, interp_pipe.config.video
    if (kv.channels, key_pipe.size) != (iv.channels, interp_pipe.size):
        raise UserError(
            f"the keyframe model makes {kv.channels}-channel {key_pipe.size}-px frames, the "
            f"interpolating model {iv.channels}-channel {interp_pipe.size}-px ones: they must match"
        )
    t = interp_pipe.num_frames
    if not 1 <= stride <= t - 1:
        raise ValueError(
            f"stride must be in [1, {t - 1}] (the model makes {t} frames), got {stride}"
        )
    num_keys = math.ceil((num_frames - 1) / stride) + 1
    strides = torch.full((len(prompts),), float(stride))
    keys = extend(
        key_pipe, prompts, seeds, num_keys, context=context, cond={STRIDE: strides}, **options
    )
    return _interpolate(interp_pipe, keys, prompts, seeds, num_frames, num_keys, stride, options)


def _interpolate(interp_pipe, keys, prompts, seeds, num_frames, num_keys, stride, options):
    t = interp_pipe.num_frames
    b, c, size = len(prompts), interp_pipe.config.video.channels, interp_pipe.size
    gaps = (t - 1) // stride  # keyframe gaps per interpolation window
    pending = torch.zeros(b, c, 0, size, size)  # keyframes not yet interpolated
    received = made = window = 0
    for chunk in keys:
        pending = torch.cat([pending, chunk], dim=2)
        received += chunk.shape[2]
        # a full window needs gaps + 1 keyframes; once all have come, the rest make a shorter one
        while pending.shape[2] > gaps or (received == num_keys and pending.shape[2] > 1):
            g = min(gaps, pending.shape[2] - 1)
            known = torch.zeros(b, c, t, size, size)
            mask = torch.zeros(b, t, dtype=torch.bool)
            known[:, :, : g * stride + 1 : stride] = pending[:, :, : g + 1]
            mask[:, : g * stride + 1 : stride] = True
            clip = interp_pipe.generate(
                prompts,
                [window_seed(s, window, stream=1) for s in seeds],
                known_frames=known,
                frame_mask=mask,
                batch_size=b,
                **options,
            ).cpu()
            window += 1
            n = min(g * stride, num_frames - made)
            made += n
            pending = pending[:, :, g:]
            yield clip[:, :, :n]
    if made < num_frames:  # the last keyframe
        yield pending[:, :, :1]
