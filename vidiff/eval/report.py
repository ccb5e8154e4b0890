"""The evaluation report: ``metrics.json``, PNG plots (matplotlib) and ``report.html``.

The page is self-contained next to its files: every video is written as a looping GIF (plays in
every browser without a click) plus an MP4, shown scaled up with crisp pixels, with its prompt and
its verdict (the probe's reading of colour / shape / direction or digits / ball count). Metric
tables give N and, for FD/KID, the real-vs-real floor at the same N.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

# Columns of the metric tables: (key, header, format); missing keys are skipped per table.
COLUMNS = [
    ("n", "N", "{:.0f}"),
    ("adherence", "adherence", "{:.1%}"),
    ("adherence_geo", "adherence (geometric shape)", "{:.1%}"),
    ("colour_ok", "colour", "{:.1%}"),
    ("shape_ok", "shape (CNN judge)", "{:.1%}"),
    ("geo_shape_ok", "shape (geometric)", "{:.1%}"),
    ("direction_ok", "direction", "{:.1%}"),
    ("digit_ok", "digit", "{:.1%}"),
    ("count_ok", "right count", "{:.1%}"),
    ("flicker_median", "flicker (median)", "{:.4f}"),
    ("jitter_median", "jitter px (median)", "{:.3f}"),
    ("colour_drift", "colour drift", "{:.3f}"),
    ("area_cv", "area CV", "{:.3f}"),
    ("flip_rate", "label flips", "{:.3f}"),
    ("ade", "ADE px", "{:.2f}"),
    ("fde", "FDE px", "{:.2f}"),
    ("bounce_err", "bounce err (frames)", "{:.2f}"),
    ("fd", "FD", "{:.3f}"),
    ("fd_floor", "FD real-vs-real", "{:.3f}"),
    ("kid", "KID", "{:.4f}"),
    ("kid_floor", "KID real-vs-real", "{:.4f}"),
    ("fvd", "FVD (I3D)", "{:.2f}"),
    ("fvd_floor", "FVD real-vs-real", "{:.2f}"),
    ("sec_per_video", "s / video", "{:.3f}"),
    # long-video probes (vidiff eval-long)
    ("presence", "presence", "{:.1%}"),
    ("direction", "moves as captioned", "{:.1%}"),
    ("speed_drift", "speed drift", "{:+.2f}"),
    ("size_drift", "size drift", "{:+.2f}"),
    ("flicker", "flicker", "{:.4f}"),
]

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.card { width: 140px; border: 3px solid #ccc; border-radius: 6px; padding: 4px; font-size: 11px; }
.card.ok { border-color: #2a9d3a; } .card.bad { border-color: #d33; }
.card img { width: 128px; height: 128px; image-rendering: pixelated; display: block; margin: auto;
  background: #000; }
.prompt { font-weight: 600; margin-top: 3px; } .verdict { color: #555; }
.plots img { max-width: 560px; margin: 4px; border: 1px solid #eee; }
.note { background: #fffbe6; border: 1px solid #eed; padding: 6px 10px; font-size: 13px; }
"""


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return html.escape(str(value))


def metrics_table(rows: list[tuple[str, dict]]) -> str:
    """An HTML table, one row per (label, summary dict), with the columns any row has."""
    cols = [c for c in COLUMNS if any(c[0] in r for _, r in rows)]
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cols)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{_fmt(r.get(k), f)}</td>" for k, _, f in cols)
        + "</tr>"
        for label, r in rows
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def write_clip(video, stem: Path, fps: float = 8) -> dict[str, str]:
    """Write one clip as ``stem.gif`` and ``stem.mp4``; returns their file names."""
    from vidiff.data.video_io import write_video

    stem.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for ext in ("gif", "mp4"):
        path = stem.with_suffix("." + ext)
        write_video(video, path, fps=fps)
        out[ext] = path.name
    return out


def verdict_text(v: dict) -> str:
    parts = [f"saw: {v.get('pred', '?')}"]
    keys = (("colour_ok", "colour"), ("shape_ok", "shape"), ("geo_shape_ok", "geometry"),
            ("direction_ok", "dir"))  # fmt: skip
    for key, name in keys:
        if key in v:
            parts.append(f"{name} {'✓' if v[key] >= 1 else '✗'}")
    if "geo_pred" in v:
        fill, top, bottom, band, asp = (list(v.get("geo_features") or []) + [math.nan] * 5)[:5]
        parts.append(f"geometry reads {v['geo_pred']} (fill {fill:.2f}, corners {top:.2f}/"
                     f"{bottom:.2f}, top {band:.2f}, h/w {math.exp(asp):.2f})")  # fmt: skip
    if "ade" in v and v["ade"] == v["ade"]:
        parts.append(f"ADE {v['ade']:.2f}px")
    if "jitter" in v and v["jitter"] == v["jitter"]:
        parts.append(f"jitter {v['jitter']:.2f}px")
    if v.get("flicker", 0) > 0.005:  # visible background flicker (ground truth: ~0)
        parts.append(f"flicker {v['flicker']:.3f}")
    return " · ".join(parts)


def plot_quality_vs_steps(runs: list[dict], path: Path) -> Path | None:
    """Adherence (per split) and median flicker against the number of sampling steps."""
    if len(runs) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["steps"] for r in runs]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for split in runs[0]["splits"]:
        a1.plot(
            steps,
            [100 * r["splits"][split].get("adherence", np.nan) for r in runs],
            "o-",
            label=split,
        )
        a2.plot(
            steps,
            [r["splits"][split].get("flicker_median", np.nan) for r in runs],
            "o-",
            label=split,
        )
    for ax, name in ((a1, "adherence (%)"), (a2, "median background flicker")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampling steps")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_attributes(summaries: dict[str, dict], path: Path) -> Path | None:
    """Grouped bars: overall and per-attribute adherence per split (generated and real)."""
    keys = [k for k in ("adherence", "colour_ok", "shape_ok", "direction_ok", "digit_ok", "count_ok")
            if any(k in s for s in summaries.values())]  # fmt: skip
    if not keys or not summaries:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 0.8 / len(summaries)
    x = np.arange(len(keys))
    for i, (name, s) in enumerate(summaries.items()):
        vals = [100 * s.get(k, np.nan) for k in keys]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name)
    ax.set_xticks(x, [k.replace("_ok", "") for k in keys])
    ax.set_ylabel("% of videos")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_distributions(verdicts: dict[str, list[dict]], path: Path) -> Path | None:
    """Histograms of per-video background flicker and centroid jitter per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("flicker", "jitter") if any(k in v for vs in verdicts.values() for v in vs)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.2), squeeze=False)
    for ax, k in zip(axes[0], keys):
        groups = {}
        for name, vs in verdicts.items():
            vals = np.array([v.get(k, np.nan) for v in vs], dtype=float)
            groups[name] = vals[np.isfinite(vals)]
        everything = np.concatenate([g for g in groups.values()] + [np.zeros(1)])
        bins = np.linspace(0, max(float(everything.max()), 1e-3) * 1.02, 31)  # shared bins
        for name, vals in groups.items():
            if len(vals):
                ax.hist(vals, bins=bins, alpha=0.55, label=name)
        ax.set_xlim(left=0)
        ax.locator_params(axis="x", nbins=5)
        ax.set_xlabel(k + (" (px)" if k == "jitter" else " (mean |ΔI|)"))
        ax.set_ylabel("videos")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_long_curves(curves: dict[str, dict[str, list]], path: Path) -> Path | None:
    """Long-video probes against frame index: per label (e.g. a mode), the per-window means of
    adherence, presence, moving as captioned, speed and size (:mod:`vidiff.eval.long_probes`)."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("adherence", "adherence (colour, shape, axis)"), ("presence", "presence")]
    keys += [("direction_ok", "moves as captioned"), ("speed", "speed (px/frame)")]
    keys += [("area", "size (px)")]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2))
    for ax, (key, label) in zip(axes, keys):
        for name, c in curves.items():
            ax.plot(c["frame"], c[key], marker="o", ms=3, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("first frame of the window")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(
    out: Path,
    title: str,
    subtitle: str,
    tables: list[tuple[str, list[tuple[str, dict]]]],
    plots: list[Path],
    galleries: list[tuple[str, list[dict]]],
    notes: list[str] | None = None,
) -> Path:
    """Write ``out/report.html``.

    ``galleries``: (heading, items) with items ``{"gif", "mp4", "caption", "verdict", "ok"}`` whose
    paths are relative to ``out``.
    """
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
    ]
    for note in notes or []:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for heading, rows in tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>{metrics_table(rows)}")
    if plots:
        parts.append("<h2>Plots</h2><div class='plots'>")
        parts += [f"<img src='{html.escape(p.name)}' alt='{html.escape(p.stem)}'>" for p in plots]
        parts.append("</div>")
    for heading, items in galleries:
        parts.append(f"<h2>{html.escape(heading)}</h2><div class='grid'>")
        for it in items:
            if not it.get("gif"):  # beyond the gallery limit: scored, not shown
                continue
            cls = "ok" if it.get("ok") else "bad"
            mp4 = f" <a href='{html.escape(it['mp4'])}'>mp4</a>" if it.get("mp4") else ""
            parts.append(
                f"<div class='card {cls}'><img src='{html.escape(it['gif'])}' alt='video'>"
                f"<div class='prompt'>{html.escape(it['caption'])}</div>"
                f"<div class='verdict'>{html.escape(it['verdict'])}{mp4}</div></div>"
            )
        parts.append("</div>")
    parts.append("</body></html>")
    path = Path(out) / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_json(obj, path: Path) -> Path:
    """``json.dump`` that turns NaN/inf into null and numpy scalars into numbers."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.floating, float)):
            return float(x) if math.isfinite(x) else None
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.ndarray):
            return clean(x.tolist())
        return x

    path.write_text(json.dumps(clean(obj), indent=1), encoding="utf-8")
    return path
