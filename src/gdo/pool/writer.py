"""Write chosen candidates back as pool rows, in each row's own format, with only the chosen turns.

For every row holding at least one chosen uid, the original record is re-read from its pool file
(JSONL files are memory-mapped, newlines found with ``mmap.find`` and only the needed lines decoded;
:func:`write_row_sets` writes several outputs, e.g. subset and baseline, in one pass) and written with:

- every system message kept, and only the chosen (user, assistant) message pairs;
- the media the kept turns refer to, so the ``<image>``/``<video>`` token count still matches the
  media lists. A row without tokens keeps all its media. When a kept turn relied on media shown
  in an earlier, dropped turn (positional tokens), the token (or, in content lists, the media part)
  is put at the start of the kept user message so the sample still shows it.

A row whose messages are exactly the chosen pairs is copied byte for byte (its line, less a
trailing ``\r``); any other row is rewritten and serialised with orjson. Rows of the common shape
(user/assistant string messages, tokens in at most one user message) are rewritten without the
general ``parse_row`` (:func:`_simple_row`, same result, checked in tests/test_writer_sets.py).

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

from gdo.utils.io import atomic_open

from . import formats as F
from .candidates import (ASSISTANT_ROLES, TOKEN_RE, USER_ROLES, Item, Pair, Row, RowReject, _classify,
                         media_fields, parse_row)


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


def _simple_row(rec: Any, fmt: str, kept: list[tuple[int, int]]) -> Row | None:
    """A :class:`Row` equivalent, for :func:`rewrite_row` and the pairs ``kept``, to ``parse_row(rec, fmt)``,
    built without validating the media; None when the row is not of the common shape handled here.

    Handled: a dict row whose messages are all objects with a user/assistant role and string text
    (no system message, no content lists), whose ``<image>``/``<video>`` tokens (if any) are all in
    one user message (non-positional: every pair refers to all the row's media), with row-level
    media either a LLaVA-Video frame list (more than one path) or image/video paths given as
    strings. Only the fields :func:`rewrite_row` reads are filled: ``conv_field``, ``items``,
    ``turn_items``, ``item_token``, ``inline`` and the kept pairs (``items=None``).
    """
    if not isinstance(rec, dict):
        return None
    conv_field = "messages"
    msgs = rec.get("messages")
    if msgs is None:
        msgs = rec.get("conversations")
        conv_field = "conversations" if "conversations" in rec else conv_field
    if not isinstance(msgs, list) or not msgs:
        return None
    tok_msg = -1
    toks: list[str] = []
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            return None
        role = m.get("role")
        if role is None:
            role = m.get("from")
        if not isinstance(role, str):
            return None
        role = role.lower()
        c = m.get("content")
        if c is None:
            c = m.get("value")
        if not isinstance(c, str):
            return None
        if role in USER_ROLES:
            if "<" in c:
                t = TOKEN_RE.findall(c)
                if t:
                    if tok_msg >= 0:
                        return None  # positional tokens: general path
                    tok_msg, toks = i, t
        elif role not in ASSISTANT_ROLES:
            return None  # system or unknown role: general path
    pairs = [Pair(k, u, a, "", "", None) for k, (u, a) in enumerate(kept)]
    if tok_msg < 0:
        return Row("", "", [], pairs, conv_field=conv_field)
    # row-level media (as gdo.pool.candidates.row_items, without validating each path)
    images, ifld, videos, vfld = media_fields(rec)
    items: list[Item] = []
    if fmt == "llava_video" or "video_id" in rec:
        if images is None or (isinstance(images, str) and not images):
            ilist: list = []
        elif isinstance(images, list) and len(images) > 1:
            ilist = images
        else:
            return None
        if ilist:
            items.append(Item("frames", ilist, "any", ifld))
    else:
        ilist = [images] if isinstance(images, str) and images else [] if images is None or images == "" else images
        if not isinstance(ilist, list):
            return None
        for p in ilist:
            if type(p) is not str or not p:
                return None
            items.append(Item(_classify(p, "image"), p, "image", ifld))
    if not items or items[0].slot != "any":
        vlist = [videos] if isinstance(videos, str) and videos else [] if videos is None or videos == "" else videos
        if not isinstance(vlist, list):
            return None
        for v in vlist:
            if type(v) is not str or not v:
                return None
            items.append(Item(_classify(v, "video"), v, "video", vfld))
    # token -> item assignment (as parse_row)
    n_img_tok = sum(1 for t in toks if t == "<image>")
    n_vid_tok = len(toks) - n_img_tok
    img_items = [j for j, it in enumerate(items) if it.slot == "image"]
    vid_items = [j for j, it in enumerate(items) if it.slot == "video"]
    one_field = len({it.slot for it in items}) <= 1
    if n_img_tok == len(img_items) and n_vid_tok == len(vid_items) and not any(it.slot == "any" for it in items):
        ii, vi = iter(img_items), iter(vid_items)
        assign = [next(ii) if t == "<image>" else next(vi) for t in toks]
    elif (one_field and len(toks) == len(items)
          and (n_vid_tok == 0 or all(it.kind != "image" for it in items))):
        assign = list(range(len(toks)))
    else:
        return None  # media_token_mismatch: the general path reports it
    is_video = any(it.kind != "image" for it in items)
    if len(items) > 1 and is_video:
        return None  # mixed_media: the general path reports it
    return Row("", "", items, pairs, conv_field=conv_field, turn_items={tok_msg: assign},
               item_token={j: t for j, t in zip(assign, toks)})


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
    mask = np.asarray(pc.is_in(candidates.column("uid"), value_set=uid_arr), dtype=bool)
    return write_row_sets(candidates, [(np.flatnonzero(mask), out_path)], fmt=fmt)[0]


def write_row_sets(candidates: pa.Table, sets: Sequence[tuple[Any, str | os.PathLike]], *,
                   fmt: str | None = None) -> list[int]:
    """Write several row subsets (e.g. the GDO subset and its baseline) in ONE pass over the pool files.

    Each output is exactly what :func:`write_rows` writes for the same candidates: the pool rows
    holding a chosen candidate, with only the chosen turns, in pool order (file argument order,
    then line), one JSON object per line, written atomically. A row whose every message is a chosen
    pair (no system message, no rejected turn) is copied verbatim from the pool file; other rows are
    rewritten (:func:`rewrite_row`) and serialised with orjson. A row needed by several outputs is
    read and decoded once.

    Args:
        candidates: the candidates table (needs source_file, file_index, line, format, user_msg, asst_msg).
        sets: ``(rows, out_path)`` per output; ``rows`` are integer row indices into ``candidates``
            (any order; duplicates are ignored).
        fmt: force the row format used to re-parse the rows (default: the ``format`` column).

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
                dec = _Decoded(path, ln, raw, rec, rfmt)
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

    __slots__ = ("path", "ln", "raw", "rec", "fmt", "_n_msgs")

    def __init__(self, path: str, ln: int, raw: bytes | None, rec: Any, fmt: str) -> None:
        self.path, self.ln, self.raw, self.rec, self.fmt = path, ln, raw, rec, fmt
        self._n_msgs = -2  # not computed

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
            # every message is a kept pair, in order: the row is unchanged -> its own bytes
            return self.raw.rstrip(b"\r") + b"\n"
        return _rewrite_bytes(self.path, self.ln, rec, self.fmt, kept)


def _all_messages_kept(rec: Any, kept: list[tuple[int, int]]) -> bool:
    msgs = rec.get("messages") if isinstance(rec, dict) else None
    if msgs is None and isinstance(rec, dict):
        msgs = rec.get("conversations")
    return (isinstance(msgs, list) and len(msgs) == 2 * len(kept)
            and all(u == 2 * k and a == 2 * k + 1 for k, (u, a) in enumerate(kept)))


def _rewrite_bytes(path: str, ln: int, rec: Any, fmt: str, kept: list[tuple[int, int]]) -> bytes:
    row = _simple_row(rec, fmt, kept)
    if row is None:
        try:
            row = parse_row(rec, fmt)
        except RowReject as e:
            raise ValueError(f"{path}:{ln}: row no longer parses ({e.reason}: {e.detail}); the pool changed") from None
    new = rewrite_row(rec, row, kept)
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


def _row_bytes(path: str, ln: int, raw: bytes | None, rec: Any, fmt: str, kept: list[tuple[int, int]]) -> bytes:
    """The output line of one source row for the kept (user, assistant) pairs (any order)."""
    return _Decoded(path, ln, raw, rec, fmt).row_bytes(sorted(kept))


__all__ = ["write_rows", "write_row_sets", "rewrite_row"]
