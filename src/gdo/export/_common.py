"""Shared helpers of the trainer exporters: candidate rows, media tokens, atomic JSON output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson
import pyarrow as pa

from gdo.utils.io import atomic_open

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"

#: Candidate columns an exporter reads (gdo.schema.CANDIDATE_SCHEMA).
NEEDED = ("uid", "question", "answer", "media_kind", "media", "bucket", "row_id", "turn", "data_source")


def candidate_rows(candidates: pa.Table, uids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Return the candidates as dicts, in ``uids`` order (all rows in table order when None).

    Args:
        candidates: a table with at least the columns in ``NEEDED`` (CANDIDATE_SCHEMA).
        uids: uids to export; each must be in ``candidates``.

    Raises:
        ValueError: a needed column is missing, or a uid is not a candidate.
    """
    missing = [c for c in NEEDED if c not in candidates.column_names]
    if missing:
        raise ValueError(f"candidates table lacks column(s) {missing} needed for export")
    cols = {c: candidates.column(c).to_pylist() for c in NEEDED}
    rows = [{c: cols[c][i] for c in NEEDED} for i in range(candidates.num_rows)]
    if uids is None:
        return rows
    by_uid = {r["uid"]: r for r in rows}
    out = []
    for u in uids:
        if u not in by_uid:
            raise ValueError(f"uid {u!r} is not in the candidates table")
        out.append(by_uid[u])
    return out


def media_path(p: str, relative_to: Path | None) -> str:
    """Return ``p`` unchanged (absolute) or relative to ``relative_to`` when given."""
    if relative_to is None:
        return p
    return os.path.relpath(p, relative_to)


def split_frames(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split rows into (images/video files/text, frame lists), keeping order within each."""
    main, frames = [], []
    for r in rows:
        (frames if r["media_kind"] == "frames" else main).append(r)
    return main, frames


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` as UTF-8 JSON lines atomically; return the count."""
    n = 0
    with atomic_open(path, "wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")
            n += 1
    return n


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON atomically (key order as built, non-ASCII kept)."""
    with atomic_open(path, "wb") as f:
        f.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
