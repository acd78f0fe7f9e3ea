"""Pool ingestion: pool files -> candidates.parquet, rejects.jsonl, ingest.json (docs/DESIGN.md).

Every input row ends up either with at least one candidate or as exactly one row-level reject, so
per file ``rows_read == rows_with_candidates + rows_rejected``. Pairs dropped inside a row that
still has candidates are candidate-level rejects. A file that cannot be read at all (unknown
format, JSON array that does not parse) is a file-level reject (``level: "file"``) and reads 0 rows.

Media paths resolve against ``media_root`` when given (and are then confined to it: see
``gdo.pool.media.resolve_media``), else against the pool file's folder. Note that LLaMA-Factory's
``v1_multimodal_demo.jsonl`` writes paths relative to the project root (``data/mllm_demo_data/1.jpg``)
so, read from its own folder, its media are ``missing_media``; pass ``media_root`` = the folder above.
Without probing, confinement is lexical only (``../`` and absolute paths); symlinks are followed
(``realpath``) only when media are probed, since ``probe_media=False`` touches no media file.

Reject reasons. Row level: ``malformed_json``, ``blank_line`` (every empty/whitespace line is a
row), ``not_utf8``, ``line_too_long`` (> 8 MiB), ``wrong_type``, ``no_messages`` (missing, null or
empty conversation), ``assistant_first``, ``no_pairs``, ``empty_answer`` (every pair empty),
``media_token_mismatch``, ``mixed_media``, ``unsupported_media`` (embedded bytes without a path),
``missing_media``, ``unreadable_media``, ``corrupt_video``, ``media_outside_root``. Candidate level
(the row keeps other candidates): ``empty_answer``, ``unpaired_turn``, ``mixed_media``. File level:
``unknown_format``, ``unreadable_file``, and ``malformed_json``/``not_utf8`` for a JSON array that
does not parse. Duplicate ids are not rejects: the later uids get ``#2``, ``#3``... in pool order,
counted in ``ingest.json`` as ``uid_collisions``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import orjson
import pyarrow as pa

from gdo.schema import CANDIDATE_SCHEMA, DEFAULT_FRAMES, IMAGE_QA, SHORT_VIDEO
from gdo.utils.hashing import stable_hash
from gdo.utils.io import atomic_open, write_json_atomic, write_parquet_atomic

from . import formats as F
from .candidates import Row, RowReject, parse_row
from .media import (IMAGE_EXTS, VIDEO_EXTS, MediaError, check_image, list_frame_folder, probe_video, resolve_media,
                    sample_indices)

_BATCH = 65536
#: Use the fast path for common row shapes (tests switch it off to check both paths agree).
_FAST_PATH = True


@dataclass
class IngestResult:
    """Result of ``ingest``: ``candidates`` (pa.Table, CANDIDATE_SCHEMA, ordered by pool_pos),
    ``rejects`` (list of reject dicts, in file/line order), ``stats`` (the ingest.json object)."""

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


_FAST_USER = frozenset({"user", "human"})
_FAST_ASST = frozenset({"assistant", "gpt"})


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
                 probe: bool, probe_cache: dict) -> None:
        self.file = file
        self.file_index = file_index
        self.fmt = fmt
        self.r = resolver
        self.T = frames
        self.probe = probe
        self.probe_cache = probe_cache
        self.batches: list[pa.RecordBatch] = []
        self.rejects: list[dict] = []
        self.rows_read = 0
        self.rows_ok = 0
        self.n_cands = 0
        self.cand_rejects = 0
        self.by_reason: Counter = Counter()
        self._reset()

    def _reset(self) -> None:
        self.c: dict[str, list] = {k: [] for k in (
            "uid", "row_id", "turn", "line", "bucket", "question", "answer", "user_msg", "asst_msg",
            "media_kind", "midx", "video_key", "n_frames", "native_frames", "fps", "duration_s",
            "data_source")}
        self.m_raw: list[list[str]] = []
        self.m_res: list[list[str]] = []

    def reject(self, line: int | None, reason: str, detail: str, level: str = "row", row_id: str | None = None,
               uid: str | None = None) -> None:
        self.rejects.append({"file": self.file, "line": line, "row_id": row_id, "uid": uid, "level": level,
                             "reason": reason, "detail": detail})
        self.by_reason[reason] += 1

    # media of one item -> (raw list, resolved list, native, fps, duration, video_key)
    def _item_media(self, it) -> tuple[list[str], list[str], Any, Any, Any, str | None]:
        r = self.r
        if it.kind == "frames":
            if isinstance(it.value, list):
                raw = it.value
                res = r.many(raw)
                if self.probe:
                    if r.media_root is not None:
                        for i in sample_indices(len(res), self.T):
                            r.one(raw[i])  # symlink check on the frames that will be read
                    for i in sample_indices(len(res), self.T):
                        if not os.path.isfile(res[i]):
                            raise MediaError("missing_media", f"frame {res[i]} does not exist")
                key = "frames:" + stable_hash(r.prefix, "\x1f".join(raw))
                return raw, res, len(res), None, None, key
            raw = [it.value]
            folder = r.one(it.value)
            if self.probe:
                res = list_frame_folder(folder)
                return raw, res, len(res), None, None, folder
            return raw, [folder], None, None, None, folder
        raw = [it.value]
        res_p = r.one(it.value)
        if it.kind == "video":
            if self.probe:
                info = self.probe_cache.get(res_p)
                if info is None:
                    try:
                        info = probe_video(res_p)
                    except MediaError as e:
                        info = e
                    self.probe_cache[res_p] = info
                if isinstance(info, MediaError):
                    raise info
                return raw, [res_p], info.native_frames, info.fps, info.duration_s, res_p
            return raw, [res_p], None, None, None, res_p
        if self.probe:
            ok = self.probe_cache.get(res_p)
            if ok is None:
                try:
                    check_image(res_p)
                    ok = True
                except MediaError as e:
                    ok = e
                self.probe_cache[res_p] = ok
            if isinstance(ok, MediaError):
                raise ok
        return raw, [res_p], None, None, None, None

    def add_row(self, line: int, row: Row) -> None:
        c = self.c
        items = row.items
        media = [self._item_media(it) for it in items]  # may raise MediaError
        is_video = row.is_video
        prefix = "vv::" if is_video else "ov::"
        bucket = SHORT_VIDEO if is_video else IMAGE_QA
        all_idx: int | None = None
        T = self.T
        for p in row.pairs:
            sel = p.items
            if sel is None:
                sel_items = range(len(items))
                if all_idx is None:
                    all_idx = self._register(media, sel_items)
                midx = all_idx
            else:
                sel_items = sel
                midx = self._register(media, sel_items)
            n_sel = len(sel_items)
            if n_sel == 0:
                kind, vkey, nf, nat, fps, dur = "none", None, 0, None, None, None
            else:
                first = sel_items[0]
                it = items[first]
                if it.kind == "image":
                    kind, vkey, nf, nat, fps, dur = "image", None, n_sel, None, None, None
                else:
                    _, _, nat, fps, dur, vkey = media[first]
                    kind = it.kind
                    nf = None if nat is None else min(nat, T)
            uid = f"{prefix}{row.row_id}::t{p.k}"
            c["uid"].append(uid)
            c["row_id"].append(row.row_id)
            c["turn"].append(p.k)
            c["line"].append(line)
            c["bucket"].append(bucket)
            c["question"].append(p.question)
            c["answer"].append(p.answer)
            c["user_msg"].append(p.user_msg)
            c["asst_msg"].append(p.asst_msg)
            c["media_kind"].append(kind)
            c["midx"].append(midx)
            c["video_key"].append(vkey)
            c["n_frames"].append(nf)
            c["native_frames"].append(nat)
            c["fps"].append(fps)
            c["duration_s"].append(dur)
            c["data_source"].append(row.data_source)
        self.n_cands += len(row.pairs)
        self.rows_ok += 1
        for reason, detail, u, a in row.cand_rejects:
            self.reject(line, reason, detail, level="candidate", row_id=row.row_id)
            self.cand_rejects += 1
        if len(c["uid"]) >= _BATCH:
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
        c = self.c
        n = len(c["uid"])
        if not n:
            return
        lt = pa.list_(pa.string())
        idx = np.asarray(c["midx"], np.int64)
        raw_lists = pa.array(self.m_raw, lt)
        if any(r is None for r in self.m_res):
            res_lists = self._resolve_lists(raw_lists)
        else:
            res_lists = pa.array(self.m_res, lt)
        media_raw = _take_lists(raw_lists, idx)
        media = _take_lists(res_lists, idx)
        cols = {
            "uid": pa.array(c["uid"], pa.string()),
            "row_id": pa.array(c["row_id"], pa.string()),
            "turn": pa.array(c["turn"], pa.int32()),
            "source_file": pa.array([self.file] * n, pa.string()),
            "file_index": pa.array([self.file_index] * n, pa.int32()),
            "line": pa.array(c["line"], pa.int64()),
            "format": pa.array([self.fmt] * n, pa.string()),
            "bucket": pa.array(c["bucket"], pa.string()),
            "question": pa.array(c["question"], pa.string()),
            "answer": pa.array(c["answer"], pa.string()),
            "user_msg": pa.array(c["user_msg"], pa.int32()),
            "asst_msg": pa.array(c["asst_msg"], pa.int32()),
            "media_kind": pa.array(c["media_kind"], pa.string()),
            "media": media,
            "media_raw": media_raw,
            "video_key": pa.array(c["video_key"], pa.string()),
            "n_frames": pa.array(c["n_frames"], pa.int32()),
            "native_frames": pa.array(c["native_frames"], pa.int32()),
            "fps": pa.array(c["fps"], pa.float64()),
            "duration_s": pa.array(c["duration_s"], pa.float64()),
            "data_source": pa.array(c["data_source"], pa.string()),
            "pool_pos": pa.nulls(n, pa.int64()),
        }
        self.batches.append(pa.RecordBatch.from_arrays([cols[f.name] for f in CANDIDATE_SCHEMA],
                                                       schema=CANDIDATE_SCHEMA))
        self._reset()

    # ------------------------------------------------------------------ fast path
    def _fast(self, line: int, rec: dict) -> bool:
        """Common shapes without probing (plain alternating user/assistant strings, string id,
        tokens only in the first question, no media / one image / one frame list). Returns False
        (nothing recorded) for anything else, which then takes the general path; both paths give
        identical candidates."""
        msgs = rec.get("messages")
        if msgs is None:
            msgs = rec.get("conversations")
        if type(msgs) is not list:
            return False
        n = len(msgs)
        if n < 2 or n & 1:
            return False
        rid = rec.get("id")
        if type(rid) is not str or not rid:
            return False
        qs = []
        ans = []
        ntok = 0
        nvid = 0
        for i in range(0, n, 2):
            u = msgs[i]
            a = msgs[i + 1]
            if type(u) is not dict or type(a) is not dict:
                return False
            ur = u.get("role") or u.get("from")
            ar = a.get("role") or a.get("from")
            if ur not in _FAST_USER or ar not in _FAST_ASST:
                return False
            uc = u.get("content")
            if uc is None:
                uc = u.get("value")
            ac = a.get("content")
            if ac is None:
                ac = a.get("value")
            if type(uc) is not str or type(ac) is not str or not ac or ac.isspace():
                return False
            if "<" in uc:
                nvid = uc.count("<video>")
                c = uc.count("<image>") + nvid
                if c:
                    if i:
                        return False
                    ntok = c
                    uc = uc.replace("<image>", "").replace("<video>", "")
            qs.append(uc.strip())
            ans.append(ac)
        if ntok > 1:
            return False
        images = rec.get("images")
        if images is None:
            images = rec.get("image")
        videos = rec.get("videos")
        if videos is None:
            videos = rec.get("video") if images is None else None
        pre = self.r.prefix
        if videos is not None:
            if images is not None:
                return False
            if type(videos) is list:
                if len(videos) != 1:
                    return False
                videos = videos[0]
            if type(videos) is not str or not videos or not _clean(videos):
                return False
            if os.path.splitext(videos)[1].lower() not in VIDEO_EXTS:
                return False
            kind, raw, res, nf, nat = "video", [videos], None, None, None
            vkey = pre + videos
        elif images is None or images == []:
            if ntok:
                return False
            kind, raw, res, vkey, nf, nat = "none", [], [], None, 0, None
        else:
            if type(images) is str:
                images = [images]
            elif type(images) is not list:
                return False
            ni = len(images)
            if ni > 1 or self.fmt == "llava_video" or "video_id" in rec:
                if ni < 2 or not (self.fmt == "llava_video" or "video_id" in rec):
                    return False
                j = "\x1f".join(images)  # TypeError for non-strings -> general path
                if not images[0] or not images[-1] or "\x1f\x1f" in j:
                    return False  # empty path: the general path rejects it
                if self.r.media_root is not None and not _clean(j):
                    return False  # confinement checks need the general path
                e0 = os.path.splitext(images[0])[1].lower()
                e1 = os.path.splitext(images[-1])[1].lower()
                if e0 not in IMAGE_EXTS or e1 not in IMAGE_EXTS:
                    return False
                kind, raw, res = "frames", images, None
                vkey = "frames:" + stable_hash(pre, j)
                nat = ni
                nf = ni if ni < self.T else self.T
            else:
                p = images[0]
                if type(p) is not str or not p or (self.r.media_root is not None and not _clean(p)):
                    return False
                if nvid or os.path.splitext(p)[1].lower() not in IMAGE_EXTS:
                    return False  # <video> for an image is a mismatch: the general path rejects it
                kind, raw, res, vkey, nf, nat = "image", images, None, None, 1, None
        is_video = kind != "image" and kind != "none"
        self.m_raw.append(raw)
        self.m_res.append(res)
        midx = len(self.m_raw) - 1
        ds = rec.get("data_source")
        if ds is None:
            ds = rec.get("source", "")
        if type(ds) is not str:
            ds = str(ds)
        prefix = "vv::" if is_video else "ov::"
        bucket = SHORT_VIDEO if is_video else IMAGE_QA
        c = self.c
        k = len(qs)
        c["uid"].extend([f"{prefix}{rid}::t{t}" for t in range(k)])
        c["row_id"].extend([rid] * k)
        c["turn"].extend(range(k))
        c["line"].extend([line] * k)
        c["bucket"].extend([bucket] * k)
        c["question"].extend(qs)
        c["answer"].extend(ans)
        c["user_msg"].extend(range(0, n, 2))
        c["asst_msg"].extend(range(1, n, 2))
        c["media_kind"].extend([kind] * k)
        c["midx"].extend([midx] * k)
        c["video_key"].extend([vkey] * k)
        c["n_frames"].extend([nf] * k)
        c["native_frames"].extend([nat] * k)
        c["fps"].extend([None] * k)
        c["duration_s"].extend([None] * k)
        c["data_source"].extend([ds] * k)
        self.n_cands += k
        self.rows_ok += 1
        if len(c["uid"]) >= _BATCH:
            self.flush()
        return True

    def consume(self, records: Iterable[F.Record]) -> None:
        fmt = self.fmt
        fast = self._fast if (not self.probe and _FAST_PATH) else None
        for line, rec, err in records:
            self.rows_read += 1
            if err is not None:
                self.reject(line, err[0], err[1])
                continue
            if fast is not None and type(rec) is dict and fast(line, rec):
                continue
            try:
                row = parse_row(rec, fmt)
            except RowReject as e:
                rid = rec.get("id") if isinstance(rec, dict) else None
                self.reject(line, e.reason, e.detail, row_id=rid if isinstance(rid, str) else None)
                continue
            try:
                self.add_row(line, row)
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
                "by_reason": dict(self.by_reason)}


def _run_range(args: tuple) -> dict:
    """Worker: ingest one byte range of a JSONL file; candidates go to an Arrow IPC file in
    ``spill_dir`` (memory-mapped back by the parent, so no big pickle crosses the pipe)."""
    import gc

    gc.disable()
    (path, file_index, fmt, base_dir, media_root, frames, probe, start, end, first_line, spill) = args
    b = _Builder(path, file_index, fmt, _Resolver(base_dir, media_root, probe), frames, probe, {})
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
           progress: bool = False) -> IngestResult:
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

    Returns:
        IngestResult (candidates ordered by pool_pos; uids made unique with ``#2``, ``#3``...
        suffixes in pool order, counted in ``stats['uid_collisions']``).

    Raises:
        ValueError: unknown ``fmt``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if fmt is not None and fmt not in F.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(F.FORMATS)}")
    import gc

    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of lists/strings are created and kept: cyclic GC passes would rescan them
    try:
        return _ingest(paths, media_root=media_root, fmt=fmt, frames=frames, probe_media=probe_media,
                       workers=workers, progress=progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _ingest(paths, *, media_root, fmt, frames, probe_media, workers, progress) -> IngestResult:
    mroot = os.path.abspath(os.fspath(media_root)) if media_root is not None else None
    batches: list[pa.RecordBatch] = []
    rejects: list[dict] = []
    files_stats: dict[str, dict] = {}
    probe_cache: dict = {}
    for fi, p in enumerate(paths):
        path = os.path.abspath(os.fspath(p))
        st = {"format": None, "rows_read": 0, "rows_with_candidates": 0, "rows_rejected": 0, "candidates": 0,
              "candidate_rejects": 0, "rejects_by_reason": {}, "file_index": fi}
        key = path if path not in files_stats else f"{path}#{fi}"
        files_stats[key] = st
        try:
            container = F.detect_container(path)
            rfmt = fmt or F.detect_row_format(F.sample_records(path, container))
            if rfmt is None:
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
                    args = [(path, fi, rfmt, base_dir, mroot, frames, probe_media, a, b, ln,
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
                             probe_cache)
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
              ("rows_read", "rows_with_candidates", "rows_rejected", "candidates", "candidate_rejects")}
    tot_reasons: Counter = Counter()
    for s in files_stats.values():
        tot_reasons.update(s["rejects_by_reason"])
    totals["rejects_by_reason"] = dict(sorted(tot_reasons.items()))
    totals["files_rejected"] = sum(1 for s in files_stats.values() if "file_reject" in s)
    stats = {"files": files_stats, "totals": totals, "uid_collisions": collisions, "frames": frames,
             "media_root": mroot, "probe_media": probe_media}
    return IngestResult(table, rejects, stats)


def _unique_uids(table: pa.Table) -> tuple[pa.Table, int]:
    import pyarrow.compute as pc

    col = table.column("uid")
    if table.num_rows == 0 or pc.count_distinct(col).as_py() == table.num_rows:
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
    out.mkdir(parents=True, exist_ok=True)
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
