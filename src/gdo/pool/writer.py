"""Write chosen candidates back as pool rows, in each row's own format, with only the chosen turns.

For every row holding at least one chosen uid, the original record is re-read from its pool file
(streamed: JSONL files are read in chunks and only the needed lines are parsed) and written with:

- every system message kept, and only the chosen (user, assistant) message pairs;
- the media the kept turns refer to, so the ``<image>``/``<video>`` token count still matches the
  media lists. A row without tokens keeps all its media. When a kept turn relied on media shown
  in an earlier, dropped turn (positional tokens), the token (or, in content lists, the media part)
  is put at the start of the kept user message so the sample still shows it.

Rows come out in pool order (file argument order, then line), one JSON object per line.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from gdo.utils.io import atomic_open

from . import formats as F
from .candidates import Row, RowReject, parse_row


def _iter_needed_jsonl(path: str, needed: np.ndarray, chunk_bytes: int = 32 << 20) -> Iterator[tuple[int, bytes]]:
    """Yield (line, raw bytes) for the sorted 1-based line numbers ``needed`` of a JSONL file.

    Streams the file in chunks; newline positions are found with numpy and only the needed lines
    are sliced out (lines are numbered exactly as ``gdo.pool.formats.iter_jsonl`` numbers them)."""
    needed = np.asarray(needed, np.int64)
    if not len(needed):
        return
    k = 0  # next index into needed
    lineno = 1  # number of the first line in `data`
    rest = b""
    with open(path, "rb") as f:
        while k < len(needed):
            buf = f.read(chunk_bytes)
            if not buf:
                break
            data = rest + buf if rest else buf
            nl = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
            if not len(nl):
                rest = data
                continue
            n_lines = len(nl)  # complete lines in data
            starts = np.concatenate([[0], nl[:-1] + 1])
            hi = np.searchsorted(needed, lineno + n_lines, side="left")
            for ln in needed[k:hi].tolist():
                i = ln - lineno
                yield ln, data[starts[i]:nl[i]]
            k = hi
            rest = data[nl[-1] + 1:]
            lineno += n_lines
    if rest and k < len(needed) and needed[k] == lineno:
        yield lineno, rest


def rewrite_row(rec: dict, row: Row, kept: list[tuple[int, int]]) -> dict:
    """Return a copy of ``rec`` holding only the (user, assistant) message pairs ``kept``.

    System messages are kept. Media lists are filtered to the media the kept turns refer to
    (see the module docstring). ``row`` is ``parse_row(rec, fmt)``.
    """
    msgs = rec[row.conv_field]
    keep_set = {i for pair in kept for i in pair}
    pair_by_user = {p.user_msg: p for p in row.pairs}
    out = dict(rec)
    new_msgs: list[Any] = []
    if not row.turn_items and not row.inline:
        # no tokens: every turn sees all the row's media; keep media as they are
        for i, m in enumerate(msgs):
            if i in keep_set or _is_system(m):
                new_msgs.append(m)
        out[row.conv_field] = new_msgs
        return out
    referenced: list[int] = []  # items in order of reference in the kept messages
    ref_set: set[int] = set()
    for i, m in enumerate(msgs):
        if not (i in keep_set or _is_system(m)):
            continue
        own = row.turn_items.get(i, []) if i in keep_set else []
        p = pair_by_user.get(i) if i in keep_set else None
        need = list(range(len(row.items))) if (p is not None and p.items is None) else list(p.items) if p else []
        missing = [j for j in need if j not in ref_set and j not in own]
        if missing:
            m = _prepend_media(m, row, missing)
        for j in missing + own:
            if j not in ref_set:
                ref_set.add(j)
                referenced.append(j)
        new_msgs.append(m)
    out[row.conv_field] = new_msgs
    if row.inline:
        return out
    # rebuild each media field in reference order (per field, as tokens map per field)
    by_src: dict[str, list[Any]] = {}
    for j in referenced:
        it = row.items[j]
        by_src.setdefault(it.src, []).append(it.value)
    for src in {it.src for it in row.items}:
        vals = by_src.get(src, [])
        orig = rec.get(src)
        if isinstance(orig, str):
            if vals:
                out[src] = vals[0]
            else:
                out.pop(src, None)
        elif row.items and row.items[0].kind == "frames" and row.items[0].slot == "any":
            out[src] = orig if vals else []
        else:
            out[src] = vals
    return out


def _is_system(m: Any) -> bool:
    return isinstance(m, dict) and str(m.get("role", m.get("from", ""))).lower() == "system"


def _prepend_media(m: dict, row: Row, items: list[int]) -> dict:
    m = dict(m)
    key = "content" if "content" in m else "value"
    c = m.get(key)
    if row.inline:
        parts = []
        for j in items:
            it = row.items[j]
            t = "image_url" if it.slot == "image" else "video_url"
            parts.append({"type": t, "value": it.value} if any(
                isinstance(x, dict) and "value" in x for x in (c or [])) else {"type": t, t: it.value})
        m[key] = parts + list(c or [])
        return m
    toks = "".join(row.item_token.get(j, "<video>" if row.items[j].slot == "video" else "<image>") for j in items)
    m[key] = toks + (c or "")
    return m


def write_rows(candidates: pa.Table, uids: Iterable[str], out_path: str | os.PathLike, *,
               fmt: str | None = None) -> int:
    """Write the pool rows of the chosen ``uids`` with only the chosen turns, as JSONL, atomically.

    Args:
        candidates: the candidates table (CANDIDATE_SCHEMA; needs uid, source_file, file_index,
            line, format, user_msg, asst_msg).
        uids: chosen uids (any order; unknown uids are ignored).
        out_path: output JSONL file (written atomically).
        fmt: force the row format used to re-parse the rows (default: the ``format`` column).

    Returns:
        Number of rows written.

    Raises:
        FileNotFoundError: a source pool file is gone. ValueError: a source row no longer parses
        the way it did at ingest (the pool changed since).
    """
    uid_arr = pa.array(list(uids) if not isinstance(uids, (pa.Array, pa.ChunkedArray)) else uids, pa.string())
    mask = pc.is_in(candidates.column("uid"), value_set=uid_arr)
    sel = candidates.filter(mask).select(["file_index", "source_file", "line", "format", "user_msg", "asst_msg"])
    n_written = 0
    if sel.num_rows:
        fi = sel.column("file_index").to_numpy()
        line = sel.column("line").to_numpy()
        order = np.lexsort((line, fi))
        sel = sel.take(pa.array(order))
    # per file, in pool order
    with atomic_open(out_path, "wb") as out:
        if not sel.num_rows:
            return 0
        fi = sel.column("file_index").to_numpy()
        bounds = np.flatnonzero(np.diff(fi)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(fi)]])
        lines_all = sel.column("line").to_numpy()
        um = sel.column("user_msg").to_numpy()
        am = sel.column("asst_msg").to_numpy()
        files = sel.column("source_file")
        fmts = sel.column("format")
        for s, e in zip(starts.tolist(), ends.tolist()):
            path = files[s].as_py()
            rfmt = fmt or fmts[s].as_py()
            lines = lines_all[s:e]
            uniq, first = np.unique(lines, return_index=True)
            first = first.tolist() + [e - s]
            kept_by_line = {int(ln): list(zip(um[s + a:s + b].tolist(), am[s + a:s + b].tolist()))
                            for ln, a, b in zip(uniq.tolist(), first[:-1], first[1:])}
            for ln, raw, rec in _records(path, uniq):
                kept = kept_by_line[ln]
                out.write(_row_bytes(path, ln, raw, rec, rfmt, kept))
                n_written += 1
    return n_written


def _records(path: str, needed: np.ndarray) -> Iterator[tuple[int, bytes | None, Any]]:
    container = F.detect_container(path)
    if container == "jsonl":
        for ln, raw in _iter_needed_jsonl(path, needed):
            yield ln, raw, None
        return
    want = set(needed.tolist())
    it = F.iter_json_array(path) if container == "json" else F.iter_table_records(path, container)
    for ln, rec, _ in it:
        if ln in want:
            yield ln, None, rec


def _row_bytes(path: str, ln: int, raw: bytes | None, rec: Any, fmt: str, kept: list[tuple[int, int]]) -> bytes:
    if rec is None:
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"{path}:{ln}: row no longer parses ({e}); the pool changed since ingest") from None
    msgs = rec.get("messages") if isinstance(rec, dict) else None
    if msgs is None and isinstance(rec, dict):
        msgs = rec.get("conversations")
    kept_sorted = sorted(kept)
    # fast path: all messages are exactly the kept pairs in order -> the row is unchanged
    if (raw is not None and isinstance(msgs, list) and len(msgs) == 2 * len(kept_sorted)
            and all(u == 2 * k and a == 2 * k + 1 for k, (u, a) in enumerate(kept_sorted))):
        return raw.rstrip(b"\r") + b"\n"
    try:
        row = parse_row(rec, fmt)
    except RowReject as e:
        raise ValueError(f"{path}:{ln}: row no longer parses ({e.reason}: {e.detail}); the pool changed") from None
    new = rewrite_row(rec, row, kept_sorted)
    return orjson.dumps(new, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


__all__ = ["write_rows", "rewrite_row"]
