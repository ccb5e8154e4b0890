"""Captions for a folder of clips: sidecar ``.txt`` files and caption tables, read leniently.

A folder dataset takes each clip's caption from, first match wins:

1. a sidecar ``.txt`` with the clip's stem next to it (``clip.mp4`` -> ``clip.txt``);
2. a row of a ``metadata.csv`` or ``metadata.jsonl`` anywhere in the tree (a nearer table -- deeper
   in the tree -- wins over one higher up);
3. a row of a ``manifest.jsonl`` (what ``vidiff data export`` writes) anywhere in the tree.

A table row names its clip by a path column (``path``/``file_name``/``file``, relative to the
table's folder) and gives a caption column (``caption``/``text``/``prompt``). Every text file must be
UTF-8 (a byte-order mark is allowed): an encoding is never guessed. One bad row (invalid JSON, bytes
that are not UTF-8, a missing column) is skipped with a warning naming the table and its line; a CSV
whose *header* lacks the columns is a ``ValueError`` naming it (nothing in it could be used). A sidecar
that is not UTF-8 is a ``ValueError`` naming it, so that the dataset skips that one clip.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

PATH_KEYS = ("path", "file_name", "file")
CAPTION_KEYS = ("caption", "text", "prompt")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
MANIFEST_FILE = "manifest.jsonl"
TABLE_FILES = (*METADATA_FILES, MANIFEST_FILE)

WHERE_CAPTIONS_GO = (
    "captions go in a sidecar .txt next to each clip (clip.mp4 -> clip.txt), or in a "
    "metadata.jsonl / metadata.csv (columns path, caption) or the manifest.jsonl that "
    "`vidiff data export` writes, anywhere in the folder (see docs/own-data.md)"
)


def _not_utf8(data: bytes, err: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{data[err.start]:02x}); save it as UTF-8"


def _utf8(data: bytes, file: Path) -> str:
    """Bytes -> text; not UTF-8 is a ``ValueError`` naming the file, the line and the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"{file}, line {line}: {_not_utf8(data, e)}") from None


def read_sidecar(path: Path) -> str:
    """The caption in a sidecar ``.txt`` (stripped); not UTF-8 is a ``ValueError`` naming it."""
    return _utf8(path.read_bytes(), path).strip()


def _row_caption(row: object, where: str, warn: Callable[[str], None]) -> tuple[str, str] | None:
    """``(relative path, caption)`` of one table row, or ``None`` (warned) when it lacks either."""
    if not isinstance(row, dict):
        warn(f"{where}: expected an object with path and caption, got {type(row).__name__}")
        return None
    pk = next((k for k in PATH_KEYS if row.get(k) not in (None, "")), None)
    ck = next((k for k in CAPTION_KEYS if k in row), None)
    if pk is None or ck is None:
        warn(
            f"{where}: needs a non-empty path ({'/'.join(PATH_KEYS)}) and a caption "
            f"({'/'.join(CAPTION_KEYS)}); got keys {sorted(map(str, row))}"
        )
        return None
    return str(row[pk]), str(row[ck] or "").strip()


def read_table(file: Path, warn: Callable[[str], None]) -> dict[Path, str]:
    """A ``.csv``/``.jsonl`` caption table -> ``{absolute path: caption}`` (see the module docstring).

    ``warn`` receives one message per skipped row, naming the file and line.
    """
    data = file.read_bytes()
    rows: list[tuple[int, object]] = []
    if file.suffix == ".csv":
        # Undecodable bytes become lone surrogates so that only the rows holding them are lost.
        text = data.decode("utf-8-sig", errors="surrogateescape")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        if not any(k in header for k in PATH_KEYS) or not any(k in header for k in CAPTION_KEYS):
            raise ValueError(
                f"{file}: the header needs a path column ({'/'.join(PATH_KEYS)}) and a caption "
                f"column ({'/'.join(CAPTION_KEYS)}); got {header}"
            )
        for row in reader:
            try:
                "".join(str(v) for v in row.values()).encode("utf-8")
            except UnicodeEncodeError:
                warn(f"{file}, line {reader.line_num}: not UTF-8 text; row skipped")
                continue
            rows.append((reader.line_num, row))
    else:
        for n, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                rows.append((n, json.loads(raw.decode("utf-8-sig"))))
            except UnicodeDecodeError as e:
                warn(f"{file}, line {n}: {_not_utf8(raw, e)}; line skipped")
            except json.JSONDecodeError as e:
                warn(f"{file}, line {n}: not valid JSON ({e}); line skipped")
    out: dict[Path, str] = {}
    for n, row in rows:
        parsed = _row_caption(row, f"{file}, line {n}", warn)
        if parsed is not None:
            out[(file.parent / parsed[0]).resolve()] = parsed[1]
    return out


def table_captions(tables: list[Path], warn: Callable[[str], None]) -> dict[Path, str]:
    """Merge caption tables: ``metadata.*`` over ``manifest.jsonl``, deeper tables over higher ones."""

    def rank(table: Path) -> tuple[int, int, str]:
        return (table.name in METADATA_FILES, len(table.parts), str(table))

    captions: dict[Path, str] = {}
    for table in sorted(tables, key=rank):  # later wins
        try:
            captions.update(read_table(table, warn))
        except OSError as e:  # e.g. no permission: its captions are missing, the rest are read
            warn(f"{table}: cannot read it ({e}); its captions are not used")
    return captions
