"""Long-video benchmark: peak memory and time against length, frames per second per mode, drift.

For each mode and length N, a child process loads the model, makes the N-frame videos of the
prompts one after another, window by window (vidiff.sampling.long), streaming each into an .mp4
(vidiff.data.video_io.VideoWriter), then reports the mean wall time per video, the time to the first
window, generated frames per second and its peak RSS (ru_maxrss: the whole process, model and
libraries included). The parent then scores every video with the long-video probes
(vidiff.eval.long_probes, the bars of `vidiff eval-long`) and prints a table of means over the
prompts; ``--json`` keeps it, ``--markdown`` writes it as a Markdown table.

    python benchmarks/long_video.py                       # default model, 32/64/128/256 frames
    python benchmarks/long_video.py --frames 32 256 --modes extend extend+anchor --json out.json
    python benchmarks/long_video.py --frames 64 128 256 --prompts 8 \
        --modes chunks extend extend+anchor --keyframe-model shapes-keyframes

Modes: ``chunks`` (the baseline: independent windows, each the model's plain clip for its window
seed, laid end to end), ``extend`` (context 4), ``extend+anchor`` (with cross-frame attention to the
first window); ``keyframes`` (stride 3, the model filling the frames between) with
``--keyframe-model``, a model trained with the stride conditioning.
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
FIGURES = ("adherence", "colour_shape", "presence", "moving", "size_drift", "speed_drift", "flicker",
           "passes", "jumps")  # fmt: skip
FORMATS = {
    "size_drift": "{:+.2f}",
    "speed_drift": "{:+.2f}",
    "flicker": "{:.4f}",
    "jumps": "{:.1f}",
}


def prompts_for(n: int) -> list[str]:
    """``PROMPT`` alone for one prompt, else ``n`` in-distribution captions spread over all of them
    (every colour-shape pair and direction in turn)."""
    if n == 1:
        return [PROMPT]
    from vidiff.eval.runner import all_shapes_prompts

    every = all_shapes_prompts("train")
    return [every[(i * 5) % len(every)] for i in range(n)]  # 5 is coprime with 68: no repeats


def independent_chunks(pipe, prompt: str, seed: int, frames: int):
    """The baseline: windows made independently (window seeds as extension's), end to end."""
    from vidiff.sampling.long import window_seed

    made, w = 0, 0
    while made < frames:
        clip = pipe.generate([prompt], [window_seed(seed, w)]).cpu()
        n = min(pipe.num_frames, frames - made)
        yield clip[:, :, :n]
        made, w = made + n, w + 1


def child(
    model: str | None, mode: str, frames: int, out: str, seed: int, threads: int, prompts: int
) -> dict:
    import torch

    torch.set_num_threads(threads)
    from vidiff.data.video_io import VideoWriter
    from vidiff.pipeline import VideoPipeline
    from vidiff.runtime import DEFAULT_MODEL
    from vidiff.sampling.long import extend, keyframe_cascade

    pipe = VideoPipeline.load(model or DEFAULT_MODEL)
    key = VideoPipeline.load(mode.split(":", 1)[1]) if mode.startswith("keyframes") else None
    seconds, firsts, videos = [], [], []
    for i, prompt in enumerate(prompts_for(prompts)):
        start = time.perf_counter()
        if key is not None:
            chunks = keyframe_cascade(key, pipe, [prompt], [seed + i], frames, stride=3)
        elif mode == "chunks":
            chunks = independent_chunks(pipe, prompt, seed + i, frames)
        else:
            anchor = mode == "extend+anchor"
            chunks = extend(pipe, [prompt], [seed + i], frames, context=4, anchor=anchor)
        first = None
        path = out.replace(".mp4", f"-{i:02d}.mp4")
        with VideoWriter(path, fps=pipe.config.video.fps) as writer:
            for chunk in chunks:
                writer.write(chunk[0])
                first = first or time.perf_counter() - start
        seconds.append(time.perf_counter() - start)
        firsts.append(first)
        videos.append({"video": path, "prompt": prompt})
    return {
        "mode": mode.split(":")[0],
        "frames": frames,
        "prompts": prompts,
        "seconds": sum(seconds) / len(seconds),  # per video
        "first_window_s": sum(firsts) / len(firsts),
        "frames_per_s": frames * len(seconds) / sum(seconds),
        "playback_fps": pipe.config.video.fps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "videos": videos,
    }


def score(videos: list[dict]) -> dict:
    """The probes' means over the videos, and the first video's per-window curves."""
    import numpy as np

    from vidiff.data.video_io import read_video
    from vidiff.eval.long_probes import long_bars, score_long_shapes

    verdicts = []
    for v in videos:
        video, _ = read_video(v["video"])
        verdict = score_long_shapes(video, v["prompt"])
        verdicts.append(verdict | long_bars(verdict))
    means = {k: float(np.nanmean([v[k] for v in verdicts])) for k in FIGURES}
    return means | {"curves": verdicts[0]["curves"], "video": videos[0]["video"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default=None, help="exported model folder (default: the shipped one)"
    )
    ap.add_argument("--frames", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--modes", nargs="+", default=["extend", "extend+anchor"])
    ap.add_argument("--keyframe-model", default=None, help="adds the keyframes mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", type=int, default=1, help="videos per row (in-distribution)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", default=None, help="write the table here as Markdown")
    ap.add_argument(
        "--record", default=None, help="write the keyframe rows into this model's eval.json"
    )
    ap.add_argument("--keep", default=None, help="folder to keep the videos in")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--plot", default=None, help="draw the probe curves of the longest videos here")
    ap.add_argument("--strip", default=None, help="frames of the longest video, every 8th, here")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FRAMES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, frames, out = args.child
        row = child(args.model, mode, int(frames), out, args.seed, args.threads, args.prompts)
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
            cmd += ["--prompts", str(args.prompts)]
            cmd += ["--model", args.model] if args.model else []
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row |= score(row["videos"])
            rows.append(row)
            print(
                f"{row['mode']:>14} N={n:4d}  {row['seconds']:7.1f} s  first window "
                f"{row['first_window_s']:5.1f} s  {row['frames_per_s']:5.2f} frames/s "
                f"(playback {row['playback_fps']})  peak RSS {row['peak_rss_mb']:6.0f} MB  "
                f"adherence {row['adherence']:.2f}  presence {row['presence']:.2f}  "
                f"size drift {row['size_drift']:+.2f}  speed drift {row['speed_drift']:+.2f}  "
                f"passes {row['passes']:.2f}",
                flush=True,
            )
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows))
    if args.record:
        record([r for r in rows if r["mode"] == "keyframes"], Path(args.record))
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


def record(rows: list[dict], model: Path) -> None:
    """``model/eval.json`` (a keyframe model's recorded figures): one row per length."""
    from vidiff.eval import report
    from vidiff.files import EVAL_FILE

    out = [
        {
            "setting": f"--long keyframes --stride 3, {r['frames']} frames (long-video probes: share "
            "of 16-frame windows right)",
            "num_videos": r["prompts"],
            "sec_per_video": r["seconds"],
            **{k: r[k] for k in ("adherence", "presence", "size_drift", "jumps", "passes")},
            "flicker_mean": r["flicker"],
        }
        for r in rows
    ]
    figures = {
        "command": "python benchmarks/long_video.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d"),
        "rows": out,
    }
    print(f"recorded the figures in {report.write_json(figures, model / EVAL_FILE)}")


def markdown(rows: list[dict]) -> str:
    """The table: one row per (mode, N), means over the prompts."""
    head = ["mode", "N", "videos", "s / video", "frames/s", "peak RSS MB", *FIGURES]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [r["mode"], r["frames"], r["prompts"], f"{r['seconds']:.1f}",
                 f"{r['frames_per_s']:.1f}", f"{r['peak_rss_mb']:.0f}"]  # fmt: skip
        cells += [FORMATS.get(k, "{:.2f}").format(r[k]) for k in FIGURES]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


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
    fig.suptitle(f"{rows[0]['frames']} frames, first prompt, seed 0")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
