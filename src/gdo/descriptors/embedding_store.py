"""The per-candidate embedding store: ``embeddings.parquet`` + ``embeddings.meta.json`` (issue 15).

``gdo profile`` writes it beside ``descriptors.parquet`` so that ``gdo select --goal-set`` scores
goal relevance later without decoding media or running a model ("profile once, select for many
goals"). Columns:

* ``uid`` string;
* ``media_key`` string (nullable): the media item the candidate's visual embedding comes from;
* ``text_emb`` fixed_size_list<float32>[384]: L2-normalised all-MiniLM-L6-v2 embedding of
  ``question + "\\n" + answer`` (the one clustering uses; :mod:`gdo.descriptors.embeddings`);
* ``visual_emb`` fixed_size_list<float32>[d] (null where the candidate has no decodable media):
  the visual feature of its media item (160-d handcrafted, or the visual encoder's size);
* ``model_emb`` fixed_size_list<float32>[h] (null where the model stage did not run or the
  candidate failed): the reference model's pooled hidden state of the VDS visual pass, h =
  min(hidden size, 256) (:func:`gdo.models.hf.project_hidden`; ``model_pooling`` in the meta).

Sidecar ``embeddings.meta.json``: ``{"text_encoder", "text_dim", "visual_encoder", "visual_dim",
"model_id", "model_dim", "model_frames", "model_pooling", "n"}``.

Fast sidecars: Parquet decodes list columns value by value (about 1 minute for 1M x 384 on one
busy core, measured), far slower than selection itself. So beside the Parquet file the store keeps
each space as a raw float16 matrix in the Parquet file's row order, ``embeddings.<space>.f16.npy``
(``text``, and ``visual`` / ``model`` with a ``.mask.npy`` when present), read memory-mapped in
well under a second. float16 halves the size: 1M x 384 = 768 MB (1.5 GB as float32 in Parquet);
cosine similarities of unit vectors change by < 1e-3. ``embeddings.meta.json`` records
``sidecars`` (n and the first/last uid); a sidecar that does not match is ignored and the Parquet
column is read instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EMBEDDINGS_FILE = "embeddings.parquet"
META_FILE = "embeddings.meta.json"


class EmbeddingStoreError(ValueError):
    """A missing or malformed embedding store (the message names the file and column)."""


@dataclass
class Embeddings:
    """Embeddings aligned with ``uids``: ``text`` (N, 384) float32 (Parquet) or a read-only float16
    memory map (sidecar; convert chunk by chunk); ``visual`` (N, d) likewise or
    None with ``visual_mask`` bool (N,) (rows without media are zero and False); the same for
    ``model`` / ``model_mask``; ``meta``: the sidecar dict ({} when absent); ``path``: the file."""

    uids: pa.Array
    text: np.ndarray
    visual: np.ndarray | None
    visual_mask: np.ndarray | None
    model: np.ndarray | None
    model_mask: np.ndarray | None
    meta: dict
    path: str


#: Rows per row group of ``pq.write_table`` without ``row_group_size`` (pyarrow: min(rows, 1024 * 1024)),
#: passed explicitly so that the write chunks below follow it.
_ROW_GROUP = 1024 * 1024
#: Parquet ``write_batch_size`` (levels per write batch; WriterProperties' default).
_BATCH_LEVELS = 1024
#: Rows per chunk of a list column handed to the Parquet writer (rounded down to whole batches): its
#: levels take 4 bytes per value at once, 6 MB for 384-d rows (65,536 rows made 0.1 GB per chunk).
_CHUNK_ROWS = 4096


def _write_chunks(n: int, d: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` in which a fixed-size list column of ``n`` rows of size ``d``
    (no null row) can be handed to the Parquet writer with the file's bytes unchanged.

    The writer builds definition and repetition levels (2 x int16 per value: 2.3 KB per row at
    d = 384) for each array it is given; one array per column made a 0.6 GB transient for 394k
    rows. It writes a repeated column in batches ending at the first row boundary at least
    ``_BATCH_LEVELS`` levels after the batch start, counted from the start of each array, and
    checks the page size after each batch. Without null rows every batch is ``k = ceil(1024 / d)``
    rows, so ranges that start at multiples of ``k`` from the start of their row group (every
    ``_ROW_GROUP`` rows) give the same batches, pages and bytes as one array
    (tests/descriptors/test_embedding_store_write.py compares them)."""
    k = -(-_BATCH_LEVELS // d)
    step = max(k, _CHUNK_ROWS // k * k)
    out = []
    for g in range(0, n, _ROW_GROUP):
        end = min(g + _ROW_GROUP, n)
        out += [(s, min(s + step, end)) for s in range(g, end, step)]
    return out


def _fixed(mat: np.ndarray | None, mask: np.ndarray | None, n: int) -> pa.Array | pa.ChunkedArray:
    """``fixed_size_list<float32>[d]`` column of ``mat`` (float (n, d); rows where ``mask`` is
    False are null; None: an all-null list column of size 1). Over ``_CHUNK_ROWS`` rows, a
    chunked array of zero-copy row slices (:func:`_write_chunks`): the writer's levels a chunk at
    a time (0.25 GB at once for a 160-d column of 394k rows handed over whole). For ``d >= 160``
    without null rows the file's bytes are those of one array (tests/descriptors/
    test_embedding_store_write.py); with null rows or a smaller ``d`` its values are, and its
    bytes are fixed by the chunking (the same for any engine or worker count), while a null row
    or a dictionary fallback can move a page's end."""
    if mat is None:
        return pa.nulls(n, pa.list_(pa.float32(), 1))
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    d = mat.shape[1]
    nulls = None if mask is None or mask.all() else ~np.asarray(mask, dtype=bool)

    def rows(s: int, e: int) -> pa.FixedSizeListArray:
        return pa.FixedSizeListArray.from_arrays(pa.array(mat[s:e].reshape(-1), pa.float32()), d,
                                                 mask=None if nulls is None else pa.array(nulls[s:e]))
    if n > _CHUNK_ROWS:
        return pa.chunked_array([rows(s, e) for s, e in _write_chunks(n, d)], pa.list_(pa.float32(), d))
    return rows(0, n)


def write_embeddings(out_dir: str | Path, uids: Sequence[str], text_emb: np.ndarray, *,
                     media_keys: Sequence[str | None] | None = None, visual_emb: np.ndarray | None = None,
                     visual_mask: np.ndarray | None = None, model_emb: np.ndarray | None = None,
                     model_mask: np.ndarray | None = None, meta: dict | None = None) -> Path:
    """Write ``embeddings.parquet`` and ``embeddings.meta.json`` atomically into ``out_dir``.

    Memory: the Parquet table wraps the float32 matrices without a copy, the writer gets the
    list columns a block of rows at a time (:func:`_write_chunks`: its levels per block, not per
    column; same bytes); the float16 sidecars are written and the pool means summed a block of
    rows at a time.

    Args:
        uids: N candidate uids (a sequence or an Arrow string array). media_keys: likewise.
            text_emb: float (N, 384). visual_emb / model_emb: float (N, d) or
            None; their masks: bool (N,), False where the row has no embedding (stored null).
        meta: encoder ids (``text_encoder``, ``visual_encoder``, ``model_id``); dims are added.

    Raises:
        EmbeddingStoreError: arrays not aligned with ``uids``.
    """
    from gdo.utils.io import write_json_atomic, write_parquet_atomic

    n = len(uids)
    for name, m in (("text_emb", text_emb), ("visual_emb", visual_emb), ("model_emb", model_emb)):
        if m is not None and (m.ndim != 2 or m.shape[0] != n):
            raise EmbeddingStoreError(f"{name}: shape {m.shape} does not match {n} uids")
    cols = {"uid": _strings(uids)}
    if media_keys is not None:
        cols["media_key"] = _strings(media_keys)
    cols["text_emb"] = _fixed(text_emb, None, n)
    cols["visual_emb"] = _fixed(visual_emb, visual_mask, n)
    cols["model_emb"] = _fixed(model_emb, model_mask, n)
    out = Path(out_dir)
    path = out / EMBEDDINGS_FILE
    write_parquet_atomic(path, pa.table(cols), row_group_size=_ROW_GROUP)
    side = {}
    for space, mat, mask in (("text", text_emb, None), ("visual", visual_emb, visual_mask),
                             ("model", model_emb, model_mask)):
        stale = [out / f"embeddings.{space}.f16.npy", out / f"embeddings.{space}.mask.npy"]
        if mat is None:
            for f in stale:
                if f.exists():
                    f.unlink()
            continue
        _save_npy_rows(stale[0], mat, np.float16)
        if mask is not None:
            _save_npy(stale[1], np.asarray(mask, dtype=bool))
        elif stale[1].exists():
            stale[1].unlink()
        side[space] = stale[0].name
    m = dict(meta or {})
    # per-space pool means (over rows that have the space): goal relevance needs them, and a stored
    # mean saves a pass over 1M rows at selection time
    means = {"text": (np.asarray(text_emb).sum(axis=0, dtype=np.float64) / n).tolist() if n else None}
    for space, mat, mask in (("visual", visual_emb, visual_mask), ("model", model_emb, model_mask)):
        if mat is not None:
            means[space] = _masked_mean(np.asarray(mat), mask)
    m["means"] = means
    first, last = (cols["uid"][0].as_py(), cols["uid"][n - 1].as_py()) if n else (None, None)
    m["sidecars"] = {"files": side, "n": n, "first_uid": first, "last_uid": last}
    m.update({"n": n, "text_dim": int(text_emb.shape[1]),
              "visual_dim": int(visual_emb.shape[1]) if visual_emb is not None else None,
              "model_dim": int(model_emb.shape[1]) if model_emb is not None else None})
    write_json_atomic(out / META_FILE, m)
    return path


def _strings(values) -> pa.Array:
    """A contiguous Arrow string array of ``values`` (a sequence, or an Arrow (chunked) array)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    return pa.array(list(values), pa.string())


_ROWS = 65536  # rows per block of the sidecar writes and mean sums


def _save_npy_rows(path: Path, mat: np.ndarray, dtype) -> None:
    """``np.save(path, mat.astype(dtype))``, byte for byte (the same header), written a block of
    rows at a time: no converted copy of the whole matrix. Atomic (temporary file, rename)."""
    import os

    mat = np.asarray(mat)
    tmp = path.with_name(path.name + ".tmp")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": mat.shape}
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)  # what np.save writes (format 1.0 fits this header)
        for s in range(0, mat.shape[0], _ROWS):
            f.write(np.ascontiguousarray(mat[s:s + _ROWS], dtype=dtype).tobytes())
    os.replace(tmp, path)


def _masked_mean(mat: np.ndarray, mask: np.ndarray | None) -> list | None:
    """``mat[mask].sum(axis=0, dtype=float64) / count`` as a list (None without rows), summed a
    block at a time into one float64 accumulator: the same row-after-row additions NumPy makes
    on the whole (count, d >= 2) array, so the same bits, without the masked copy."""
    rows = int(mask.sum()) if mask is not None else mat.shape[0]
    if not rows:
        return None
    if mat.ndim != 2 or mat.shape[1] < 2:
        sel = mat[mask] if mask is not None else mat
        return (sel.sum(axis=0, dtype=np.float64) / rows).tolist()
    acc = None
    for s in range(0, mat.shape[0], _ROWS):
        b = mat[s:s + _ROWS] if mask is None else mat[s:s + _ROWS][mask[s:s + _ROWS]]
        if not len(b):
            continue
        b = b.astype(np.float64)
        acc = np.add.reduce(b if acc is None else np.concatenate([acc[None], b]), axis=0)
    return (acc / rows).tolist()


def _save_npy(path: Path, arr: np.ndarray) -> None:
    import os

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def _sidecar(folder: Path, meta: dict, space: str, uids: pa.Array) -> tuple[np.ndarray | None, np.ndarray | None]:
    sc = meta.get("sidecars") or {}
    name = (sc.get("files") or {}).get(space)
    n = len(uids)
    if not name or sc.get("n") != n or not (folder / name).exists():
        return None, None
    if n and (uids[0].as_py() != sc.get("first_uid") or uids[n - 1].as_py() != sc.get("last_uid")):
        return None, None
    mat = np.load(folder / name, mmap_mode="r")
    if mat.shape[0] != n:
        return None, None
    mask_f = folder / f"embeddings.{space}.mask.npy"
    mask = np.load(mask_f) if mask_f.exists() else np.ones(n, bool)
    return mat, mask  # float16, memory-mapped: consumers convert chunk by chunk


def _matrix(col: pa.ChunkedArray, where: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if arr.null_count == n:
        return None, None
    t = arr.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t)):
        raise EmbeddingStoreError(f"{where}: expected a list of floats, got {t}")
    mask = np.asarray(arr.is_valid(), dtype=bool)
    if pa.types.is_fixed_size_list(t):
        d = t.list_size
        # the child array holds d slots for every row, null rows included
        vals = arr.values.slice(arr.offset * d, n * d)
        mat = np.asarray(vals.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, d)
        if arr.null_count:
            mat = np.nan_to_num(mat)
            mat[~mask] = 0.0
        return mat, mask
    lens = np.asarray(arr.value_lengths().fill_null(0))
    d = int(lens[mask].max()) if mask.any() else 0
    if mask.any() and (lens[mask] != d).any():
        raise EmbeddingStoreError(f"{where}: rows of different lengths")
    mat = np.zeros((n, d), np.float32)
    mat[mask] = np.asarray(arr.filter(pa.array(mask)).flatten().to_numpy(zero_copy_only=False),
                           np.float32).reshape(-1, d)
    return mat, mask


def read_embeddings(path: str | Path) -> Embeddings:
    """Read the store (a folder holding ``embeddings.parquet``, or the file itself).

    Stores written before the ``visual_emb`` column existed (``uid, media_key, text_emb``) are
    completed from ``media.parquet`` beside them when present (its ``visual`` column by
    ``media_key``).

    Raises:
        EmbeddingStoreError: no store, or a missing ``uid`` / ``text_emb`` column.
    """
    p = Path(path)
    f = p / EMBEDDINGS_FILE if p.is_dir() else p
    if not f.exists():
        raise EmbeddingStoreError(f"{f}: no embedding store (run `gdo profile` with the embeddings or cluster "
                                  "descriptors first)")
    meta = {}
    mf = f.parent / META_FILE
    if mf.exists():
        meta = json.loads(mf.read_text())
    names = pq.ParquetFile(f).schema_arrow.names
    for c in ("uid", "text_emb"):
        if c not in names:
            raise EmbeddingStoreError(f"{f}: column {c!r} missing")
    uids = pq.read_table(f, columns=["uid"])["uid"].combine_chunks()
    text, tmask = _sidecar(f.parent, meta, "text", uids)
    if text is not None:  # fast path: no list column decoded at all
        vis, vmask = _sidecar(f.parent, meta, "visual", uids)
        mod, mmask = _sidecar(f.parent, meta, "model", uids)
        return Embeddings(uids=uids, text=text, visual=vis, visual_mask=vmask, model=mod, model_mask=mmask,
                          meta=meta, path=str(f))
    t = pq.read_table(f)
    text, tmask = _matrix(t["text_emb"], f"{f}: text_emb")
    if text is None or not tmask.all():
        raise EmbeddingStoreError(f"{f}: text_emb has null rows")
    vis = vmask = mod = mmask = None
    if "visual_emb" in t.column_names:
        vis, vmask = _matrix(t["visual_emb"], f"{f}: visual_emb")
    elif "media_key" in t.column_names and (f.parent / "media.parquet").exists():
        mt = pq.read_table(f.parent / "media.parquet", columns=["media_key", "visual"])
        mv, _ = _matrix(mt["visual"], f"{f.parent / 'media.parquet'}: visual")
        if mv is not None:
            idx = np.asarray(pc.fill_null(pc.index_in(t["media_key"], value_set=mt["media_key"]), -1))
            vmask = idx >= 0
            vis = np.zeros((t.num_rows, mv.shape[1]), np.float32)
            vis[vmask] = mv[idx[vmask]]
            vmask = vmask & (np.linalg.norm(vis, axis=1) > 0)
    if "model_emb" in t.column_names:
        mod, mmask = _matrix(t["model_emb"], f"{f}: model_emb")
    return Embeddings(uids=uids, text=text, visual=vis, visual_mask=vmask, model=mod, model_mask=mmask,
                      meta=meta, path=str(f))
