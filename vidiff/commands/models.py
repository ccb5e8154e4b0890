"""``vidiff models``: the shipped models, what each is and what it measured."""

from __future__ import annotations

import json as _json

from vidiff.registry import ALIASES, ModelEntry, describe_model, list_models, resolve_model


def _size(n: int) -> str:
    """Bytes as a short human figure (``1.4 MB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def _row(m: ModelEntry) -> list[str]:
    tc = m.temporal_compression
    any_length = "any" if (tc or 1) == 1 else f"any (1+{tc}k frames)"
    shape = f"{m.frames}x{m.height}x{m.width}" if m.frames else any_length
    steps = f"{m.steps} {m.sampler}" if m.steps else "-"
    h = m.headline
    figures = ", ".join(
        text
        for key, text in (
            ("adherence", "adherence {:.1%}"),
            ("adherence_heldout", "held-out {:.1%}"),
            ("fd", "FD {:.2f}"),
            ("sec_per_video", "{:.2f} s/video"),
            ("endpoints_within_tol", "trajectory endpoints within 3 px {:.1%}"),
            ("move_acc", "camera move right {:.1%}"),
            ("psnr", "PSNR {:.1f} dB"),
            ("colour_error", "colour error {:.2f}/255"),
            ("psnr_photos", "photos {:.1f} dB"),
        )
        if h.get(key) is not None
        for text in [text.format(h[key])]
    )
    return [
        m.name,
        m.kind,
        shape,
        steps,
        f"{m.parameters / 1e6:.2f}M",
        _size(m.bytes),
        figures or "-",
    ]


def table(entries: list[ModelEntry]) -> str:
    """The models as a plain-text table, one row each, plus their aliases."""
    head = ["name", "kind", "frames x H x W", "steps", "params", "size", "recorded figures"]
    rows = [head, *map(_row, entries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    names = {m.name for m in entries}
    aliases = [f"{a} = {n}" for a, n in ALIASES.items() if n in names]
    if aliases:
        lines += ["", "aliases: " + ", ".join(aliases)]
    return "\n".join(lines)


def models(name: str | None = None, *, json: bool = False) -> list[dict]:
    """List the models shipped with vidiff: name, kind, frames x H x W, default sampling steps,
    parameters, weight-file size and the figures `vidiff eval --record` measured for each.

    A shipped model's name works wherever a model folder is accepted (`vidiff generate --model NAME`,
    `vidiff eval --model NAME`, a config's `model.vae: NAME`). NAME (a shipped name or any exported
    model folder) shows that one model in full, with its recorded eval.json.

    Args:
        name: one model (a shipped name or a model folder) to describe instead of the list.
        json: print JSON (a list of objects, or one object with NAME) for scripts.
    """
    if name is not None:
        entries = [describe_model(resolve_model(name, "NAME"))]
    else:
        entries = list_models()
    found = [m.as_dict() for m in entries]
    if json:
        print(_json.dumps(found[0] if name is not None else found, indent=2))
    elif not entries:
        print("no models are shipped in this installation (see `make default-model`)")
    else:
        print(table(entries))
        if name is not None and entries[0].figures:
            print("\n" + _json.dumps(entries[0].figures, indent=2))
    return found
