"""Descriptor inputs of `gdo select`, auto-detected, normalised to one canonical table.

Accepted forms (:func:`read_descriptors` detects which):

1. **Our ``descriptors.parquet``** (``gdo profile``; columns ``gdo.schema.DESCRIPTOR_COLUMNS``,
   keyed by ``uid``). Quality (GDO_METHOD.md section 4) is computed here, since the file has none.
2. **The GDO release's merged metrics JSONL**: one JSON object per line keyed by ``qa_uid`` with
   ``loss_video``, ``loss_blind``, ``frame_diversity``, ``vds``, ``quality_score`` and possibly more.
   ``quality_score`` is used as given.
3. **The release's raw shard folder**: a directory holding ``sixd_metrics_rank*.jsonl`` (one JSON
   object per candidate with the raw descriptors, no cluster and no quality columns), or one such
   file. This module is then only an adapter: it turns the shards (concatenated in rank order)
   into our descriptor table and calls the descriptor code that ``gdo profile`` uses:
   :mod:`gdo.descriptors.cluster` for cluster_rep / cluster_hard (section 3.6) and
   :mod:`gdo.descriptors.quality` for quality (section 4). In paper mode the table is what the
   release's merge step writes (missing vds, ppl, amm, frame diversity and tnc read as 0) and the
   clusters and quality are the release's (see those modules).

Accepted per-row keys (any subset; unknown keys are ignored, missing ones are null):

==================  =======================================================================
key                 meaning (aliases)
==================  =======================================================================
uid                 candidate id ``ov::{row}::t{k}`` / ``vv::...`` (``qa_uid``, ``id``)
loss_video          answer loss with the visual input, nats/token
loss_blind          answer loss without visual input (``loss_text``, ``loss_noimg``)
vds                 loss_blind - loss_video
ppl                 exp(clamp(loss_video, -30, 30)) (``perplexity``)
sc                  self-consistency in [0, 1] (``self_consistency``)
tnc                 temporal necessity (judge with lexical fallback in the release; lexical in ours)
tnc_judge           our TNC judge output (``tnc_llm``)
amm                 average motion magnitude (``motion``)
frame_diversity     (``fd``, ``frame_div``)
cluster_rep         exp(-distance to the k-means centre) (``rep``)
cluster_hard        1 - cluster_rep (``hard``)
quality_score       section 4 quality (``quality``)
native_frames       frame count before sampling
n_frames            frames the model saw
text_feat           list of floats: the release's text features (used for clustering raw shards)
vis_feat            list of floats: visual features (used for clustering raw shards)
==================  =======================================================================

Release spellings accepted as aliases: ``tnc_score`` (tnc), ``self_consistency`` (sc; a negative
value means "not computed"), ``cluster_score`` (cluster_rep), ``cluster_hardness`` (cluster_hard).
The keys may sit at the top level or inside a nested ``data_quality_metrics`` object (the raw
shards' layout); top-level values win.

Values must be numbers or null (``NaN`` literals are accepted through a slower fallback parser).
A row whose value is not a number raises :class:`DescriptorError` naming file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo.descriptors.quality import quality_score

CANON_FLOAT = ("loss_video", "loss_blind", "vds", "ppl", "sc", "tnc", "tnc_judge", "amm", "frame_diversity",
               "cluster_rep", "cluster_hard", "quality_score", "native_frames", "n_frames")
ALIASES = {
    "qa_uid": "uid", "id": "uid", "loss_text": "loss_blind", "loss_noimg": "loss_blind",
    "perplexity": "ppl", "self_consistency": "sc", "tnc_llm": "tnc_judge", "motion": "amm",
    "fd": "frame_diversity", "frame_div": "frame_diversity", "rep": "cluster_rep", "hard": "cluster_hard",
    "quality": "quality_score", "tnc_score": "tnc", "cluster_score": "cluster_rep",
    "cluster_hardness": "cluster_hard",
}
#: Nested record holding the metrics in the release's shards (merged into the top level).
NESTED = "data_quality_metrics"
#: Per-row feature vectors used for clustering when present (section 3.6).
FEATURE_LISTS = ("text_feat", "vis_feat")
_SHARD_RE = re.compile(r"sixd_metrics_rank(\d+).*\.jsonl$")


class DescriptorError(ValueError):
    """A descriptor file is unreadable or malformed (message names file, line, field)."""


@dataclass
class Descriptors:
    """Canonical descriptors: ``table`` has ``uid`` (string) and every ``CANON_FLOAT`` column (float64,
    null where missing). ``form``: parquet | merged_jsonl | raw_shards | table. ``computed``: columns
    computed here ("quality", "cluster"); ``info``: details for the report."""

    table: pa.Table
    form: str
    path: str | None = None
    computed: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def detect_form(path: str | Path) -> str:
    """``parquet``, ``raw_shards`` (a folder, or a ``sixd_metrics_rank*.jsonl`` file) or ``merged_jsonl``.

    Raises:
        DescriptorError: path missing, or a folder without shards.
    """
    p = Path(path)
    if not p.exists():
        raise DescriptorError(f"{p}: descriptor file not found")
    if p.is_dir():
        if not sorted(p.glob("sixd_metrics_rank*.jsonl")):
            if (p / "descriptors.parquet").exists():
                return "parquet"
            raise DescriptorError(f"{p}: folder holds no sixd_metrics_rank*.jsonl shards")
        return "raw_shards"
    if p.suffix.lower() == ".parquet":
        return "parquet"
    with open(p, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if _SHARD_RE.search(p.name):
        return "raw_shards"
    return "merged_jsonl"


def _flatten_nested(table: pa.Table) -> pa.Table:
    if NESTED not in table.column_names or not pa.types.is_struct(table[NESTED].type):
        return table
    nested = table[NESTED]
    if isinstance(nested, pa.ChunkedArray):
        nested = nested.combine_chunks()
    out = table.drop_columns([NESTED])
    present = {ALIASES.get(c, c) for c in out.column_names if out[c].null_count < out.num_rows}
    for i in range(nested.type.num_fields):
        f = nested.type.field(i)
        canon = ALIASES.get(f.name, f.name)
        child = nested.field(i)
        if canon in present or child.null_count == len(child):
            continue  # top-level values win; absent keys come back all-null
        if f.name in out.column_names:
            out = out.drop_columns([f.name])
        out = out.append_column(f.name, child)
        present.add(canon)
    return out


def _canonical(table: pa.Table, where: str) -> pa.Table:
    table = _flatten_nested(table)
    names = {}
    for c in table.column_names:
        canon = ALIASES.get(c, c)
        if canon in names.values() and canon != c:
            continue  # the canonical name itself is present; the alias is ignored
        if canon != c and canon in table.column_names:
            continue
        names[c] = canon
    if "uid" not in names.values():
        raise DescriptorError(f"{where}: no uid column (expected 'uid' or 'qa_uid'); columns: {table.column_names}")
    cols: dict[str, pa.Array] = {}
    feats: dict[str, pa.Array] = {}
    for c, canon in names.items():
        if canon == "uid":
            col = table[c]
            if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
                col = pc.cast(col, pa.string())
            cols["uid"] = col.cast(pa.string())
        elif canon in FEATURE_LISTS and (pa.types.is_list(table[c].type) or pa.types.is_large_list(table[c].type)):
            feats[canon] = table[c]
        elif canon in CANON_FLOAT:
            col = table[c]
            if pa.types.is_null(col.type):
                col = pa.nulls(len(col), pa.float64())
            elif pa.types.is_boolean(col.type) or pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
                col = pc.cast(col, pa.float64())
            else:
                bad = _first_bad(col)
                raise DescriptorError(f"{where}: field {c!r} must be numeric, got {col.type}"
                                      + (f" (row {bad[0] + 1}: {bad[1]!r})" if bad else ""))
            if canon == "sc":  # the release writes -1 for "not computed"
                col = pc.if_else(pc.less(col, 0.0), pa.scalar(None, pa.float64()), col)
            cols[canon] = col
    n = table.num_rows
    if n and not (set(cols) - {"uid", "n_frames", "native_frames"}) and not feats:
        # only a uid and frame counts: e.g. the pool's candidates.parquet given as descriptors
        raise DescriptorError(f"{where}: no descriptor column (amm, tnc, vds, ppl, ... or their release names); "
                              "is this the pool's candidates.parquet? --descriptors takes gdo profile's "
                              "descriptors.parquet or the release's metrics")
    for c in CANON_FLOAT:
        if c not in cols:
            cols[c] = pa.nulls(n, pa.float64())
    uid = cols["uid"]
    if uid.null_count:
        i = int(np.flatnonzero(np.asarray(pc.is_null(uid)))[0])
        raise DescriptorError(f"{where}: row {i + 1}: field 'uid' is null")
    return pa.table({"uid": uid, **{c: cols[c] for c in CANON_FLOAT}, **feats})


def _first_bad(col) -> tuple[int, Any] | None:
    for i, v in enumerate(col.to_pylist()):
        if v is not None and not isinstance(v, (int, float)):
            return i, v
    return None


def _known_types() -> dict[str, pa.DataType]:
    flat: dict[str, pa.DataType] = {}
    for c in CANON_FLOAT:
        flat[c] = pa.float64()
    for a, c in ALIASES.items():
        if c in CANON_FLOAT:
            flat[a] = pa.float64()
    for c in FEATURE_LISTS:
        flat[c] = pa.list_(pa.float64())
    known: dict[str, pa.DataType] = {"qa_uid": pa.string(), "uid": pa.string(), **flat}
    known[NESTED] = pa.struct(list(flat.items()))
    return known


def _read_jsonl(path: Path) -> pa.Table:
    """Read a JSONL file into a table (pyarrow's C++ reader; Python fallback for NaN/Infinity)."""
    import pyarrow.json as pj

    known = _known_types()
    try:
        # every known field gets its type; fields a file lacks come back all-null and are dropped.
        # The nested metrics object is parsed only for keys the first line lacks at the top level.
        schema_items = list(known.items())
        with open(path, "rb") as f:
            first = f.readline()
        import orjson

        try:
            head = orjson.loads(first) if first.strip() else {}
        except orjson.JSONDecodeError:
            head = {}
        if isinstance(head, dict):
            top = {ALIASES.get(k, k) for k in head if k in known and k != NESTED}
            inner = head.get(NESTED)
            keep_inner = [
                (f.name, f.type) for f in known[NESTED]
                if isinstance(inner, dict) and f.name in inner and ALIASES.get(f.name, f.name) not in top]
            schema_items = [(k, t) for k, t in known.items() if k != NESTED]
            if keep_inner:
                schema_items.append((NESTED, pa.struct(keep_inner)))
        opts = pj.ParseOptions(explicit_schema=pa.schema(schema_items), unexpected_field_behavior="ignore")
        t = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24), parse_options=opts)
        return t.select([c for c in t.column_names if t[c].null_count < t.num_rows or t.num_rows == 0])
    except Exception:
        return _read_jsonl_slow(path, known)


def _read_jsonl_slow(path: Path, known: dict) -> pa.Table:
    import json

    cols: dict[str, list] = {}
    n = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise DescriptorError(f"{path}:{lineno}: malformed JSON: {e}") from None
            if not isinstance(obj, dict):
                raise DescriptorError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            flat_obj = dict(obj)
            inner = flat_obj.pop(NESTED, None)
            if isinstance(inner, dict):
                for k, v in inner.items():
                    if k not in flat_obj and ALIASES.get(k, k) not in flat_obj:
                        flat_obj[k] = v
            for k, v in flat_obj.items():
                if k not in known or k == NESTED:
                    continue
                typ = known[k]
                if typ == pa.float64():
                    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                        raise DescriptorError(f"{path}:{lineno}: field {k!r} must be a number or null, got {v!r}")
                    v = None if v is None else float(v)
                elif pa.types.is_list(typ):
                    if v is not None and (not isinstance(v, list) or
                                          not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                        raise DescriptorError(f"{path}:{lineno}: field {k!r} must be a list of numbers")
                elif v is not None and not isinstance(v, str):
                    v = str(v)
                col = cols.get(k)
                if col is None:
                    col = cols[k] = [None] * n
                col.append(v)
            n += 1
            for col in cols.values():
                if len(col) < n:
                    col.append(None)
    return pa.table({k: pa.array(v, known[k]) for k, v in cols.items()}) if cols else pa.table({"uid": pa.array([], pa.string())})


def read_descriptors(path: str | Path | pa.Table | None, *, candidates: pa.Table | None = None,
                     mode: str = "default", seed: int = 42, k: int | None = None) -> Descriptors | None:
    """Read and normalise descriptors (any accepted form, or an in-memory table).

    Args:
        path: file/folder path, a pyarrow Table (our columns or release names), or None (no descriptors).
        candidates: the pool (needed for the text features of clustering raw shards).
        mode: ``paper`` reproduces the release's cluster distance (unscaled features, first k rows as
            initial centres); ``default`` scales features first.
        seed: k-means seed; ``k``: cluster count override (default min(4096, ...), see compute_clusters).

    Returns:
        :class:`Descriptors`, or None when ``path`` is None.

    Raises:
        DescriptorError: missing file, malformed rows, non-numeric fields, no uid column.
    """
    if path is None:
        return None
    computed: list[str] = []
    info: dict[str, Any] = {}
    if isinstance(path, pa.Table):
        form, where, shown = "table", "descriptor table", None
        table = _canonical(path, where)
    else:
        p = Path(path)
        form = detect_form(p)
        shown = str(p)
        if form == "parquet":
            import pyarrow.parquet as pq

            target = p / "descriptors.parquet" if p.is_dir() else p
            try:
                names = pq.read_schema(target).names
                want = {"uid", *CANON_FLOAT, *FEATURE_LISTS, *ALIASES}
                raw = pq.read_table(target, columns=[c for c in names if c in want])
            except Exception as e:
                raise DescriptorError(f"{target}: cannot read Parquet: {e}") from None
            table = _canonical(raw, str(target))
        elif form == "merged_jsonl":
            table = _canonical(_read_jsonl(p), str(p))
        else:
            files = [p] if p.is_file() else sorted(
                p.glob("sixd_metrics_rank*.jsonl"),
                key=lambda q: (int(_SHARD_RE.search(q.name).group(1)) if _SHARD_RE.search(q.name) else 0, q.name))
            info["shards"] = [f.name for f in files]
            parts = [_canonical(_read_jsonl(f), str(f)) for f in files]
            table = pa.concat_tables(parts) if parts else _canonical(pa.table({"uid": pa.array([], pa.string())}), shown)
    table = table.combine_chunks()
    n = table.num_rows
    uniq = len(pc.unique(table["uid"])) if n else 0
    info["rows"] = n
    info["duplicate_uids"] = int(n - uniq)
    # cluster (section 3.6) when absent
    if n and form == "raw_shards" and mode == "paper":
        # the release's merge step reads these with a default of 0 (and writes them so)
        for c in ("vds", "ppl", "amm", "frame_diversity", "tnc"):
            v = _f64(table[c])
            table = table.set_column(table.schema.get_field_index(c), c,
                                     pa.array(np.where(np.isfinite(v), v, 0.0)))
    rep = table["cluster_rep"]
    if n and rep.null_count == n and form in ("raw_shards", "merged_jsonl", "table"):
        rep_v, hard_v, cinfo = compute_clusters(table, candidates, mode=mode, seed=seed, k=k)
        table = table.set_column(table.schema.get_field_index("cluster_rep"), "cluster_rep", pa.array(rep_v))
        table = table.set_column(table.schema.get_field_index("cluster_hard"), "cluster_hard", pa.array(hard_v))
        computed.append("cluster")
        info["cluster"] = cinfo
    # quality (section 4) when absent
    if n and table["quality_score"].null_count == n:
        cols = {c: _f64(table[c]) for c in CANON_FLOAT}
        stat_rows = None
        if n > 800_000:  # the release estimates the statistics from a sample of up to 800k rows
            stat_rows = np.sort(np.random.default_rng(seed).choice(n, 800_000, replace=False))
        q = quality_score(cols, stat_rows=stat_rows, mode=mode, seed=seed)
        table = table.set_column(table.schema.get_field_index("quality_score"), "quality_score", pa.array(q))
        computed.append("quality")
    return Descriptors(table=table, form=form, path=shown, computed=computed, info=info)


def _f64(col) -> np.ndarray:
    return np.asarray(pc.fill_null(col, np.nan), dtype=np.float64)


def _list_matrix(col) -> np.ndarray:
    """A list<float> column as a float32 (M, D) matrix (D = longest list; short or null rows padded with 0)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    m = len(col)
    lens = np.asarray(pc.fill_null(pc.list_value_length(col), 0), dtype=np.int64)
    d = int(lens.max()) if m else 0
    out = np.zeros((m, d), dtype=np.float32)
    if d == 0:
        return out
    vals = np.asarray(pc.fill_null(pc.list_flatten(col), np.nan), dtype=np.float64)
    rows = np.repeat(np.arange(m), lens)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    cols = np.arange(vals.size) - starts
    out[rows, cols] = np.nan_to_num(vals, nan=0.0)
    return out


def compute_clusters(table: pa.Table, candidates: pa.Table | None, *, mode: str = "default", seed: int = 42,
                     k: int | None = None, text_dim: int = 16) -> tuple[np.ndarray, np.ndarray, dict]:
    """cluster_rep / cluster_hard of the descriptor rows, by :mod:`gdo.descriptors.cluster`.

    The adapter part: the feature blocks the release's shards carry, in the order its merge step
    concatenates them: ``text_feat`` (or, when the rows lack it, a signed hashed bag of words of
    question + answer, ``text_dim`` dims, stable hashes, zeros when the uid is not in
    ``candidates``), ``vis_feat`` when present, and the scalar block (tnc, amm, frame diversity,
    PPL, VDS; :func:`gdo.descriptors.cluster.scalar_block`). Then the same
    :func:`~gdo.descriptors.cluster.build_features` and :func:`~gdo.descriptors.cluster.cluster`
    as ``gdo profile``, with that mode's k rule unless ``k`` is given.

    Returns:
        (rep float64 (M,), hard float64 (M,), info dict with k, features, mode).
    """
    from gdo.descriptors.cluster import cluster_descriptors
    from gdo.text import hashed_bow, tokenize

    m = table.num_rows
    feat_names: list[str] = []
    text = vis = None
    if "text_feat" in table.column_names:
        text = _list_matrix(table["text_feat"])
        feat_names.append("text_feat%d" % text.shape[1])
    else:
        text = np.zeros((m, text_dim), dtype=np.float32)
        if candidates is not None and candidates.num_rows:
            idx = np.asarray(pc.fill_null(pc.index_in(table["uid"], value_set=candidates["uid"]), -1), dtype=np.int64)
            ok = np.flatnonzero(idx >= 0)
            if ok.size:
                take = pa.array(idx[ok])
                qa = pc.binary_join_element_wise(pc.fill_null(candidates["question"].take(take), ""),
                                                 pc.fill_null(candidates["answer"].take(take), ""), " ")
                tok = tokenize(qa, hashes=True)
                text[ok] = hashed_bow(tok, ok.size, text_dim)
        feat_names.append("text_bow%d" % text_dim)
    if "vis_feat" in table.column_names:
        vis = _list_matrix(table["vis_feat"])
        feat_names.append("vis_feat%d" % vis.shape[1])
    tnc = _f64(table["tnc"])
    ppl = _f64(table["ppl"])
    vds = _f64(table["vds"])
    if mode != "paper":  # derivable values; the release reads the stored columns only
        tnc = np.where(np.isnan(tnc), _f64(table["tnc_judge"]), tnc)
        ppl = np.where(np.isnan(ppl), np.exp(np.clip(_f64(table["loss_video"]), -30, 30)), ppl)
        vds = np.where(np.isnan(vds), _f64(table["loss_blind"]) - _f64(table["loss_video"]), vds)
    _, rep, hard, cinfo = cluster_descriptors(text, vis, tnc, _f64(table["amm"]), _f64(table["frame_diversity"]),
                                              ppl, vds, k=k, seed=seed, mode=mode)
    info = {"k": int(cinfo["k"]), "features": feat_names + cinfo["scalars"], "mode": mode,
            "scaled": mode != "paper", "fit_rows": int(cinfo.get("sample", m))}
    return rep, hard, info
