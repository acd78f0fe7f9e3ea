"""`gdo select POOL... --descriptors FILE --preset NAME|--goal FILE --out DIR`: goal-driven subset + Uni-Nx baseline."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


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
        preset: Optional[str] = typer.Option(None, "--preset", "-p", help="minloss, diverse, temp, temp_plus or target."),
        goal: Optional[Path] = typer.Option(None, "--goal", "-g", help="Custom goal file (.toml/.yaml)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        mode: str = typer.Option("default", "--mode", help="default (flaws fixed) or paper (the release exactly)."),
        seed: int = typer.Option(42, "--seed", help="Seed of tie draws, random fill and the baseline."),
        budget: str = typer.Option("auto", "--budget", help="auto, or a fixed subset size."),
        baseline_mult: Optional[float] = typer.Option(None, "--baseline-mult", help="Uni-Nx multiplier (default 10)."),
        allow_random_fill: bool = typer.Option(False, "--allow-random-fill",
                                               help="Default mode: fill a short subset at random (paper mode always does)."),
        no_vds: bool = typer.Option(False, "--no-vds", help="Ablation: drop the VDS term."),
        no_ppl: bool = typer.Option(False, "--no-ppl", help="Ablation: drop the PPL-like (naturalness) term."),
        no_sc: bool = typer.Option(False, "--no-sc", help="Ablation: drop the SC/quality term."),
        media_root: Optional[Path] = typer.Option(None, "--media-root", help="As in `gdo ingest` (media are never opened)."),
        format: Optional[str] = typer.Option(None, "--format", help="Force a row format (as in `gdo ingest`)."),
        goal_set: List[Path] = typer.Option([], "--goal-set", help="Your evaluation examples (5-5,000; .txt one question "
                                            "per line, JSONL with `question`, or any pool format): select toward them, "
                                            "using the embeddings.parquet beside --descriptors (repeatable)."),
        embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="The pool's embedding store (default: "
                                                  "embeddings.parquet beside --descriptors)."),
        workers: int = typer.Option(0, "--workers", min=0,
                                    help="Processes parsing large pool files (0 = one per CPU); output identical for any N."),
    ) -> None:
        """Select a goal-driven subset and its equal-protocol random baseline. Never opens media files."""
        from gdo.selection.descriptors_io import DescriptorError
        from gdo.selection.goal import GoalError
        from gdo.goalset import GoalSetError
        from gdo.selection.select import SelectionError, run_select

        if (preset is None) == (goal is None):
            typer.echo("error: give exactly one of --preset and --goal", err=True)
            raise typer.Exit(2)
        if mode not in ("default", "paper"):
            typer.echo(f"error: --mode must be default or paper, not {mode!r}", err=True)
            raise typer.Exit(2)
        bud: int | str = "auto"
        if budget != "auto":
            try:
                bud = int(budget)
                if bud < 0:
                    raise ValueError
            except ValueError:
                typer.echo(f"error: --budget must be auto or a non-negative integer, not {budget!r}", err=True)
                raise typer.Exit(2)
        cands = None
        rejects = None
        pools = [str(p) for p in pool]
        missing = [p for p in pools if not Path(p).exists()]
        if missing:
            typer.echo(f"error: pool file not found: {', '.join(missing)}", err=True)
            raise typer.Exit(2)
        if len(pool) == 1 and (pool[0].name == "candidates.parquet" or (pool[0] / "candidates.parquet").exists()):
            from gdo.pool.ingest import read_candidates

            cp = pool[0] if pool[0].name == "candidates.parquet" else pool[0] / "candidates.parquet"
            cands = read_candidates(cp)
            pools = sorted(set(cands["source_file"].to_pylist())) if cands.num_rows else []
            rej_path = cp.parent / "rejects.jsonl"
            if rej_path.exists():  # the ingest rejects of this pool, counted in report.json
                with open(rej_path, "rb") as f:
                    rejects = sum(1 for line in f if line.strip())
        try:
            res = run_select(pools, descriptors, out, preset=preset, goal=goal, candidates=cands,
                             ingest_rejects=rejects, mode=mode, seed=seed, budget=bud, baseline_mult=baseline_mult,
                             allow_random_fill=allow_random_fill, no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc,
                             media_root=str(media_root) if media_root else None, fmt=format, workers=workers,
                             goal_set=[str(p) for p in goal_set] or None, embeddings=embeddings)
        except (SelectionError, GoalError, GoalSetError, DescriptorError, KeyError, FileNotFoundError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            typer.echo(f"error: {msg}", err=True)
            raise typer.Exit(2)
        r = res.report
        b = r["budget"]
        acc = r["accounting"]
        typer.echo(f"pool {acc['candidates_in_pool']:,} candidates; budget n = {b['n']:,} ({b.get('mode')}); "
                   f"selected {acc['selected']:,}, baseline {acc['baseline_selected']:,}")
        if b["n"] == 0 and acc["candidates_in_pool"] > 0:
            typer.echo("note: the auto budget is 0 (the pool is small for this goal's max_ratio); "
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
        typer.echo(f"wrote {out}/subset.jsonl, baseline.jsonl, selection.jsonl, report.json")
