"""``vidiff eval-compare``: several ``vidiff eval`` results side by side, as one table and one plot.

Distillation and sampler studies evaluate several models or samplers on the same prompts and seeds
(``vidiff eval`` fixes both from ``--seed`` and ``--num-videos``); this reads their ``metrics.json``
files, refuses to compare evaluations made on different prompt sets, and writes ``OUT/report.html``
(tables per split, quality-vs-steps plot), ``OUT/compare.json`` and ``OUT/compare.md`` (the
markdown table, also printed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from vidiff.commands import checks
from vidiff.errors import UserError
from vidiff.eval import report

# Columns of the markdown table: the report's columns for these keys (headers and formats shared).
MD_KEYS = ("adherence", "adherence_geo", "colour_ok", "shape_ok", "geo_shape_ok", "direction_ok",
           "flicker_median", "jitter_median", "fd", "sec_per_video")  # fmt: skip
MD_COLUMNS = [c for c in report.COLUMNS if c[0] in MD_KEYS]


def _read(source: str) -> dict:
    path = Path(source)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json at {source} (give a `vidiff eval --out` folder)")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    if "runs" not in metrics:
        raise UserError(f"{path} is not a `vidiff eval --model` result (it has no per-steps runs)")
    return metrics


def _default_label(metrics: dict, source: str) -> str:
    model = Path(str(metrics.get("model", source))).name
    return f"{model} {metrics.get('sampler', '')}".strip()


def _prompt_set(metrics: dict) -> tuple:
    return (metrics.get("dataset"), metrics.get("num_videos"), metrics.get("seed"),
            metrics.get("seeds_per_prompt"))  # fmt: skip


def compare(*sources: str, labels: list[str] | None = None, out: str = "compare-out") -> dict:
    """Compare several `vidiff eval --model` results (their --out folders or metrics.json files) made
    on the same prompts and seeds: one row per (result, steps) and split, with adherence, flicker,
    jitter, FD and seconds per video. Writes OUT/report.html (tables, adherence-vs-steps plot),
    OUT/compare.json and OUT/compare.md (printed).

    Args:
        sources: `vidiff eval --out` folders or their metrics.json files.
        labels: a name per result, in order (default: model folder and sampler).
        out: the folder for report.html, compare.json and compare.md.
    """
    checks.folder("--out", out)
    if not sources:
        raise UserError("give one or more `vidiff eval --out` folders (or metrics.json files)")
    if labels is not None and len(labels) != len(sources):
        raise UserError(f"--labels has {len(labels)} names for {len(sources)} results")
    results = [_read(s) for s in sources]
    sets = {_prompt_set(m) for m in results}
    if len(sets) > 1:
        shown = ", ".join(
            f"{s}: (dataset, N, seed, seeds per prompt) = {_prompt_set(m)}"
            for s, m in zip(sources, results)
        )
        raise UserError(
            f"results were made on different prompt sets, so they do not compare: {shown}"
        )
    names = labels or [_default_label(m, s) for m, s in zip(results, sources)]
    rows = []  # one per (result, steps, split)
    for name, m in zip(names, results):
        for run in m["runs"]:
            for split, summ in run["splits"].items():
                rows.append({"label": name, "steps": run["steps"], "split": split, **summ})
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = list(dict.fromkeys(r["split"] for r in rows))
    md = _markdown(rows, splits)
    (out_dir / "compare.md").write_text(md, encoding="utf-8")
    report.write_json(
        {"sources": list(sources), "labels": names, "rows": rows}, out_dir / "compare.json"
    )
    tables = [
        (
            f"{split} split — N = {results[0].get('num_videos')} per row, same prompts and seeds",
            [(f"{r['label']} · {r['steps']} steps", r) for r in rows if r["split"] == split],
        )
        for split in splits
    ]
    plot = plot_adherence_vs_steps(rows, out_dir / "adherence_vs_steps.png")
    dataset, n, seed, _ = next(iter(sets))
    report.write_report(
        out_dir,
        "vidiff eval-compare",
        f"dataset {dataset} · N = {n} per split · seed {seed} · {len(results)} evaluations",
        tables,
        [plot] if plot is not None else [],
        [],
    )
    print(md)
    print(f"wrote {out_dir / 'report.html'}")
    return {"labels": names, "rows": rows}


def _markdown(rows: list[dict], splits: list[str]) -> str:
    cols = [c for c in MD_COLUMNS if any(c[0] in r for r in rows)]
    lines = [
        "| model | steps | split | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for split in splits:
        for r in rows:
            if r["split"] != split:
                continue
            cells = []
            for key, _, fmt in cols:
                v = r.get(key)
                ok = isinstance(v, (int, float)) and math.isfinite(v)
                cells.append(fmt.format(v) if ok else "–")
            lines.append(f"| {r['label']} | {r['steps']} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_adherence_vs_steps(rows: list[dict], path: Path) -> Path | None:
    """Adherence, median flicker and FD against sampling steps: a line per label (results given the
    same label join one line, e.g. a student per step count), solid for the in-distribution split and
    dashed for the others. FD compares here because every result has the same N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.8))
    colours = {}
    for r in rows:
        colours.setdefault(r["label"], f"C{len(colours) % 10}")
    for label, colour in colours.items():
        for split in dict.fromkeys(r["split"] for r in rows):
            pts = sorted(
                (r["steps"], r) for r in rows if r["label"] == label and r["split"] == split
            )
            if not pts:
                continue
            style = "o-" if split in ("train", "all") else "s--"
            steps = [s for s, _ in pts]
            a1.plot(steps, [100 * r.get("adherence", np.nan) for _, r in pts], style,
                    color=colour, label=f"{label} ({split})")  # fmt: skip
            a2.plot(steps, [r.get("flicker_median", np.nan) for _, r in pts], style, color=colour)
            a3.plot(steps, [r.get("fd", np.nan) for _, r in pts], style, color=colour)
    panels = ((a1, "adherence (%)"), (a2, "median background flicker"), (a3, "FD (own features)"))
    for ax, name in panels:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampling steps")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
