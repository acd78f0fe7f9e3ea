"""The whole job in one call: ingest -> profile -> select -> export -> report.

``gdo run`` (src/gdo/cli/run.py) and the Python API ``gdo.run.run`` share this code; the stages
run through the stage layer :mod:`gdo.stages` (the same functions ``gdo ingest|profile|select|report``
call) with the frozen configs of :mod:`gdo.config`. Every stage writes into one run folder::

    OUT/candidates.parquet, rejects.jsonl, ingest.json      (ingest, issue 2)
    OUT/descriptors.parquet, descriptors.meta.json           (profile, issues 3-4)
    OUT/subset.jsonl, baseline.jsonl, selection.jsonl, report.json, scores.parquet   (select)
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

from gdo.config import RunConfig, parse_budget

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
    config: RunConfig | None = None


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _parse_budget(budget: str | int | None) -> int | None:
    """``auto``/None -> None (auto budget); a non-negative integer -> that size (:func:`gdo.config.parse_budget`).

    Raises:
        ValueError: anything else.
    """
    b = parse_budget(budget)
    return None if b == "auto" else b


def run(pools: Sequence[str | Path], out: str | Path, *, preset: str | None = None, goal: str | Path | None = None,
        model: str | Path | None = None, mode: str = "default", workers: int = 1,
        media_root: str | Path | None = None, fmt: str | None = None, exports: Sequence[str] = (),
        budget: str | int | None = "auto", seed: int = 42, frames: int = 32, baseline_mult: float | None = None,
        descriptors: Sequence[str] | None = None, k: int | None = None, visual_encoder: str | Path | None = None,
        text_encoder: str = "minilm", batch_size: int = 8, model_frames: int | None = None, device: str = "auto",
        trust_remote_code: bool = False, no_vds: bool = False, no_ppl: bool = False, no_sc: bool = False,
        no_vds_budget: bool = False,
        allow_random_fill: bool = False, thumbnails: bool = True, examples: int = 5, progress: bool = True,
        engine: str = "local", address: str | None = None, devices: Sequence[int] | None = None,
        export_context: bool = False, goal_set: Sequence[str | Path] | None = None,
        config: RunConfig | None = None) -> RunResult:
    """Run ingest, profile, select, export and report on ``pools`` into ``out``.

    The options are those of the stages chained (one per ``gdo run`` flag); they are validated
    once into a frozen :class:`gdo.config.RunConfig` before any stage runs (a bad goal or export
    format costs no profiling). Pass ``config`` instead to reuse a built one (then no other option
    may differ from its default). The stages run through :mod:`gdo.stages`, the same code the
    single-stage commands use.

    Args:
        pools: pool files (JSONL, JSON, Parquet, saved HF datasets), in pool order.
        out: run folder (created).
        preset: ``minloss`` | ``diverse`` | ``temp`` | ``temp_plus`` (default when no ``goal``).
        goal: a TOML/YAML goal file (custom preset; see ``gdo presets``); not with ``preset``.
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
        k, visual_encoder, text_encoder: clustering and embedding options of ``gdo profile``.
        batch_size, model_frames, device, trust_remote_code: model-stage options of ``gdo profile``.
        no_vds / no_ppl / no_sc: ablations dropping those score terms (GDO_METHOD.md 5).
        no_vds_budget: ablation of the auto budget's VDS adjustment (its own switch, as in the release).
        allow_random_fill: default mode: fill a short subset from a random reservoir (reported).
        thumbnails: decode media for the report's thumbnails. examples: top/bottom candidates shown.
        progress: progress bars and stage lines on stderr, summary on stdout.
        engine, address, devices: profile engine ("local" | "ray"), Ray address, GPUs for model
            actors (see :class:`gdo.descriptors.config.ProfileConfig`; output identical).
        export_context: exports keep the earlier turns of a multi-turn row as context.
        goal_set: goal-set files (issue 15, :mod:`gdo.goalset`): select toward these evaluation
            examples (relevance from the embeddings profile stores); read and validated first.
        config: a ready RunConfig (replaces the options above).

    Returns:
        RunResult.

    Raises:
        gdo.config.ConfigError (a ValueError): a bad option (unknown export format, bad budget,
            unknown preset, bad goal file, both preset and goal). ValueError: no usable candidate
            in the pool. FileNotFoundError: a pool file or the model folder is missing. Stage
            errors propagate with their own messages.
    """
    from gdo import stages

    options = dict(preset=preset, goal=goal, model=model, mode=mode, workers=workers, media_root=media_root,
                   fmt=fmt, exports=exports, budget=budget, seed=seed, frames=frames, baseline_mult=baseline_mult,
                   descriptors=descriptors, k=k, visual_encoder=visual_encoder, text_encoder=text_encoder,
                   batch_size=batch_size, model_frames=model_frames, device=device,
                   trust_remote_code=trust_remote_code, no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc,
                   no_vds_budget=no_vds_budget, allow_random_fill=allow_random_fill, thumbnails=thumbnails,
                   examples=examples, progress=progress, engine=engine, address=address,
                   devices=tuple(devices) if devices is not None else None, export_context=export_context,
                   goal_set=tuple(str(p) for p in goal_set) if goal_set else None)
    if config is None:
        cfg = RunConfig.from_options(**options)
    else:
        changed = sorted(k for k, v in options.items() if v != _DEFAULTS[k])
        if changed:
            raise ValueError(f"run(config=...): options {changed} given as well; put them in the config")
        cfg = config
    progress = cfg.progress
    t_all = time.perf_counter()
    if cfg.select.goal_set:  # a bad goal set fails before any stage runs (select reads it again: small)
        from gdo.goalset import read_goal_set

        read_goal_set(list(cfg.select.goal_set), media_root=str(media_root) if media_root else None)
    out_dir = Path(out)
    pools = [str(p) for p in pools]
    if not pools:
        raise ValueError("no pool file given")
    missing = [p for p in pools if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"pool file(s) not found: {missing}")
    pcfg, scfg = cfg.profile, cfg.select
    if pcfg.model is not None and not Path(pcfg.model).exists():
        raise FileNotFoundError(f"--model {pcfg.model}: no such folder (gdo never downloads weights; "
                                "download the checkpoint first and pass its local folder)")
    from gdo.utils.io import output_dir

    output_dir(out_dir)
    timings: dict[str, float] = {}

    # 1. ingest
    _say(progress, f"[1/5] ingest: reading {len(pools)} pool file(s)")
    t0 = time.perf_counter()
    res = stages.ingest_stage(pools, out_dir, cfg.ingest, progress=progress)
    n_cands, n_rejects, files = res.candidates.num_rows, len(res.rejects), stages.pool_files(res.stats)
    del res  # the ingest table: profile maps candidates.parquet instead (driver memory, issue 17)
    timings["ingest"] = time.perf_counter() - t0
    if n_cands == 0:
        raise ValueError(f"no usable candidate in {pools}: every row was rejected (see {out_dir / 'rejects.jsonl'})")
    _say(progress, f"      {n_cands:,} candidates, {n_rejects:,} rejects "
                   f"({timings['ingest']:.1f} s)")

    # 2. profile
    _say(progress, "[2/5] profile: descriptors" + (f" with model {pcfg.model}" if pcfg.model
                                                    else " (no model: model descriptors stay null)"))
    t0 = time.perf_counter()
    stages.profile_stage(out_dir / "candidates.parquet", out_dir, pcfg)
    timings["profile"] = time.perf_counter() - t0
    _say(progress, f"      descriptors.parquet written ({timings['profile']:.1f} s)")

    # 3. select
    _say(progress, f"[3/5] select: goal {scfg.goal_label}, mode {scfg.mode}, budget {scfg.budget}")
    t0 = time.perf_counter()
    from gdo.pool.ingest import read_candidates

    cands = read_candidates(out_dir)  # what ingest wrote (gdo select reads the same from an ingest folder)
    sel = stages.select_stage(stages.Candidates(cands, n_rejects, files), out_dir / "descriptors.parquet",
                              out_dir, scfg)
    timings["select"] = time.perf_counter() - t0
    subset, baseline = sel.gdo_uids(), sel.baseline_uids()
    _say(progress, f"      subset {len(subset):,}, baseline {len(baseline):,} ({timings['select']:.1f} s)")

    # 4. export
    t0 = time.perf_counter()
    if cfg.export.formats:
        _say(progress, f"[4/5] export: {', '.join(cfg.export.formats)}")
    else:
        _say(progress, "[4/5] export: none requested (--export swift|llamafactory|llava)")
    written = stages.export_stage(cands, out_dir, cfg.export, subset, baseline, progress=progress)
    timings["export"] = time.perf_counter() - t0

    # 5. report
    _say(progress, "[5/5] report: report.html")
    t0 = time.perf_counter()
    html = stages.report_stage(out_dir, cfg.report, progress=progress)
    timings["report"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    from gdo.report import run_summary
    from gdo.utils.io import write_json_atomic

    rj = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    summary = run_summary(out_dir, n_candidates=n_cands, n_rejects=n_rejects, exports=written,
                          elapsed_s=timings["total"])
    tpath = out_dir / "timings.json"
    try:
        prev = json.loads(tpath.read_text(encoding="utf-8")) if tpath.exists() else {}
    except json.JSONDecodeError:
        prev = {}
    write_json_atomic(tpath, {**(prev if isinstance(prev, dict) else {}), "run": {k: round(v, 3) for k, v in timings.items()}})
    if progress:
        print(summary, flush=True)
    return RunResult(out_dir=out_dir, n_candidates=n_cands, n_rejects=n_rejects, subset_uids=subset,
                     baseline_uids=baseline, report_json=rj, exports=written, report_html=html, timings=timings,
                     summary=summary, config=cfg)


_DEFAULTS = {k: p.default for k, p in inspect.signature(run).parameters.items()
             if p.kind is p.KEYWORD_ONLY and k != "config"}
