"""Long-video benchmark: peak memory and time against length, frames per second per mode, drift.

For each mode and length N, a child process loads the model, makes one N-frame video window by
window (vidiff.sampling.long) and streams it into an .mp4 (vidiff.data.video_io.VideoWriter), then
reports its wall time, the time to the first window, generated frames per second and its peak RSS
(ru_maxrss: the whole process, model and libraries included). The parent then scores every video
with the long-video probes (vidiff.eval.long_probes) and prints a table; ``--json`` keeps it.

    python benchmarks/long_video.py                       # default model, 32/64/128/256 frames
    python benchmarks/long_video.py --frames 32 256 --modes extend extend+anchor --json out.json

Modes: ``extend`` (context 4), ``extend+anchor`` (with cross-frame attention to the first window).
``keyframes`` needs a model trained with the stride conditioning (``--keyframe-model``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle moving right"


def child(model: str | None, mode: str, frames: int, out: str, seed: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from vidiff.data.video_io import VideoWriter
    from vidiff.pipeline import VideoPipeline
    from vidiff.runtime import DEFAULT_MODEL
    from vidiff.sampling.long import extend, keyframe_cascade

    pipe = VideoPipeline.load(model or DEFAULT_MODEL)
    start = time.perf_counter()
    if mode.startswith("keyframes"):
        key = VideoPipeline.load(mode.split(":", 1)[1])
        chunks = keyframe_cascade(key, pipe, [PROMPT], [seed], frames, stride=3)
    else:
        chunks = extend(pipe, [PROMPT], [seed], frames, context=4, anchor=mode == "extend+anchor")
    first = None
    with VideoWriter(out, fps=pipe.config.video.fps) as writer:
        for chunk in chunks:
            writer.write(chunk[0])
            first = first or time.perf_counter() - start
    seconds = time.perf_counter() - start
    return {
        "mode": mode.split(":")[0],
        "frames": frames,
        "seconds": seconds,
        "first_window_s": first,
        "frames_per_s": frames / seconds,
        "playback_fps": pipe.config.video.fps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "video": out,
    }


def score(path: str) -> dict:
    from vidiff.data.video_io import read_video
    from vidiff.eval.long_probes import score_long_shapes

    video, _ = read_video(path)
    v = score_long_shapes(video, PROMPT)
    return {
        k: v[k]
        for k in ("adherence", "presence", "direction", "speed_drift", "size_drift", "flicker")
    } | {"curves": v["curves"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default=None, help="exported model folder (default: the shipped one)"
    )
    ap.add_argument("--frames", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--modes", nargs="+", default=["extend", "extend+anchor"])
    ap.add_argument("--keyframe-model", default=None, help="adds the keyframes mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", default=None, help="folder to keep the videos in")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--plot", default=None, help="draw the probe curves of the longest videos here")
    ap.add_argument("--strip", default=None, help="frames of the longest video, every 8th, here")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FRAMES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, frames, out = args.child
        row = child(args.model, mode, int(frames), out, args.seed, args.threads)
        print(json.dumps(row))
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="vidiff-long-"))
    folder.mkdir(parents=True, exist_ok=True)
    modes = list(args.modes) + ([f"keyframes:{args.keyframe_model}"] if args.keyframe_model else [])
    rows = []
    for mode in modes:
        for n in args.frames:
            out = folder / f"{mode.split(':')[0]}-{n}.mp4"
            cmd = [sys.executable, __file__, "--child", mode, str(n), str(out)]
            cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
            cmd += ["--model", args.model] if args.model else []
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1]) | score(str(out))
            rows.append(row)
            print(
                f"{row['mode']:>14} N={n:4d}  {row['seconds']:7.1f} s  first window "
                f"{row['first_window_s']:5.1f} s  {row['frames_per_s']:5.2f} frames/s "
                f"(playback {row['playback_fps']})  peak RSS {row['peak_rss_mb']:6.0f} MB  "
                f"adherence {row['adherence']:.2f}  presence {row['presence']:.2f}  "
                f"size drift {row['size_drift']:+.2f}  speed drift {row['speed_drift']:+.2f}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    longest = [r for r in rows if r["frames"] == max(args.frames)]
    if args.plot:
        plot(longest, args.plot)
    if args.strip:
        from vidiff.data.video_io import read_video, write_video

        video, _ = read_video(longest[0]["video"])
        step = 8
        rows_of = 32 // step * 2  # two seconds of playback per row
        frames = video[:, ::step]
        n = frames.shape[1] // rows_of * rows_of
        grid = frames[:, :n].reshape(3, -1, rows_of, *frames.shape[2:])  # (C, R, K, H, W)
        grid = grid.permute(0, 1, 3, 2, 4).reshape(3, 1, grid.shape[1] * 32, rows_of * 32)
        write_video(grid, args.strip)


def plot(rows: list[dict], path: str) -> None:
    """Per-window probe curves (speed, size, presence, direction) of each mode's longest video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("speed", "speed (px/frame)"), ("area", "area (px)"), ("presence", "presence")]
    keys += [("direction_ok", "moves as captioned")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    for ax, (key, label) in zip(axes, keys):
        for r in rows:
            ax.plot(r["curves"]["frame"], r["curves"][key], marker="o", ms=3, label=r["mode"])
        ax.set_xlabel("first frame of the 16-frame window")
        ax.set_title(label)
    axes[0].legend()
    fig.suptitle(f"{rows[0]['frames']} frames of '{PROMPT}', seed 0")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
