"""Pool ingestion: pool files -> candidates.parquet, rejects.jsonl, ingest.json (docs/DESIGN.md).

Every input row ends up either with at least one candidate or as exactly one row-level reject, so
per file ``rows_read == rows_with_candidates + rows_rejected``. Pairs dropped inside a row that
still has candidates are candidate-level rejects. A file that cannot be read at all (unknown
format, JSON array that does not parse) is a file-level reject (``level: "file"``) and reads 0 rows.

Media paths resolve against ``media_root`` when given (and are then confined to it: see
``gdo.media.resolve_media``), else against the pool file's folder. Note that LLaMA-Factory's
``v1_multimodal_demo.jsonl`` writes paths relative to the project root (``data/mllm_demo_data/1.jpg``)
so, read from its own folder, its media are ``missing_media``; pass ``media_root`` = the folder above.
Without probing, confinement is lexical only (``../`` and absolute paths); symlinks are followed
(``realpath``) only when media are probed, since ``probe_media=False`` touches no media file.

Reject reasons. Row level: ``malformed_json``, ``blank_line`` (an empty/whitespace line followed by
more rows; blank lines at the end of a file are not rows: counted in ``blank_lines``), ``not_utf8``
(with the byte offset), ``line_too_long`` (> 8 MiB), ``wrong_type``, ``role_conflict``,
``no_messages`` (missing, null or empty conversation), ``assistant_first``, ``no_pairs``,
``media_in_answer``, ``empty_question`` / ``empty_answer`` (every pair empty),
``media_token_mismatch``, ``mixed_media``, ``unsupported_media`` (embedded bytes without a path),
``unsupported_part``, ``missing_media``, ``unreadable_media``, ``corrupt_video``, ``not_a_video``,
``media_outside_root``, ``remote_media``, ``inline_media``, ``windows_path``, ``aspect_ratio`` (see
``gdo.media``; any other exception while probing a file is ``unreadable_media`` naming the exception,
never a traceback). Candidate level (the row keeps other candidates): ``empty_question``,
``empty_answer``, ``unpaired_turn``, ``mixed_media``. File level: ``unknown_format``,
``unreadable_file``, ``not_utf8`` (no sampled line of a JSONL file is UTF-8, or a JSON array),
``malformed_json`` for a JSON array that does not parse. Duplicate ids are not rejects: the later
uids get ``#2``, ``#3``... in pool order, counted in ``ingest.json`` as ``uid_collisions`` and listed
as ``duplicate_ids`` (row id with every file and line holding it). Rows with media and no media
token are counted as ``media_tokens_implied`` (see ``gdo.pool.formats.common``).
Row parsing is the formats' (``gdo.pool.formats``); this module orchestrates.

Lean mode (``media_columns=False``, for ``gdo select``, which never opens media): the ``media`` and
``media_raw`` columns are null; every other column, every reject and the stats are the same as in
the default mode (see ``ingest``).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from gdo.schema import CANDIDATE_SCHEMA, DEFAULT_FRAMES, IMAGE_QA, SHORT_VIDEO
from gdo.utils.hashing import stable_hash
from gdo.utils.io import atomic_open, output_dir, write_json_atomic, write_parquet_atomic

from . import formats as F
from .formats.common import Row, RowReject
from gdo.media import (IMAGE_EXTS, VIDEO_EXTS, MediaError, image_header, list_frame_folder, probe_image, probe_video,
                       resolve_media, sample_by_time, sample_indices)

_BATCH = 65536
#: Use the fast path for common row shapes (tests switch it off to check both paths agree).
_FAST_PATH = True


@dataclass
class IngestResult:
    """Result of ``ingest``: ``candidates`` (pa.Table, CANDIDATE_SCHEMA, ordered by pool_pos;
    ``media``/``media_raw`` all null when ingested with ``media_columns=False``), ``rejects`` (list
    of reject dicts, in file/line order), ``stats`` (the ingest.json object)."""

    candidates: pa.Table
    rejects: list[dict]
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- path resolution
class _Resolver:
    """Lexical path resolution against a base folder (fast path for clean relative paths)."""

    def __init__(self, base_dir: str, media_root: str | None, probe: bool) -> None:
        self.base_dir = base_dir
        self.media_root = media_root
        self.base = os.path.normpath(os.path.abspath(media_root if media_root is not None else base_dir))
        self.prefix = self.base.rstrip("/") + "/"
        self.probe = probe

    def one(self, p: str) -> str:
        return os.fspath(resolve_media(p, self.base_dir, self.media_root, check_links=self.probe))

    def many(self, paths: list[str]) -> list[str]:
        if not _clean("\x1f".join(paths)) or not all(paths):
            return [os.fspath(resolve_media(p, self.base_dir, self.media_root, check_links=False)) for p in paths]
        pre = self.prefix
        return [pre + p for p in paths]


def _clean(j: str) -> bool:
    """True when every \\x1f-separated path in ``j`` is relative and normalised, so that
    ``prefix + path == os.path.normpath(os.path.join(base, path))``. Conservative: a path with a
    segment starting with '.' (also hidden files) is sent to the general resolver."""
    return not ("/." in j or "\x1f." in j or "//" in j or "\x1f/" in j or "/\x1f" in j or "\x1f\x1f" in j
                or "\\" in j or j[:1] in ("/", ".", "\x1f", "") or j[-1:] in ("/", "\x1f"))


def _prefix_strings(arr: pa.Array, prefix: str) -> pa.Array:
    """``prefix + s`` for every string of a StringArray (Arrow kernel, no Python loop)."""
    import pyarrow.compute as pc

    if len(arr) == 0:
        return pa.array([], pa.string())
    return pc.utf8_replace_slice(arr, start=0, stop=0, replacement=prefix)


def _unclean_mask(arr: pa.Array) -> np.ndarray:
    """Per string of a null-free StringArray: True unless it is a clean relative path (no leading
    '/' or '.', no trailing '/', no '/.' or '//' inside, no backslash, not empty). Vectorised."""
    n = len(arr)
    if n == 0:
        return np.zeros(0, bool)
    offs = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(arr.buffers()[2], np.uint8)[offs[0]:offs[-1]]
    offs = offs - offs[0]
    lens = np.diff(offs)
    bad = lens == 0
    ne = ~bad
    first = data[offs[:-1][ne]]
    last = data[offs[1:][ne] - 1]
    bad[ne] = (first == 47) | (first == 46) | (last == 47)
    slash = data[:-1] == 47
    pos = np.flatnonzero(slash & ((data[1:] == 46) | (data[1:] == 47)))
    pos = np.concatenate([pos, np.flatnonzero(data == 92)])
    if len(pos):
        sid = np.searchsorted(offs, pos, side="right") - 1
        bad[sid] = True  # a pair spanning two strings starts with '/' at a string's end: already bad
    return bad


def _take_lists(lists: pa.ListArray, idx: np.ndarray) -> pa.ListArray:
    """``lists.take(idx)`` (one row of media per candidate; a batch stays far below 2 GiB of text)."""
    return lists.take(pa.array(idx))


# --------------------------------------------------------------------------- per-file worker
class _Builder:
    """Accumulates candidate columns and rejects for one file (or one byte range of it)."""

    def __init__(self, file: str, file_index: int, fmt: str, resolver: _Resolver, frames: int,
                 probe: bool, probe_cache: dict, lean: bool = False) -> None:
        self.lean = lean  # media_columns=False: no media/media_raw lists (see ``ingest``)
        self.file = file
        self.file_index = file_index
        self.fmt = fmt
        self.r = resolver
        self.T = frames
        self.probe = probe
        self.probe_cache = probe_cache
        self._vk_hash = hashlib.blake2b(digest_size=8)  # video_key of frame lists: stable_hash(prefix, ...)
        self._vk_hash.update(resolver.prefix.encode("utf-8") + b"\x1f")
        self.batches: list[pa.RecordBatch] = []
        self.rejects: list[dict] = []
        self.rows_read = 0
        self.rows_ok = 0
        self.n_cands = 0
        self.cand_rejects = 0
        self.blank_lines = 0  # trailing blank lines (not rows)
        self.implied = 0  # rows with media and no media token (tokens implied before the first question)
        self.by_reason: Counter = Counter()
        self._reset()

    #: Per-group columns. A group is a run of consecutive candidates of one row that share every
    #: column but question/answer/turn/user_msg/asst_msg: the fast path adds one group per row,
    #: the general path one group per kept pair. Candidate k of a group (k = 0, 1, ...) has
    #: turn = turn0 + k, user_msg = user0 + 2k, asst_msg = asst0 + 2k (only the fast path makes
    #: groups of more than one candidate, and its rows alternate user/assistant strictly).
    _GROUP_COLS = ("k", "row_id", "line", "video", "kind", "vkey", "nf", "nat", "fps", "dur", "ds", "midx",
                   "turn0", "user0", "asst0", "minfo")

    def _reset(self) -> None:
        self.groups: list[tuple] = []  # one tuple per group, fields in _GROUP_COLS order
        self.q: list[str] = []  # per candidate: question, answer
        self.a: list[str] = []
        self.m_raw: list[list[str]] = []
        self.m_res: list[list[str]] = []

    def reject(self, line: int | None, reason: str, detail: str, level: str = "row", row_id: str | None = None,
               uid: str | None = None) -> None:
        self.rejects.append({"file": self.file, "line": line, "row_id": row_id, "uid": uid, "level": level,
                             "reason": reason, "detail": detail})
        self.by_reason[reason] += 1

    def _probe(self, path: str, kind: str):
        """VideoInfo / ImageInfo of a file, cached by (file, kind): one file may be an image in one
        row and a video in another. Any failure is a MediaError (cached too)."""
        key = (path, kind)
        info = self.probe_cache.get(key)
        if info is None:
            try:
                info = probe_video(path) if kind == "video" else probe_image(path)
            except MediaError as e:
                info = e
            except Exception as e:  # noqa: BLE001 - a library error on a strange file: a reject, not a traceback
                info = MediaError("unreadable_media", f"{path}: {type(e).__name__}: {e}")
            self.probe_cache[key] = info
        if isinstance(info, MediaError):
            raise info
        return info

    def _frames_info(self, paths: list[str]):
        """Size and geometry flags of a frame list from its first frame's header (no decoding;
        the frames are decoded by profile). Raises MediaError (``aspect_ratio``, ...)."""
        try:
            return image_header(paths[0])
        except MediaError:
            raise
        except Exception as e:  # noqa: BLE001
            raise MediaError("unreadable_media", f"{paths[0]}: {type(e).__name__}: {e}") from None

    # media of one item -> (raw list, resolved list, native, fps, duration, video_key, probe info)
    def _item_media(self, it) -> tuple[list[str], list[str], Any, Any, Any, str | None, Any]:
        r = self.r
        if it.kind == "frames":
            if isinstance(it.value, list):
                raw = it.value
                j = "\x1f".join(raw)
                if self.lean:  # the checks of ``many`` (media_outside_root, first bad path first), no list
                    if r.media_root is not None and (not _clean(j) or not all(raw)):
                        for p in raw:
                            resolve_media(p, r.base_dir, r.media_root, check_links=False)
                    return None, None, len(raw), None, None, "frames:" + stable_hash(r.prefix, j), None
                res = r.many(raw)
                if self.probe:
                    if r.media_root is not None:
                        for i in sample_indices(len(res), self.T):
                            r.one(raw[i])  # symlink check on the frames that will be read
                    for i in sample_indices(len(res), self.T):
                        if not os.path.isfile(res[i]):
                            raise MediaError("missing_media", f"frame {res[i]} does not exist")
                key = "frames:" + stable_hash(r.prefix, j)
                return raw, res, len(res), None, None, key, self._frames_info(res) if self.probe else None
            raw = [it.value]
            folder = r.one(it.value)
            if self.probe:
                res = list_frame_folder(folder)
                return raw, res, len(res), None, None, folder, self._frames_info(res)
            return raw, [folder], None, None, None, folder, None
        raw = [it.value]
        res_p = r.one(it.value)
        if it.kind == "video":
            if self.probe:
                info = self._probe(res_p, "video")
                return raw, [res_p], info.native_frames, info.fps, info.duration_s, res_p, info
            return raw, [res_p], None, None, None, res_p, None
        info = self._probe(res_p, "image") if self.probe else None
        return raw, [res_p], None, None, None, None, info

    def add_row(self, line: int, row: Row) -> None:
        items = row.items
        media = [self._item_media(it) for it in items]  # may raise MediaError
        is_video = row.is_video
        all_idx: int | None = None
        T = self.T
        lean = self.lean
        for p in row.pairs:
            sel = p.items
            if lean:
                sel_items = range(len(items)) if sel is None else sel
                midx = -1
            elif sel is None:
                sel_items = range(len(items))
                if all_idx is None:
                    all_idx = self._register(media, sel_items)
                midx = all_idx
            else:
                sel_items = sel
                midx = self._register(media, sel_items)
            n_sel = len(sel_items)
            minfo = None
            if n_sel == 0:
                kind, vkey, nf, nat, fps, dur = "none", None, 0, None, None, None
            else:
                first = sel_items[0]
                it = items[first]
                if it.kind == "image":
                    kind, vkey, nf, nat, fps, dur = "image", None, n_sel, None, None, None
                    infos = [media[j][6] for j in sel_items if media[j][6] is not None]
                    if infos:
                        minfo = (infos[0], sorted({f for inf in infos for f in inf.flags}))
                else:
                    _, _, nat, fps, dur, vkey, info = media[first]
                    kind = it.kind
                    nf = None if nat is None else min(nat, T)
                    if info is not None:
                        minfo = (info, list(info.flags))
            self.groups.append((1, row.row_id, line, is_video, kind, vkey, nf, nat, fps, dur, row.data_source, midx,
                                p.k, p.user_msg, p.asst_msg, minfo))
            self.q.append(p.question)
            self.a.append(p.answer)
        self.n_cands += len(row.pairs)
        self.rows_ok += 1
        if items and not row.turn_items and not row.inline:
            self.implied += 1
        for reason, detail, u, a in row.cand_rejects:
            self.reject(line, reason, detail, level="candidate", row_id=row.row_id)
            self.cand_rejects += 1
        if len(self.q) >= _BATCH:
            self.flush()

    def _register(self, media, sel_items) -> int:
        if len(sel_items) == 1:
            raw, res = media[sel_items[0]][0], media[sel_items[0]][1]
        else:
            raw, res = [], []
            for j in sel_items:
                raw.extend(media[j][0])
                res.extend(media[j][1])
        self.m_raw.append(raw)
        self.m_res.append(res)
        return len(self.m_raw) - 1

    def _resolve_lists(self, raw_lists: pa.ListArray) -> pa.ListArray:
        """Resolved lists for ``m_res`` entries that are None (= resolve each raw path), vectorised:
        ``prefix + raw`` in Arrow, then the few paths that are not clean relative paths, and the
        entries resolved in Python (general path), are patched in with one take."""
        vals = raw_lists.values
        n = len(vals)
        pref = _prefix_strings(vals, self.r.prefix)
        offs = raw_lists.offsets.to_numpy()
        patch_pos: list[np.ndarray] = []
        patch_vals: list[str] = []
        for i, res in enumerate(self.m_res):
            if res is not None:
                patch_pos.append(np.arange(offs[i], offs[i + 1]))
                patch_vals.extend(res)
        bad = np.flatnonzero(_unclean_mask(vals))
        if len(bad):
            explicit = np.zeros(n, bool)
            for pp in patch_pos:
                explicit[pp] = True
            bad = bad[~explicit[bad]]
            raw_bad = vals.take(pa.array(bad)).to_pylist()
            patch_pos.append(bad)
            patch_vals.extend(self.r.one(p) for p in raw_bad)
        if not patch_vals:
            return pa.ListArray.from_arrays(raw_lists.offsets, pref)
        idx = np.arange(n, dtype=np.int64)
        idx[np.concatenate(patch_pos)] = n + np.arange(len(patch_vals))
        allv = pa.concat_arrays([pref, pa.array(patch_vals, pa.string())])
        return pa.ListArray.from_arrays(raw_lists.offsets, allv.take(pa.array(idx)))

    def flush(self) -> None:
        """Turn the pending groups/candidates into one CANDIDATE_SCHEMA record batch (vectorised)."""
        n = len(self.q)
        if not n:
            return
        g = dict(zip(self._GROUP_COLS, zip(*self.groups)))
        k = np.asarray(g["k"], np.int64)
        lt = pa.list_(pa.string())
        if len(k) == n:  # every group has one candidate
            take = None
            off = 0
        else:
            take = np.repeat(np.arange(len(k), dtype=np.int64), k)
            off = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(k) - k, k)
            take_arr = pa.array(take)

        def col(name: str, typ: pa.DataType) -> pa.Array:
            arr = pa.array(g[name], typ)
            return arr if take is None else arr.take(take_arr)

        def icol(name: str, typ: pa.DataType, step: int) -> pa.Array:
            v = np.asarray(g[name], np.int64)
            v = v if take is None else v[take] + step * off
            return pa.array(v.astype(typ.to_pandas_dtype()), typ)

        video = np.asarray(g["video"], bool)
        video = pa.array(video if take is None else video[take])
        row_id = col("row_id", pa.string())
        turn = icol("turn0", pa.int32(), 1)
        uid = pc.binary_join_element_wise(pc.if_else(video, "vv::", "ov::"), row_id, "::t",
                                          pc.cast(turn, pa.string()), "")
        if self.lean:
            media = media_raw = pa.nulls(n, lt)
        else:
            idx = np.asarray(g["midx"], np.int64)
            if take is not None:
                idx = idx[take]
            raw_lists = pa.array(self.m_raw, lt)
            if any(r is None for r in self.m_res):
                res_lists = self._resolve_lists(raw_lists)
            else:
                res_lists = pa.array(self.m_res, lt)
            media_raw = _take_lists(raw_lists, idx)
            media = _take_lists(res_lists, idx)
        cols = {
            "uid": uid,
            "row_id": row_id,
            "turn": turn,
            "source_file": pa.array([self.file] * n, pa.string()),
            "file_index": pa.array(np.full(n, self.file_index, np.int32)),
            "line": icol("line", pa.int64(), 0),
            "format": pa.array([self.fmt] * n, pa.string()),
            "bucket": pc.if_else(video, SHORT_VIDEO, IMAGE_QA),
            "question": pa.array(self.q, pa.string()),
            "answer": pa.array(self.a, pa.string()),
            "user_msg": icol("user0", pa.int32(), 2),
            "asst_msg": icol("asst0", pa.int32(), 2),
            "media_kind": col("kind", pa.string()),
            "media": media,
            "media_raw": media_raw,
            "video_key": col("vkey", pa.string()),
            "n_frames": col("nf", pa.int32()),
            "native_frames": col("nat", pa.int32()),
            "fps": col("fps", pa.float64()),
            "duration_s": col("dur", pa.float64()),
            "data_source": col("ds", pa.string()),
            "pool_pos": pa.nulls(n, pa.int64()),
        }
        cols.update(self._media_fact_columns(g["minfo"], take))
        self.batches.append(pa.RecordBatch.from_arrays([cols[f.name] for f in CANDIDATE_SCHEMA],
                                                       schema=CANDIDATE_SCHEMA))
        self._reset()

    def _media_fact_columns(self, minfos: tuple, take: np.ndarray | None) -> dict[str, pa.Array]:
        """header_frames, width, height, rotation, sample_times, media_flags of each group's probe
        info (gdo.media.probe; null without probing), repeated per candidate of the group."""
        names = ("header_frames", "width", "height", "rotation", "sample_times", "media_flags")
        n_g = len(minfos)
        if all(m is None for m in minfos):
            out = {c: pa.nulls(n_g, CANDIDATE_SCHEMA.field(c).type) for c in names}
        else:
            vals: dict[str, list] = {c: [None] * n_g for c in names}
            times_of: dict[int, list[float] | None] = {}
            for i, m in enumerate(minfos):
                if m is None:
                    continue
                info, flags = m
                vals["width"][i] = info.width
                vals["height"][i] = info.height
                vals["media_flags"][i] = flags
                if hasattr(info, "native_frames"):  # a video
                    vals["header_frames"][i] = info.header_frames
                    vals["rotation"][i] = info.rotation
                    if info.times is not None:
                        k = id(info)
                        if k not in times_of:
                            times_of[k] = [info.times[j] for j in sample_by_time(info.times, self.T)]
                        vals["sample_times"][i] = times_of[k]
            out = {c: pa.array(vals[c], CANDIDATE_SCHEMA.field(c).type) for c in names}
        if take is not None:
            ta = pa.array(take)
            out = {c: a.take(ta) for c, a in out.items()}
        return out

    # ------------------------------------------------------------------ fast path
    def _fast(self, line: int, rec: dict, fast) -> bool:
        """Record one row found by a format's fast path (``RowFormat.fast``: common shapes, no
        probing) as one group (see ``_GROUP_COLS``). Returns False (nothing recorded) when the
        format declines or a path needs the general resolver (confinement, unclean paths); the
        row then takes the general path. Both paths give identical candidates
        (tests/pool/test_ingest.py, tests/pool/test_format_paths.py)."""
        fr = fast(rec)
        if fr is None:
            return False
        rid, qs, ans, kind, raw, ntok = fr
        pre = self.r.prefix
        res = None
        if kind == "video":
            v = raw[0]
            if not _clean(v) or ":" in v:
                return False  # (a ':' may be a URI or a drive path: the general resolver decides)
            nf = nat = None
            vkey = pre + v
        elif kind == "none":
            res, vkey, nf, nat = [], None, 0, None
        elif kind == "frames":
            try:
                j = "\x1f".join(raw)
            except TypeError:  # a non-string path: the general path rejects it precisely
                return False
            if "\x1f\x1f" in j or j[:1] == "\x1f" or j[-1:] == "\x1f" or ":" in j:
                return False  # empty path (or a URI / drive path): the general path decides
            if self.r.media_root is not None and not _clean(j):
                return False  # confinement checks need the general path
            h = self._vk_hash.copy()  # == stable_hash(pre, j)
            h.update(j.encode("utf-8"))
            vkey = "frames:" + h.hexdigest()
            nat = len(raw)
            nf = nat if nat < self.T else self.T
        else:  # image
            if ":" in raw[0] or (self.r.media_root is not None and not _clean(raw[0])):
                return False
            vkey, nf, nat = None, 1, None
        if self.lean:
            midx = -1
        else:
            self.m_raw.append(raw)
            self.m_res.append(res)
            midx = len(self.m_raw) - 1
        ds = rec.get("data_source")
        if ds is None:
            ds = rec.get("source", "")
        if type(ds) is not str:
            ds = str(ds)
        k = len(qs)
        self.groups.append((k, rid, line, kind == "frames" or kind == "video", kind, vkey, nf, nat, None, None, ds,
                            midx, 0, 0, 1, None))
        q = self.q
        q.extend(qs)
        self.a.extend(ans)
        self.n_cands += k
        self.rows_ok += 1
        if not ntok and kind != "none":
            self.implied += 1
        if len(q) >= _BATCH:
            self.flush()
        return True

    def consume(self, records: Iterable[F.Record]) -> None:
        fmt = F.get_format(self.fmt)
        for_row = F.for_row
        use_fast = not self.probe and _FAST_PATH
        for line, rec, err in records:
            if err is not None:
                if err[0] == F.BLANK_TRAILING:  # blank lines closing the file: not rows
                    self.blank_lines += 1
                    continue
                self.rows_read += 1
                self.reject(line, err[0], err[1])
                continue
            self.rows_read += 1
            rf = for_row(rec, fmt)
            if use_fast and type(rec) is dict and self._fast(line, rec, rf.fast):
                continue
            try:
                row = rf.parse(rec)
            except RowReject as e:
                rid = rec.get("id") if isinstance(rec, dict) else None
                self.reject(line, e.reason, e.detail, row_id=rid if isinstance(rid, str) else None)
                continue
            try:
                try:
                    self.add_row(line, row)
                except MediaError:
                    raise
                except Exception as e:  # noqa: BLE001 - media handling never ends in a traceback
                    raise MediaError("unreadable_media", f"{type(e).__name__}: {e}") from None
            except MediaError as e:
                detail = e.detail
                if e.reason == "missing_media":
                    detail += (f" (relative paths resolve against --media-root {self.r.base}"
                               if self.r.media_root is not None else
                               " (relative paths resolve against the pool file's folder; set --media-root to change)")
                    detail += ")" if self.r.media_root is not None else ""
                self.reject(line, e.reason, detail, row_id=row.row_id)
        self.flush()

    def result(self) -> dict:
        return {"batches": self.batches, "rejects": self.rejects, "rows_read": self.rows_read,
                "rows_ok": self.rows_ok, "candidates": self.n_cands, "cand_rejects": self.cand_rejects,
                "by_reason": dict(self.by_reason), "blank_lines": self.blank_lines,
                "media_tokens_implied": self.implied}


def _run_range(args: tuple) -> dict:
    """Worker: ingest one byte range of a JSONL file; candidates go to an Arrow IPC file in
    ``spill_dir`` (memory-mapped back by the parent, so no big pickle crosses the pipe)."""
    import gc

    gc.disable()
    (path, file_index, fmt, base_dir, media_root, frames, probe, lean, start, end, first_line, spill) = args
    b = _Builder(path, file_index, fmt, _Resolver(base_dir, media_root, probe), frames, probe, {}, lean)
    b.consume(F.iter_jsonl(path, start, end, first_line))
    res = b.result()
    with pa.OSFile(spill, "wb") as sink, pa.ipc.new_file(sink, CANDIDATE_SCHEMA) as w:
        for batch in res["batches"]:
            w.write_batch(batch)
    res["batches"] = spill
    return res


def _spill_root() -> str | None:
    d = "/dev/shm"
    try:
        st = os.statvfs(d)
        if st.f_bavail * st.f_frsize > (4 << 30) and os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    return None


def _load_spill(path: str) -> list[pa.RecordBatch]:
    with pa.memory_map(path) as src:
        t = pa.ipc.open_file(src).read_all()
    os.unlink(path)  # the mapping stays valid until the table is dropped
    return t.to_batches()


# --------------------------------------------------------------------------- public API
def ingest(paths: list[str | Path], *, media_root: str | Path | None = None, fmt: str | None = None,
           frames: int = DEFAULT_FRAMES, probe_media: bool = True, workers: int = 1,
           progress: bool = False, media_columns: bool = True) -> IngestResult:
    """Read pool files into candidates (one per kept (user, assistant) pair; GDO_METHOD.md section 2).

    Args:
        paths: pool files (JSONL, JSON array, Parquet) or saved HF dataset folders, in pool order.
        media_root: folder relative media paths resolve against, and to which media are confined
            (``media_outside_root``); default None = each pool file's own folder, no confinement.
        fmt: force a row format (one of ``gdo.pool.formats.FORMATS``) instead of auto-detection.
        frames: T, frames a video is sampled to (``n_frames = min(native, T)``).
        probe_media: True: probe video headers (PyAV; packets counted when the header has no
            frame count), check images exist and their header is readable (PIL), list frame
            folders, and check that the frames of a frame list that sampling will read exist
            (missing/corrupt media -> row reject). False: open no media file at all; frame lists
            still give native_frames = len(list), n_frames = min(len, T); video files and frame
            folders give null native_frames/n_frames/fps/duration_s.
        workers: processes for large JSONL files (split in byte ranges); output is identical for
            any value.
        progress: print a line per file to stderr.
        media_columns: True (default): fill ``media`` (resolved paths) and ``media_raw`` (paths as
            written). False, "lean" mode, for consumers that never open media (``gdo select``):
            ``media`` and ``media_raw`` are null in every row (the schema stays CANDIDATE_SCHEMA),
            which saves building one list per candidate (frame lists of 32-180 paths, twice).
            Every other column, the rejects and the stats are identical to the default mode: the
            same row checks run (media-token mismatch, mixed media, empty paths, and the lexical
            ``media_outside_root`` confinement of ``../`` and absolute paths when ``media_root`` is
            given), ``video_key`` is the same stable hash, and frame lists still give
            ``native_frames = len(list)``. Only ``stats['media_columns']`` differs. Requires
            ``probe_media=False``.

    Returns:
        IngestResult (candidates ordered by pool_pos; uids made unique with ``#2``, ``#3``...
        suffixes in pool order, counted in ``stats['uid_collisions']``).

    Raises:
        ValueError: unknown ``fmt``; ``media_columns=False`` with ``probe_media=True``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if fmt is not None and fmt not in F.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(F.FORMATS)}")
    if not media_columns and probe_media:
        raise ValueError("media_columns=False (lean mode) requires probe_media=False: probing needs the media lists")
    import gc

    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of lists/strings are created and kept: cyclic GC passes would rescan them
    try:
        return _ingest(paths, media_root=media_root, fmt=fmt, frames=frames, probe_media=probe_media,
                       workers=workers, progress=progress, lean=not media_columns)
    finally:
        if gc_was_enabled:
            gc.enable()


def _ingest(paths, *, media_root, fmt, frames, probe_media, workers, progress, lean) -> IngestResult:
    mroot = os.path.abspath(os.fspath(media_root)) if media_root is not None else None
    batches: list[pa.RecordBatch] = []
    rejects: list[dict] = []
    files_stats: dict[str, dict] = {}
    probe_cache: dict = {}
    for fi, p in enumerate(paths):
        path = os.path.abspath(os.fspath(p))
        st = {"format": None, "rows_read": 0, "rows_with_candidates": 0, "rows_rejected": 0, "candidates": 0,
              "candidate_rejects": 0, "rejects_by_reason": {}, "file_index": fi, "blank_lines": 0,
              "media_tokens_implied": 0}
        key = path if path not in files_stats else f"{path}#{fi}"
        files_stats[key] = st
        try:
            container = F.detect_container(path)
            errs: list = []
            rfmt = fmt or F.detect_row_format(F.sample_records(path, container, errors=errs))
            if rfmt is None:
                bad = next((e for e in errs if e[1][0] == "not_utf8"), None)
                if bad is not None:  # say why no record could be read, with where
                    raise F.FormatError("not_utf8", f"line {bad[0]}: {bad[1][1]}")
                raise F.FormatError("unknown_format", "no record has 'messages' or 'conversations'")
        except F.FormatError as e:
            rejects.append({"file": path, "line": None, "row_id": None, "uid": None, "level": "file",
                            "reason": e.reason, "detail": e.detail})
            st["format"] = "unknown"
            st["file_reject"] = e.reason
            st["rejects_by_reason"] = {e.reason: 1}
            continue
        st["format"] = rfmt
        st["container"] = container
        base_dir = path if container == "hf_dataset" and os.path.isdir(path) else os.path.dirname(path)
        results: list[dict] = []
        try:
            ranges = F.jsonl_ranges(path, workers) if container == "jsonl" and workers > 1 else []
            if len(ranges) > 1:
                import multiprocessing as mp
                import shutil
                import tempfile

                spill_dir = tempfile.mkdtemp(prefix="gdo_ingest_", dir=_spill_root())
                try:
                    args = [(path, fi, rfmt, base_dir, mroot, frames, probe_media, lean, a, b, ln,
                             os.path.join(spill_dir, f"{k}.arrow")) for k, (a, b, ln) in enumerate(ranges)]
                    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
                    with ctx.Pool(min(workers, len(args))) as pool:
                        results = pool.map(_run_range, args, chunksize=1)
                    for r in results:
                        r["batches"] = _load_spill(r["batches"])
                finally:
                    shutil.rmtree(spill_dir, ignore_errors=True)
            else:
                b = _Builder(path, fi, rfmt, _Resolver(base_dir, mroot, probe_media), frames, probe_media,
                             probe_cache, lean)
                if container == "jsonl":
                    b.consume(F.iter_jsonl(path))
                elif container == "json":
                    b.consume(F.iter_json_array(path))
                else:
                    b.consume(F.iter_table_records(path, container))
                results = [b.result()]
        except F.FormatError as e:
            rejects.append({"file": path, "line": None, "row_id": None, "uid": None, "level": "file",
                            "reason": e.reason, "detail": e.detail})
            st["file_reject"] = e.reason
            st["rejects_by_reason"] = {e.reason: 1}
            continue
        by_reason: Counter = Counter()
        for r in results:
            batches.extend(r["batches"])
            rejects.extend(r["rejects"])
            st["rows_read"] += r["rows_read"]
            st["rows_with_candidates"] += r["rows_ok"]
            st["candidates"] += r["candidates"]
            st["candidate_rejects"] += r["cand_rejects"]
            st["blank_lines"] += r["blank_lines"]
            st["media_tokens_implied"] += r["media_tokens_implied"]
            by_reason.update(r["by_reason"])
        st["rows_rejected"] = st["rows_read"] - st["rows_with_candidates"]
        st["rejects_by_reason"] = dict(sorted(by_reason.items()))
        if callable(progress):  # gdo run: a callback per finished file (drives its tqdm bar)
            progress(path, st)
        elif progress:
            import sys

            print(f"[gdo ingest] {path}: {st['rows_read']} rows, {st['candidates']} candidates, "
                  f"{st['rows_rejected']} rows rejected", file=sys.stderr)

    table = pa.Table.from_batches(batches, schema=CANDIDATE_SCHEMA) if batches else CANDIDATE_SCHEMA.empty_table()
    n = table.num_rows
    table = table.set_column(CANDIDATE_SCHEMA.get_field_index("pool_pos"), CANDIDATE_SCHEMA.field("pool_pos"),
                             pa.array(np.arange(n, dtype=np.int64)))
    table, collisions = _unique_uids(table)
    totals = {k: sum(s[k] for s in files_stats.values()) for k in
              ("rows_read", "rows_with_candidates", "rows_rejected", "candidates", "candidate_rejects",
               "blank_lines", "media_tokens_implied")}
    tot_reasons: Counter = Counter()
    for s in files_stats.values():
        tot_reasons.update(s["rejects_by_reason"])
    totals["rejects_by_reason"] = dict(sorted(tot_reasons.items()))
    totals["files_rejected"] = sum(1 for s in files_stats.values() if "file_reject" in s)
    stats = {"files": files_stats, "totals": totals, "uid_collisions": collisions,
             "duplicate_ids": _duplicate_ids(table, [p for p in files_stats]) if collisions else [],
             "frames": frames,
             "media_root": mroot, "probe_media": probe_media, "media_columns": not lean}
    return IngestResult(table, rejects, stats)


#: At most this many duplicated row ids are listed in ingest.json (``duplicate_ids_listed`` says if cut).
MAX_DUPLICATE_IDS_LISTED = 10_000


def _duplicate_ids(table: pa.Table, files: list[str]) -> list[dict]:
    """Row ids held by more than one row with candidates, with every (file, line) holding them, in
    pool order: ``[{"row_id", "rows": [{"file", "line"}, ...]}]`` (at most
    ``MAX_DUPLICATE_IDS_LISTED`` ids; the uids of the later rows get ``#2``, ``#3``...)."""
    t = table.select(["row_id", "file_index", "line"])
    first = t.group_by(["row_id", "file_index", "line"], use_threads=False).aggregate([])
    counts = first.group_by("row_id", use_threads=False).aggregate([("line", "count")])
    dup = counts.filter(pc.greater(counts.column("line_count"), 1)).column("row_id")
    if len(dup) == 0:
        return []
    rows = first.filter(pc.is_in(first.column("row_id"), value_set=dup))
    rows = rows.sort_by([("file_index", "ascending"), ("line", "ascending")])
    out: dict[str, list[dict]] = {}
    for rid, fi, ln in zip(*(rows.column(c).to_pylist() for c in ("row_id", "file_index", "line"))):
        if rid not in out and len(out) >= MAX_DUPLICATE_IDS_LISTED:
            continue
        out.setdefault(rid, []).append({"file": files[fi] if fi < len(files) else str(fi), "line": ln})
    return [{"row_id": k, "rows": v} for k, v in out.items()]


def _unique_uids(table: pa.Table) -> tuple[pa.Table, int]:
    col = table.column("uid")
    if table.num_rows == 0 or len(pc.unique(col)) == table.num_rows:
        return table, 0
    uids = col.to_pylist()
    seen = set(uids)
    count: dict[str, int] = {}
    collisions = 0
    out = []
    first: set[str] = set()
    for u in uids:
        if u not in first:
            first.add(u)
            out.append(u)
            continue
        collisions += 1
        k = count.get(u, 1)
        while True:
            k += 1
            cand = f"{u}#{k}"
            if cand not in seen:
                break
        count[u] = k
        seen.add(cand)
        out.append(cand)
    i = CANDIDATE_SCHEMA.get_field_index("uid")
    return table.set_column(i, CANDIDATE_SCHEMA.field("uid"), pa.array(out, pa.string())), collisions


def write_ingest(result: IngestResult, out_dir: str | Path) -> None:
    """Write ``candidates.parquet``, ``rejects.jsonl`` and ``ingest.json`` to ``out_dir`` atomically."""
    out = Path(out_dir)
    output_dir(out)
    write_parquet_atomic(out / "candidates.parquet", result.candidates)
    with atomic_open(out / "rejects.jsonl", "wb") as f:
        for r in result.rejects:
            f.write(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n")
    write_json_atomic(out / "ingest.json", result.stats)


def read_candidates(out_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read ``out_dir/candidates.parquet`` (or a path to the file itself) with CANDIDATE_SCHEMA.

    ``columns``: read only these (the ``media``/``media_raw`` lists of frame-list pools are large).

    Raises:
        FileNotFoundError: no candidates file.
    """
    import pyarrow.parquet as pq

    p = Path(out_dir)
    if p.is_dir():
        p = p / "candidates.parquet"
    if not p.exists():
        raise FileNotFoundError(f"{p} not found (run `gdo ingest` first)")
    if columns is not None:
        return pq.read_table(p, columns=list(columns))
    return pq.read_table(p, schema=CANDIDATE_SCHEMA)
