"""The whole job in one call: ingest -> profile -> select -> export -> report.

``gdo run`` (src/gdo/cli/run.py) and the Python API ``gdo.run.run`` share this code. Every
stage writes into one run folder::

    OUT/candidates.parquet, rejects.jsonl, ingest.json      (ingest, issue 2)
    OUT/descriptors.parquet, descriptors.meta.json           (profile, issues 3-4)
    OUT/subset.jsonl, baseline.jsonl, selection.jsonl, report.json   (select, issue 5)
    OUT/exports/subset.<trainer>..., baseline.<trainer>...   (export; only with exports=...)
    OUT/report.html                                          (report)

Stages reuse earlier output where the stage itself supports it (profile keeps finished shards),
so an interrupted run resumes when started again with the same arguments.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

STAGES = ("ingest", "profile", "select", "export", "report")


@dataclass
class RunResult:
    """What :func:`run` did: the run folder, sizes, files, per-stage seconds and the summary text."""

    out_dir: Path
    n_candidates: int
    n_rejects: int
    subset_uids: list[str]
    baseline_uids: list[str]
    report_json: dict[str, Any]
    exports: list[Path] = field(default_factory=list)
    report_html: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    summary: str = ""


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _parse_budget(budget: str | int | None) -> int | None:
    """``auto``/None -> None (auto budget); a non-negative integer -> that size (as ``gdo select``).

    Raises:
        ValueError: anything else.
    """
    if budget is None:
        return None
    if isinstance(budget, int):
        n = budget
    else:
        s = str(budget).strip().lower()
        if s == "auto":
            return None
        try:
            n = int(s)
        except ValueError:
            raise ValueError(f"--budget must be 'auto' or a non-negative integer, not {budget!r}") from None
    if n < 0:
        raise ValueError(f"--budget must be a non-negative integer, not {n}")
    return n


def _call(fn, /, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with only the keyword arguments its signature accepts (stages evolve separately)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def _read_selection(path: Path) -> tuple[list[str], list[str]]:
    subset, baseline = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                s = json.loads(line)
                (baseline if s.get("set") == "baseline" else subset).append(s["uid"])
    return subset, baseline


def run(pools: Sequence[str | Path], out: str | Path, *, preset: str = "temp_plus", goal: str | Path | None = None,
        model: str | Path | None = None, mode: str = "default", workers: int = 1,
        media_root: str | Path | None = None, fmt: str | None = None, exports: Sequence[str] = (),
        budget: str | int | None = "auto", seed: int = 42, frames: int = 32, baseline_mult: float | None = None,
        descriptors: Sequence[str] | None = None, no_vds: bool = False, no_ppl: bool = False, no_sc: bool = False,
        allow_random_fill: bool = False, thumbnails: bool = True, progress: bool = True,
        goal_set: Sequence[str | Path] | None = None) -> RunResult:
    """Run ingest, profile, select, export and report on ``pools`` into ``out``.

    Args:
        pools: pool files (JSONL, JSON, Parquet, saved HF datasets), in pool order.
        out: run folder (created).
        preset: ``minloss`` | ``diverse`` | ``temp`` | ``temp_plus`` (ignored when ``goal`` is given).
        goal: a TOML/YAML goal file (custom preset; see ``gdo presets``).
        model: local VLM checkpoint folder for the model descriptors (VDS, PPL, SC, TNC judge);
            without it those columns stay null and selection uses the other descriptors.
        mode: ``default`` (fixed pipeline) or ``paper`` (reproduces the release, GDO_METHOD.md 7).
        workers: processes for ingestion and the media stage (results identical for any value).
        media_root: folder media paths resolve against (default: each pool file's folder).
        fmt: force an input format (default: auto-detect per file).
        exports: trainer formats to write for subset and baseline: ``swift``, ``llamafactory``, ``llava``.
        budget: ``auto`` (GDO_METHOD.md 5) or a subset size.
        seed: seed of clustering, the model stage, tie-breaking and the baseline.
        frames: T, frames a video is sampled to.
        baseline_mult: Uni-Nx multiplier (default: the goal's, 10).
        descriptors: descriptor groups to compute (default: all).
        no_vds / no_ppl / no_sc: ablations dropping those score terms (GDO_METHOD.md 5).
        allow_random_fill: default mode: fill a short subset from a random reservoir (reported).
        thumbnails: decode media for the report's thumbnails.
        progress: progress bars and stage lines on stderr, summary on stdout.
        goal_set: goal-set files (issue 15, :mod:`gdo.goalset`): select toward these evaluation
            examples (relevance from the embeddings profile stores); read and validated first.

    Returns:
        RunResult.

    Raises:
        ValueError: bad arguments (unknown export format, bad budget, unknown preset) or no
            usable candidate in the pool. Stage errors propagate with their own messages.
    """
    from gdo.export import EXPORTERS

    t_all = time.perf_counter()
    if goal_set:
        from gdo.goalset import read_goal_set

        goal_set = read_goal_set([str(x) for x in goal_set], media_root=str(media_root) if media_root else None)
    out_dir = Path(out)
    pools = [str(p) for p in pools]
    if not pools:
        raise ValueError("no pool file given")
    exports = [e.strip().lower() for x in exports for e in str(x).split(",") if e.strip()]
    bad = [e for e in exports if e not in EXPORTERS]
    if bad:
        raise ValueError(f"unknown export format(s) {bad}; choose from {sorted(EXPORTERS)}")
    n_budget = _parse_budget(budget)
    if mode not in ("default", "paper"):
        raise ValueError(f"mode must be 'default' or 'paper', not {mode!r}")
    goal_label = preset if goal is None else str(goal)
    if goal is None:
        from gdo.selection.presets import get_preset

        try:
            get_preset(preset)
        except KeyError as e:
            raise ValueError(str(e.args[0])) from None
    elif not hasattr(goal, "model_dump"):
        # validate a goal file before any stage runs (a bad goal must not cost a profile run)
        from gdo.selection.goal import GoalError, load_goal

        try:
            goal_label = str(goal)
            goal = load_goal(goal)
        except GoalError as e:
            raise ValueError(str(e)) from None
    missing = [p for p in pools if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"pool file(s) not found: {missing}")
    if model is not None and not Path(model).exists():
        raise FileNotFoundError(f"--model {model}: no such folder (gdo never downloads weights; "
                                "download the checkpoint first and pass its local folder)")
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    # 1. ingest
    _say(progress, f"[1/5] ingest: reading {len(pools)} pool file(s)")
    t0 = time.perf_counter()
    from gdo.pool.ingest import ingest, write_ingest

    from tqdm.auto import tqdm

    bar = tqdm(total=len(pools), desc="ingest", unit="file", disable=not progress)
    seen = {"candidates": 0, "rejected": 0}

    def _file_done(path: str, st: dict) -> None:
        seen["candidates"] += st.get("candidates", 0)
        seen["rejected"] += st.get("rows_rejected", 0)
        bar.set_postfix(candidates=seen["candidates"], rows_rejected=seen["rejected"], refresh=False)
        bar.update(1)

    try:
        res = ingest(pools, media_root=media_root, fmt=fmt, frames=frames, probe_media=True, workers=workers,
                     progress=_file_done if progress else False)
    finally:
        bar.update(bar.total - bar.n)  # files rejected as a whole do not call back
        bar.close()
    write_ingest(res, out_dir)
    cands = res.candidates
    timings["ingest"] = time.perf_counter() - t0
    if cands.num_rows == 0:
        raise ValueError(f"no usable candidate in {pools}: every row was rejected (see {out_dir / 'rejects.jsonl'})")
    _say(progress, f"      {cands.num_rows:,} candidates, {len(res.rejects):,} rejects "
                   f"({timings['ingest']:.1f} s)")

    # 2. profile
    _say(progress, "[2/5] profile: descriptors" + (f" with model {model}" if model else " (no model: model descriptors stay null)"))
    t0 = time.perf_counter()
    from gdo.descriptors.profile import profile

    _call(profile, cands, out_dir, descriptors=descriptors, workers=workers, mode=mode,
          model=str(model) if model else None, media_root=media_root, frames=frames, seed=seed, progress=progress)
    timings["profile"] = time.perf_counter() - t0
    _say(progress, f"      descriptors.parquet written ({timings['profile']:.1f} s)")

    # 3. select
    _say(progress, f"[3/5] select: goal {goal_label}, mode {mode}, budget {'auto' if n_budget is None else n_budget}")
    t0 = time.perf_counter()
    _select(pools, out_dir, cands, len(res.rejects), preset=preset, goal=goal, mode=mode, seed=seed, budget=n_budget,
            baseline_mult=baseline_mult, media_root=media_root, fmt=fmt,
            ablations={"no_vds": no_vds, "no_ppl": no_ppl, "no_sc": no_sc, "allow_random_fill": allow_random_fill},
            goal_set=goal_set or None)
    timings["select"] = time.perf_counter() - t0
    subset, baseline = _read_selection(out_dir / "selection.jsonl")
    _say(progress, f"      subset {len(subset):,}, baseline {len(baseline):,} ({timings['select']:.1f} s)")

    # 4. export
    written: list[Path] = []
    t0 = time.perf_counter()
    # exports of an earlier run into this folder describe another subset: never leave them beside
    # the new ones (a user could train on them)
    stale = out_dir / "exports"
    if stale.is_dir():
        for f in sorted(stale.iterdir()):
            if f.is_file() and (f.name.startswith(("subset", "baseline")) or f.name == "dataset_info.json"):
                f.unlink()
    if exports:
        _say(progress, f"[4/5] export: {', '.join(exports)}")
        from tqdm.auto import tqdm

        from gdo.export import export

        jobs = [(f, name, uids) for f in exports for name, uids in (("subset", subset), ("baseline", baseline))]
        for f, name, uids in tqdm(jobs, desc="export", unit="file", disable=not progress):
            written += export(cands, out_dir / "exports", f, uids=uids, name=name)
        written = list(dict.fromkeys(written))
    else:
        _say(progress, "[4/5] export: none requested (--export swift|llamafactory|llava)")
    timings["export"] = time.perf_counter() - t0

    # 5. report
    _say(progress, "[5/5] report: report.html")
    t0 = time.perf_counter()
    from gdo.report import build_report, run_summary

    html = build_report(out_dir, thumbnails=thumbnails, progress=progress)
    timings["report"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    rj = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    summary = run_summary(out_dir, n_candidates=cands.num_rows, n_rejects=len(res.rejects), exports=written,
                          elapsed_s=timings["total"])
    from gdo.utils.io import write_json_atomic

    tpath = out_dir / "timings.json"
    try:
        prev = json.loads(tpath.read_text(encoding="utf-8")) if tpath.exists() else {}
    except json.JSONDecodeError:
        prev = {}
    write_json_atomic(tpath, {**(prev if isinstance(prev, dict) else {}), "run": {k: round(v, 3) for k, v in timings.items()}})
    if progress:
        print(summary, flush=True)
    return RunResult(out_dir=out_dir, n_candidates=cands.num_rows, n_rejects=len(res.rejects), subset_uids=subset,
                     baseline_uids=baseline, report_json=rj, exports=written, report_html=html, timings=timings,
                     summary=summary)


def _select(pools: list[str], out_dir: Path, cands, n_rejects: int, *, preset: str, goal, mode: str, seed: int,
            budget: int | None, baseline_mult: float | None, media_root, fmt, ablations: dict[str, bool],
            goal_set=None) -> None:
    """Run the selection stage (:func:`gdo.selection.select.run_select`) into ``out_dir``.

    Also writes ``scores.parquet`` (uid, score for every candidate) for the report's top/bottom lists.
    """
    import pyarrow as pa

    from gdo.selection.select import run_select
    from gdo.utils.io import write_parquet_atomic

    res = run_select(pools, out_dir / "descriptors.parquet", out_dir, preset=None if goal else preset, goal=goal,
                     candidates=cands, ingest_rejects=n_rejects, mode=mode, seed=seed,
                     budget=budget if budget is not None else "auto", baseline_mult=baseline_mult,
                     media_root=str(media_root) if media_root else None, fmt=fmt, goal_set=goal_set, **ablations)
    write_parquet_atomic(out_dir / "scores.parquet",
                         pa.table({"uid": pa.array(res.uids, pa.string()), "score": pa.array(res.score, pa.float64())}))
