"""The stage layer: the only place where stages read and write files.

Stages themselves are functions over tables (:func:`gdo.pool.ingest.ingest`,
:func:`gdo.descriptors.profile.profile`, :func:`gdo.selection.select.select`,
:func:`gdo.export.export`, :func:`gdo.report.build_report`); each function here runs one of them
with its frozen config (:mod:`gdo.config`) and does that stage's I/O in a run folder. The CLI
commands (``gdo ingest|profile|select|report``) and :func:`gdo.run.run` (``gdo run``) call these
functions, so ``gdo select`` + ``gdo report`` write exactly what ``gdo run`` writes for the same
inputs (tests/cli/test_stage_equivalence.py).

Files per stage (docs/DESIGN.md)::

    ingest   candidates.parquet, rejects.jsonl, ingest.json
    profile  descriptors.parquet, descriptors.meta.json (written by profile's shard store)
    select   subset.jsonl, baseline.jsonl (the pool's own row format, via gdo.pool.writer),
             selection.jsonl, report.json, scores.parquet, timings.json
    export   exports/{subset,baseline}.<trainer>...
    report   report.html
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from gdo.config import ExportConfig, IngestConfig, ProfileConfig, ReportConfig, SelectConfig

#: Files the select stage writes, in the order report.json lists them (``outputs.files``).
SELECT_FILES = ("subset.jsonl", "baseline.jsonl", "selection.jsonl", "report.json", "scores.parquet")


class StageError(ValueError):
    """A stage cannot run on its inputs (no pool file, no usable candidate); the message says why."""


@dataclass(frozen=True)
class Candidates:
    """The candidates a selection runs on.

    Attributes:
        table: N candidates (``gdo.schema.CANDIDATE_SCHEMA``; lean tables hold ``media_len``
            instead of the ``media`` / ``media_raw`` path lists).
        n_rejects: ingest rejects of the same pool (reported in report.json), None when unknown.
        pool_files: the pool files, in pool order, as ingest records them (:func:`pool_files`).
    """

    table: pa.Table
    n_rejects: int | None
    pool_files: list[str]


# ----------------------------------------------------------------------------- ingest
def ingest_stage(pools: Sequence[str | os.PathLike], out_dir: str | os.PathLike, cfg: IngestConfig, *,
                 progress: bool = False):
    """Ingest ``pools`` and write candidates.parquet, rejects.jsonl and ingest.json into ``out_dir``.

    Returns:
        the :class:`gdo.pool.ingest.IngestResult`.

    Raises:
        FileNotFoundError: a pool file is missing. ValueError: from ingest (e.g. unknown ``fmt``).
    """
    from gdo.pool.ingest import ingest, write_ingest

    paths = [str(p) for p in pools]
    _check_exist(paths)
    from gdo.utils.progress import candidate_bar

    seen = {"files": 0, "rejected": 0}
    with candidate_bar("ingest", None, progress) as bar:  # candidates per file are known only once read

        def _file_done(path: str, st: dict) -> None:
            seen["files"] += 1
            seen["rejected"] += st.get("rows_rejected", 0)
            bar.note(files=f"{seen['files']}/{len(paths)}", rows_rejected=seen["rejected"])
            bar.advance(st.get("candidates", 0))

        res = ingest(paths, media_root=cfg.media_root, fmt=cfg.fmt, frames=cfg.frames, probe_media=cfg.probe_media,
                     media_columns=cfg.media_columns, workers=_workers(cfg.workers),
                     progress=_file_done if progress else False)
    write_ingest(res, out_dir)
    return res


def _workers(w: int) -> int:
    return w if w > 0 else max(1, min(8, os.cpu_count() or 1))


def _check_exist(paths: Sequence[str]) -> None:
    if not paths:
        raise StageError("no pool file given")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"pool file not found: {', '.join(missing)}")


def ingest_folder(pools: Sequence[str | os.PathLike]) -> Path | None:
    """The candidates.parquet that ``pools`` names (one ``gdo ingest`` / ``gdo run`` folder or the file
    itself), else None (``pools`` are pool files)."""
    if len(pools) != 1:
        return None
    p = Path(pools[0])
    if p.name == "candidates.parquet":
        return p
    if p.is_dir() and (p / "candidates.parquet").exists():
        return p / "candidates.parquet"
    return None


def load_candidates(pools: Sequence[str | os.PathLike], cfg: IngestConfig) -> Candidates:
    """The candidates ``gdo select`` runs on: read from an ingest folder, or a lean ingest of pool files.

    An ingest folder (see :func:`ingest_folder`) gives its candidates, the count of its
    rejects.jsonl and its pool files in argument order (ingest.json), exactly what ``gdo run``
    passes to selection. Pool files are ingested without opening media and without the media path
    lists (``cfg.probe_media`` / ``cfg.media_columns`` are ignored here: select never needs them);
    only their lengths are kept as ``media_len``.

    Raises:
        FileNotFoundError: a pool file or the folder's candidates file is missing.
        StageError: no candidate could be read (the reject reasons are counted in the message).
    """
    cp = ingest_folder(pools)
    if cp is not None:
        from gdo.pool.ingest import read_candidates

        table = read_candidates(cp)
        n_rej = None
        if (cp.parent / "rejects.jsonl").exists():
            with open(cp.parent / "rejects.jsonl", "rb") as f:
                n_rej = sum(1 for line in f if line.strip())
        files: list[str] = []
        if (cp.parent / "ingest.json").exists():
            files = pool_files(json.loads((cp.parent / "ingest.json").read_text(encoding="utf-8")))
        elif table.num_rows:
            files = sorted(set(table["source_file"].to_pylist()))
        return Candidates(table, n_rej, files)
    from gdo.pool.ingest import ingest

    paths = [str(p) for p in pools]
    _check_exist(paths)
    res = ingest(paths, media_root=cfg.media_root, fmt=cfg.fmt, frames=cfg.frames, probe_media=False,
                 media_columns=False, workers=_workers(cfg.workers))
    table = res.candidates
    if table.num_rows == 0:
        reasons: dict[str, int] = {}
        for r in res.rejects:
            reasons[r.get("reason", "?")] = reasons.get(r.get("reason", "?"), 0) + 1
        detail = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "no rows"
        raise StageError(f"nothing usable was read: no candidate in any pool file ({detail})")
    # selection and the row writer never need the media path lists (most of the table's memory)
    drop = [c for c in ("media", "media_raw") if c in table.column_names]
    if drop:
        mlen = pc.fill_null(pc.list_value_length(table["media"]), 0) if "media" in drop else None
        table = table.drop_columns(drop)
        if mlen is not None:
            table = table.append_column("media_len", mlen)
    return Candidates(table, len(res.rejects), pool_files(res.stats))


def pool_files(ingest_stats: dict) -> list[str]:
    """The pool files of an ingest (its ingest.json object), in argument order, as ingest records them
    (absolute paths): what report.json lists as ``inputs.pool_files``, whichever command selected."""
    files = ingest_stats.get("files", {})
    # ingest.json is written with sorted keys: each file's ``file_index`` gives the argument order
    keys = sorted(files, key=lambda k: files[k].get("file_index", 0) if isinstance(files[k], dict) else 0)
    # ingest.json keys a file given twice as "path#i": the pool file is "path"
    return [re.sub(r"#\d+$", "", k) if re.sub(r"#\d+$", "", k) in keys else k for k in keys]


# ----------------------------------------------------------------------------- profile
def profile_stage(candidates, out_dir: str | os.PathLike, cfg: ProfileConfig) -> pa.Table:
    """Run :func:`gdo.descriptors.profile.profile` with every option of ``cfg`` into ``out_dir``.

    ``candidates``: pool files, a candidates.parquet path, a candidates table or an IngestResult.

    Returns:
        the descriptors table (also in ``out_dir/descriptors.parquet``).

    Raises:
        the errors of profile (ValueError, FileNotFoundError, RuntimeError).
    """
    from gdo.descriptors.profile import profile

    return profile(candidates, out_dir, **cfg.profile_kwargs())


# ----------------------------------------------------------------------------- select
def select_stage(cands: Candidates, descriptors, out_dir: str | os.PathLike, cfg: SelectConfig, *,
                 timings: dict[str, float] | None = None):
    """Select (:func:`gdo.selection.select.select`, pure) and write its files into ``out_dir``.

    Writes ``subset.jsonl`` and ``baseline.jsonl`` (the pool rows of the picks, only the chosen
    turns, in the pool's own format, one pass over the pool files: :func:`gdo.pool.writer.write_row_sets`),
    ``selection.jsonl`` (``{"uid", "set", "score", "stage"}`` per pick: GDO picks in pool order,
    then baseline picks in pool order), ``report.json`` (deterministic; docs/REPORT_SCHEMA.md),
    ``scores.parquet`` (uid, score, stratum, reason left out, score terms of every candidate) and
    ``timings.json`` (seconds per step; the only file that varies between runs).

    Args:
        cands: the candidates (:func:`load_candidates` or an ingest result).
        descriptors: descriptors.parquet, the release's merged JSONL or raw shard folder, a table,
            or None (every candidate lacks a descriptor row).
        timings: seconds of earlier steps (e.g. ``{"ingest": s}``) to record in timings.json too.

    Returns:
        the :class:`gdo.selection.select.SelectionResult`.

    Raises:
        SelectionError, GoalError, DescriptorError (ValueErrors) from select; FileNotFoundError: a
        pool file is gone when the rows are written.
    """
    import orjson

    from gdo.pool.writer import write_row_sets
    from gdo.selection.select import select
    from gdo.utils.io import atomic_open, dumps_json, output_dir, write_json_atomic, write_parquet_atomic

    t0 = time.perf_counter()
    out = Path(out_dir)
    output_dir(out)
    from gdo.selection.select import embedding_store_beside

    emb = cfg.embeddings if cfg.embeddings is not None else embedding_store_beside(descriptors)
    result = select(cands.table, descriptors, cfg.goal, ingest_rejects=cands.n_rejects, pool_files=list(cands.pool_files),
                    embeddings=emb, **cfg.select_kwargs())
    timings = {**(timings or {}), **result.timings}
    t1 = time.perf_counter()
    write_row_sets(cands.table, [(result.gdo_idx, out / "subset.jsonl"), (result.baseline_idx, out / "baseline.jsonl")])
    timings["write_subsets"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    sc = result.score
    with atomic_open(out / "selection.jsonl", "wb") as f:
        buf = []
        for i, u, st in zip(result.gdo_idx.tolist(), result.gdo_uids(), result.gdo_stage):
            buf.append(orjson.dumps({"uid": u, "set": "gdo", "score": float(sc[i]), "stage": st}))
        for i, u, st in zip(result.baseline_idx.tolist(), result.baseline_uids(), result.baseline_stage):
            buf.append(orjson.dumps({"uid": u, "set": "baseline", "score": float(sc[i]), "stage": st}))
        f.write(b"\n".join(buf) + (b"\n" if buf else b""))
    result.report["outputs"] = {"writer": "gdo.pool.writer", "files": list(SELECT_FILES)}
    with atomic_open(out / "report.json", "wb") as f:
        f.write(dumps_json(result.report))
    # uid, score, stratum, why not picked and the score terms of every candidate (report.html)
    write_parquet_atomic(out / "scores.parquet", result.scores_table())
    timings["write_selection_report"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0 + timings.get("ingest", 0.0)  # as before: ingest included
    tpath = out / "timings.json"  # keep the other stages' entries (profile, run)
    try:
        prev = json.loads(tpath.read_text(encoding="utf-8")) if tpath.exists() else {}
    except (OSError, ValueError):
        prev = {}
    prev = {k: v for k, v in (prev if isinstance(prev, dict) else {}).items() if isinstance(v, dict)}
    write_json_atomic(tpath, {**prev, **{k: round(v, 4) for k, v in timings.items()}})
    result.timings = timings
    return result


def read_selection(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(subset uids, baseline uids) of a selection.jsonl, in file order.

    Raises:
        ValueError: a line that is not JSON or lacks ``uid`` (file and line named).
    """
    subset, baseline = [], []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                s = json.loads(line)
                uid = s["uid"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{ln}: not a selection record ({e})") from None
            (baseline if s.get("set") == "baseline" else subset).append(uid)
    return subset, baseline


# ----------------------------------------------------------------------------- export
def export_stage(candidates: pa.Table, out_dir: str | os.PathLike, cfg: ExportConfig, subset: Sequence[str],
                 baseline: Sequence[str], *, progress: bool = False) -> list[Path]:
    """Write ``out_dir/exports/{subset,baseline}.<trainer>...`` for every format of ``cfg``.

    Exports of an earlier run into the same folder describe another subset: they are removed first
    (also when ``cfg.formats`` is empty), so no stale file is left beside the new ones.

    Returns:
        the files written (no duplicates), in write order.

    Raises:
        ValueError: from :func:`gdo.export.export` (missing columns, a uid not in ``candidates``).
    """
    exp_dir = Path(out_dir) / "exports"
    if exp_dir.is_dir():
        for f in sorted(exp_dir.iterdir()):
            if f.is_file() and (f.name.startswith(("subset", "baseline")) or f.name == "dataset_info.json"):
                f.unlink()
    if not cfg.formats:
        return []
    from gdo.export import export
    from gdo.utils.progress import candidate_bar

    written: list[Path] = []
    jobs = [(f, name, uids) for f in cfg.formats for name, uids in (("subset", subset), ("baseline", baseline))]
    with candidate_bar("export", sum(len(j[2]) for j in jobs), progress) as bar:
        for f, name, uids in jobs:
            written += export(candidates, exp_dir, f, uids=list(uids), name=name, context=cfg.context)
            bar.advance(len(uids))
    return list(dict.fromkeys(written))


# ----------------------------------------------------------------------------- report
def report_stage(run_dir: str | os.PathLike, cfg: ReportConfig, *, out_path: str | os.PathLike | None = None,
                 candidates_path: str | os.PathLike | None = None,
                 descriptors_path: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Write report.html from a run folder (:func:`gdo.report.build_report`); return its path.

    Raises:
        FileNotFoundError: report.json or selection.jsonl missing. ValueError: malformed inputs.
    """
    from gdo.report import build_report

    return build_report(run_dir, out_path=out_path, candidates_path=candidates_path,
                        descriptors_path=descriptors_path, n_examples=cfg.examples, thumbnails=cfg.thumbnails,
                        progress=progress)
