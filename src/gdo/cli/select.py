"""`gdo select POOL... --descriptors FILE --preset NAME|--goal FILE --out DIR`: goal-driven subset + Uni-Nx baseline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from gdo.cli import options


def register(app: typer.Typer) -> None:
    """Add the ``select`` command to ``app``."""

    @app.command("select")
    def select_cmd(
        pool: List[Path] = typer.Argument(..., help="Pool files (JSONL, JSON, Parquet, HF dataset folders), or a "
                                                    "candidates.parquet written by `gdo ingest`."),
        descriptors: Optional[Path] = typer.Option(
            None, "--descriptors", "-d",
            help="descriptors.parquet, the GDO release's merged metrics JSONL, or its raw shard folder "
                 "(sixd_metrics_rank*.jsonl). Without it every candidate counts as having no descriptor row."),
        preset: Optional[str] = options.preset(),
        goal: Optional[Path] = options.goal(),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        mode: str = options.mode(),
        seed: int = options.seed("Seed of tie draws, random fill and the baseline."),
        budget: str = options.budget(),
        baseline_mult: Optional[float] = options.baseline_mult(),
        allow_random_fill: bool = options.allow_random_fill(),
        no_vds: bool = options.no_vds(),
        no_ppl: bool = options.no_ppl(),
        no_sc: bool = options.no_sc(),
        no_vds_budget: bool = options.no_vds_budget(),
        media_root: Optional[Path] = options.media_root("As in `gdo ingest` (media are never opened)."),
        format: Optional[str] = options.fmt(),
        strict: bool = typer.Option(False, "--strict", help="Exit with status 3 when a constraint is unmet."),
        goal_set: List[Path] = typer.Option([], "--goal-set", help="Your evaluation examples (5-5,000; .txt one question "
                                            "per line, JSONL with `question`, or any pool format): select toward them, "
                                            "using the embeddings.parquet beside --descriptors (repeatable)."),
        embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="The pool's embedding store (default: "
                                                  "embeddings.parquet beside --descriptors)."),
        model: Optional[Path] = typer.Option(None, "--model", help="With --goal-set whose items carry media: the "
                                             "model the pool was profiled with, to embed the goal items in its "
                                             "hidden-state space (the 'model' relevance space; runs on the goal "
                                             "items only, never on the pool)."),
        device: str = options.device(),
        batch_size: int = options.batch_size(),
        trust_remote_code: bool = options.trust_remote_code(),
        workers: int = typer.Option(0, "--workers", min=0,
                                    help="Processes parsing large pool files (0 = one per CPU); output identical for any N."),
    ) -> None:
        """Select a goal-driven subset and its equal-protocol random baseline. Never opens media files."""
        from gdo import stages
        from gdo.config import IngestConfig, SelectConfig

        try:
            cfg = SelectConfig.make(preset=preset, goal=goal, mode=mode, seed=seed, budget=budget,
                                    baseline_mult=baseline_mult, allow_random_fill=allow_random_fill,
                                    no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc, no_vds_budget=no_vds_budget,
                                    goal_set=goal_set or None, embeddings=embeddings, model=model,
                                    device=device, batch_size=batch_size, trust_remote_code=trust_remote_code)
            if model is not None and not (Path(model) / "config.json").is_file():
                raise ValueError(f"--model {model}: not a model folder (no config.json); gdo never downloads weights")
            if model is not None and not cfg.goal_set and not _goal_has_set(cfg):
                typer.echo("note: --model is used only with a goal set (--goal-set, or goal_set in the goal file); "
                           "ignored", err=True)
            icfg = IngestConfig.make(media_root=media_root, fmt=format, workers=workers, probe_media=False,
                                     media_columns=False)
            t0 = time.perf_counter()
            cands = stages.load_candidates(pool, icfg)
            res = stages.select_stage(cands, descriptors, out, cfg, timings={"ingest": time.perf_counter() - t0})
        except (ValueError, KeyError, FileNotFoundError) as e:  # ConfigError, SelectionError, GoalError, ...
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            typer.echo(f"error: {msg}", err=True)
            raise typer.Exit(2)
        from gdo.utils.io import write_parquet_atomic

        write_parquet_atomic(Path(out) / "scores.parquet", res.scores_table())  # report.html's "why not picked"
        r = res.report
        b = r["budget"]
        acc = r["accounting"]
        typer.echo(f"pool {acc['candidates_in_pool']:,} candidates; budget n = {b['n']:,} ({b.get('mode')}); "
                   f"selected {acc['selected']:,}, baseline {acc['baseline_selected']:,}")
        if b["n"] == 0 and acc["candidates_in_pool"] > 0:
            typer.echo("note: --budget 0: the subset and the baseline are empty (nothing to train on)"
                       if b.get("mode") == "fixed" else
                       "note: the auto budget is 0 (the pool is small for this goal's max_ratio); "
                       "pass --budget N to choose a size", err=True)
        typer.echo("stages: " + ", ".join(f"{k}={v}" for k, v in sorted(r["stages"]["gdo"].items())))
        for c in r["constraints"]:
            name = c["name"] + (f"[{c['group']}]" if "group" in c else "")
            status = "met" if c["met"] else f"UNMET by {c['shortfall']}"
            typer.echo(f"  {name}: required {c['kind']} {c['required']}, available {c['available']}, "
                       f"achieved {c['achieved']} -> {status}")
        req = b.get("requested")
        if isinstance(req, int) and req > b["n"]:
            typer.echo(f"note: --budget {req:,} capped at {b['n']:,} (the pool size)", err=True)
        if 0 < acc["selected"] < b["n"] and not allow_random_fill and mode == "default":
            typer.echo(f"note: the subset holds {acc['selected']:,} of the budget {b['n']:,}: the remaining "
                       "candidates are ineligible (dedup, per-video cap, video-share bounds) or outside the "
                       "per-stratum shortlists; --allow-random-fill fills the rest at random", err=True)
        if "goal" in r:
            gr = r["goal"]
            ns = gr["near_share"]
            typer.echo(f"goal set: {gr['items']} items, spaces {', '.join(gr['spaces'])}; near the goal: subset "
                       f"{ns['subset']}, pool {ns['pool']}, baseline {ns['baseline']}")
            for note in gr["notes"]:
                typer.echo(f"note: {note}", err=True)
        if b.get("nonempty_rule"):
            typer.echo(f"note: {b['nonempty_rule']} (n = {b['n']})", err=True)
        from gdo.report.html import run_warnings

        for w in run_warnings(r):
            typer.echo(f"warning: {w['title']}: {w['text']}", err=True)
        typer.echo(f"wrote {out}/" + ", ".join(stages.SELECT_FILES))
        unmet = [c for c in r["constraints"] if not c["met"]]
        if strict and unmet:
            typer.echo(f"error: --strict: {len(unmet)} constraint(s) unmet", err=True)
            raise typer.Exit(3)


def _goal_has_set(cfg) -> bool:
    """Whether the goal file of ``cfg`` names a goal set (``goal_set`` key)."""
    if cfg.goal is None:
        return False
    from gdo.selection.goalfile import load_goal

    return bool(load_goal(cfg.goal).goal_set)
