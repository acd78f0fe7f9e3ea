"""Write chosen candidates back as pool rows, in each row's own format, with only the chosen turns.

For every row holding at least one chosen uid, the original record is re-read from its pool file
(JSONL files are memory-mapped, newlines found with ``mmap.find`` and only the needed lines decoded;
:func:`write_row_sets` writes several outputs, e.g. subset and baseline, in one pass) and written with:

- every system message kept, and only the chosen (user, assistant) message pairs;
- the media the kept turns refer to, so the ``<image>``/``<video>`` token count still matches the
  media lists. A row without tokens keeps all its media. When a kept turn relied on media shown
  in an earlier, dropped turn (positional tokens), the token (or, in content lists, the media part)
  is put at the start of the kept user message so the sample still shows it.

Frame lists longer than T (``frames``, default 32) are written sampled to T frames with the
method's index rule (GDO_METHOD.md section 2), as the authors' release writes its subsets.

A row whose messages are exactly the chosen pairs, with no frame list to sample, is copied byte
for byte (its line, less a trailing ``\r``); any other row is rewritten by its format's ``rewrite`` (``gdo.pool.formats``:
the writer only orchestrates) and serialised with orjson.

Rows come out in pool order (file argument order, then line), one JSON object per line.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from gdo.schema import DEFAULT_FRAMES
from gdo.utils.io import atomic_open

from . import formats as F
from .formats.common import RowReject, rewrite_row  # noqa: F401  (rewrite_row: public here too)


def _iter_needed_jsonl(path: str, needed: np.ndarray, chunk_bytes: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield (line, raw bytes) for the sorted 1-based line numbers ``needed`` of a JSONL file.

    The file is memory-mapped and newlines are located with ``mmap.find`` (no copy of the file, no
    decoding); only the needed lines are sliced out. Lines are numbered exactly as
    ``gdo.pool.formats.iter_jsonl`` numbers them (a UTF-8 byte order mark at the start is skipped).
    ``chunk_bytes`` is accepted for compatibility and ignored. Needed lines past the end of the file
    are not yielded.
    """
    needed = np.asarray(needed, np.int64)
    if not len(needed):
        return
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            find = m.find
            pos = 3 if m[:3] == b"\xef\xbb\xbf" else 0
            ln = 1
            for want in needed.tolist():
                while ln < want:
                    j = find(b"\n", pos)
                    if j < 0:
                        return
                    pos = j + 1
                    ln += 1
                if pos >= size:
                    return
                j = find(b"\n", pos)
                end = size if j < 0 else j
                yield ln, m[pos:end]
                if j < 0:
                    return
                pos = j + 1
                ln += 1


def write_rows(candidates: pa.Table, uids: Iterable[str], out_path: str | os.PathLike, *,
               fmt: str | None = None, frames: int | None = DEFAULT_FRAMES) -> int:
    """Write the pool rows of the chosen ``uids`` with only the chosen turns, as JSONL, atomically.

    Args:
        candidates: the candidates table (CANDIDATE_SCHEMA; needs uid, source_file, file_index,
            line, format, user_msg, asst_msg).
        uids: chosen uids (any order; unknown uids are ignored).
        out_path: output JSONL file (written atomically).
        fmt: force the row format used to re-parse the rows (default: the ``format`` column).
        frames: T; frame lists longer than T are written sampled to T frames with the method's
            index rule (GDO_METHOD.md section 2, as the release writes its subsets); None keeps
            every frame.

    Returns:
        Number of rows written.

    Raises:
        FileNotFoundError: a source pool file is gone. ValueError: a source row no longer parses
        the way it did at ingest (the pool changed since).
    """
    uid_arr = pa.array(list(uids) if not isinstance(uids, (pa.Array, pa.ChunkedArray)) else uids, pa.string())
    mask = np.asarray(pc.is_in(candidates.column("uid"), value_set=uid_arr), dtype=bool)
    return write_row_sets(candidates, [(np.flatnonzero(mask), out_path)], fmt=fmt, frames=frames)[0]


def write_row_sets(candidates: pa.Table, sets: Sequence[tuple[Any, str | os.PathLike]], *,
                   fmt: str | None = None, frames: int | None = DEFAULT_FRAMES) -> list[int]:
    """Write several row subsets (e.g. the GDO subset and its baseline) in ONE pass over the pool files.

    Each output is exactly what :func:`write_rows` writes for the same candidates: the pool rows
    holding a chosen candidate, with only the chosen turns, in pool order (file argument order,
    then line), one JSON object per line, written atomically. A row whose every message is a chosen
    pair (no system message, no rejected turn) and no frame list longer than ``frames`` is copied
    verbatim from the pool file; other rows are rewritten by their format (``RowFormat.rewrite``)
    and serialised with orjson. A row needed by several outputs is read and decoded once.

    Args:
        candidates: the candidates table (needs source_file, file_index, line, format, user_msg, asst_msg).
        sets: ``(rows, out_path)`` per output; ``rows`` are integer row indices into ``candidates``
            (any order; duplicates are ignored).
        fmt: force the row format used to re-parse the rows (default: the ``format`` column).
        frames: T: frame lists are written sampled to at most T frames (see :func:`write_rows`).

    Returns:
        Number of rows written per output, in the order of ``sets``.

    Raises:
        FileNotFoundError: a source pool file is gone. ValueError: a source row no longer parses
        the way it did at ingest (the pool changed since); an index out of range.
    """
    n_sets = len(sets)
    N = candidates.num_rows
    idx_parts, set_parts = [], []
    for j, (rows, _) in enumerate(sets):
        r = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        if r.size and (r[0] < 0 or r[-1] >= N):
            raise ValueError(f"row index out of range for a table of {N} candidates")
        idx_parts.append(r)
        set_parts.append(np.full(r.size, j, dtype=np.int64))
    idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    sid = np.concatenate(set_parts) if set_parts else np.zeros(0, np.int64)
    counts = [0] * n_sets
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(atomic_open(p, "wb")) for _, p in sets]
        if not idx.size:
            return counts
        take = pa.array(idx)
        fi = np.asarray(candidates.column("file_index").take(take), dtype=np.int64)
        line = np.asarray(candidates.column("line").take(take), dtype=np.int64)
        um = np.asarray(candidates.column("user_msg").take(take), dtype=np.int64)
        am = np.asarray(candidates.column("asst_msg").take(take), dtype=np.int64)
        # by file, line, output, then turn pair (the kept pairs of a row in message order)
        order = np.lexsort((am, um, sid, line, fi))
        idx, fi, line, um, am, sid = idx[order], fi[order], line[order], um[order], am[order], sid[order]
        files = candidates.column("source_file")
        fmts = candidates.column("format")
        # group boundaries: (file, line, output) groups, and (file, line) rows
        new_grp = np.r_[True, (fi[1:] != fi[:-1]) | (line[1:] != line[:-1]) | (sid[1:] != sid[:-1])]
        g_start = np.flatnonzero(new_grp)
        g_end = np.r_[g_start[1:], fi.size]
        g_fi, g_line, g_sid = fi[g_start], line[g_start], sid[g_start]
        f_bounds = np.flatnonzero(np.r_[True, g_fi[1:] != g_fi[:-1]])
        f_ends = np.r_[f_bounds[1:], g_start.size]
        um_l, am_l = um.tolist(), am.tolist()
        bufs: list[list[bytes]] = [[] for _ in range(n_sets)]
        sizes = [0] * n_sets
        for fs, fe in zip(f_bounds.tolist(), f_ends.tolist()):
            first_row = int(idx[g_start[fs]])
            path = files[first_row].as_py()
            rfmt = fmt or fmts[first_row].as_py()
            lines_g = g_line[fs:fe]
            uniq = np.unique(lines_g)
            gl, gs, gst, gen = lines_g.tolist(), g_sid[fs:fe].tolist(), g_start[fs:fe].tolist(), g_end[fs:fe].tolist()
            k = 0
            n_g = fe - fs
            for ln, raw, rec in _records(path, uniq):
                if k < n_g and gl[k] < ln:
                    raise ValueError(f"{path}:{gl[k]}: row not found; the pool changed since ingest")
                dec = _Decoded(path, ln, raw, rec, rfmt, frames)
                while k < n_g and gl[k] == ln:
                    s, a, b = gs[k], gst[k], gen[k]
                    kept = list(zip(um_l[a:b], am_l[a:b]))
                    data = dec.row_bytes(kept)
                    bufs[s].append(data)
                    sizes[s] += len(data)
                    counts[s] += 1
                    if sizes[s] >= _FLUSH_BYTES:
                        outs[s].write(b"".join(bufs[s]))
                        bufs[s].clear()
                        sizes[s] = 0
                    k += 1
            if k < n_g:
                raise ValueError(f"{path}:{gl[k]}: row not found; the pool changed since ingest")
        for s in range(n_sets):
            if bufs[s]:
                outs[s].write(b"".join(bufs[s]))
    return counts


_FLUSH_BYTES = 8 << 20


class _Decoded:
    """One source row, decoded at most once, rendered for one or more kept-pair lists."""

    __slots__ = ("path", "ln", "raw", "rec", "fmt", "frames")

    def __init__(self, path: str, ln: int, raw: bytes | None, rec: Any, fmt: str, frames: int | None = None) -> None:
        self.path, self.ln, self.raw, self.rec, self.fmt, self.frames = path, ln, raw, rec, fmt, frames

    def _record(self) -> Any:
        if self.rec is None:
            try:
                self.rec = orjson.loads(self.raw)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{self.path}:{self.ln}: row no longer parses ({e}); the pool changed since ingest") from None
        return self.rec

    def row_bytes(self, kept: list[tuple[int, int]]) -> bytes:
        """The output line for ``kept`` (sorted (user, assistant) message pairs)."""
        rec = self._record()
        if self.raw is not None and _all_messages_kept(rec, kept):
            # every message is a kept pair, in order: the row is unchanged -> its own bytes, unless a
            # frame list must be sampled to T frames
            if self.frames is None or F.for_row(rec, F.get_format(self.fmt)).sample_frames(rec, self.frames) is None:
                return self.raw.rstrip(b"\r") + b"\n"
        return _rewrite_bytes(self.path, self.ln, rec, self.fmt, kept, self.frames)


def _all_messages_kept(rec: Any, kept: list[tuple[int, int]]) -> bool:
    msgs = rec.get("messages") if isinstance(rec, dict) else None
    if msgs is None and isinstance(rec, dict):
        msgs = rec.get("conversations")
    return (isinstance(msgs, list) and len(msgs) == 2 * len(kept)
            and all(u == 2 * k and a == 2 * k + 1 for k, (u, a) in enumerate(kept)))


def _rewrite_bytes(path: str, ln: int, rec: Any, fmt: str, kept: list[tuple[int, int]],
                   frames: int | None = None) -> bytes:
    try:
        new = F.for_row(rec, F.get_format(fmt)).rewrite(rec, kept, frames)
    except RowReject as e:
        raise ValueError(f"{path}:{ln}: row no longer parses ({e.reason}: {e.detail}); the pool changed") from None
    return orjson.dumps(new, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


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


def _row_bytes(path: str, ln: int, raw: bytes | None, rec: Any, fmt: str, kept: list[tuple[int, int]],
               frames: int | None = DEFAULT_FRAMES) -> bytes:
    """The output line of one source row for the kept (user, assistant) pairs (any order)."""
    return _Decoded(path, ln, raw, rec, fmt, frames).row_bytes(sorted(kept))


__all__ = ["write_rows", "write_row_sets", "rewrite_row"]
