"""`gdo run`: ingest -> profile -> select -> export -> report in one command.

It takes every option of the stages it chains (`gdo ingest`, `gdo profile`, `gdo select`, `gdo report`);
they are validated once into a frozen :class:`gdo.config.RunConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gdo.cli import options


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    def run_cmd(
        pools: List[Path] = typer.Argument(..., help="Pool files (JSONL, JSON, Parquet, saved HF datasets), in pool order."),
        out: Path = typer.Option(..., "--out", "-o", help="Run folder for every output file."),
        preset: Optional[str] = options.preset("Goal preset: minloss, diverse, temp, temp_plus, target (default temp_plus; see `gdo presets`)."),
        goal: Optional[Path] = options.goal(),
        model: Optional[Path] = options.model(),
        mode: str = options.mode(),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (results identical for any value)."),
        media_root: Optional[Path] = options.media_root(),
        fmt: Optional[str] = options.fmt(),
        export: List[str] = typer.Option([], "--export", "-e", help="Trainer export: swift, llamafactory, llava (repeat or comma-separate)."),
        export_context: bool = typer.Option(False, "--export-context",
                                            help="Exports keep the earlier turns of a multi-turn row before the chosen turn."),
        strict: bool = typer.Option(False, "--strict", help="Exit with status 3 when a constraint is unmet."),
        budget: str = options.budget(),
        seed: int = options.seed(),
        frames: int = options.frames(),
        baseline_mult: Optional[float] = options.baseline_mult(),
        descriptors: Optional[str] = typer.Option(
            None, "--descriptors", help="Descriptor groups to compute, comma-separated (default: all; see `gdo profile`)."),
        k: Optional[int] = options.k(),
        visual_encoder: Optional[Path] = options.visual_encoder(),
        text_encoder: str = options.text_encoder(),
        batch_size: int = options.batch_size(),
        model_frames: Optional[int] = options.model_frames(),
        device: str = options.device(),
        trust_remote_code: bool = options.trust_remote_code(),
        no_vds: bool = options.no_vds(),
        no_ppl: bool = options.no_ppl(),
        no_sc: bool = options.no_sc(),
        no_vds_budget: bool = options.no_vds_budget(),
        allow_random_fill: bool = options.allow_random_fill(),
        thumbnails: bool = options.thumbnails(),
        examples: int = options.examples(),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
        engine: str = typer.Option("local", "--engine", help="Profile engine: local | ray (pip install 'gdo[ray]'); output identical."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)."),
        devices: Optional[str] = typer.Option(None, "--devices", help="GPUs for model actors with --engine ray, e.g. 0,1."),
        goal_set: List[Path] = typer.Option([], "--goal-set", help="Your evaluation examples (5-5,000; .txt one question "
                                            "per line, JSONL with `question`, or any pool format): select toward them "
                                            "(use with --preset target; repeat for several files)."),
    ) -> None:
        """Select a goal-specific subset of POOL... and write subset, baseline, exports and report.html."""
        from gdo.config import RunConfig
        from gdo.run import run

        try:
            cfg = RunConfig.from_options(
                preset=preset, goal=goal, model=model, mode=mode, workers=workers, media_root=media_root, fmt=fmt,
                exports=export, budget=budget, seed=seed, frames=frames, baseline_mult=baseline_mult,
                descriptors=descriptors, k=k, visual_encoder=visual_encoder, text_encoder=text_encoder,
                batch_size=batch_size, model_frames=model_frames, device=device,
                trust_remote_code=trust_remote_code, no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc, no_vds_budget=no_vds_budget,
                allow_random_fill=allow_random_fill, thumbnails=thumbnails, examples=examples, progress=not quiet,
                engine=engine, address=address,
                devices=[int(d) for d in devices.split(",") if d.strip()] if devices else None,
                export_context=export_context, goal_set=goal_set or None)
            res = run(pools, out, config=cfg)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            typer.echo(f"gdo run: error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo(f"gdo run: interrupted; finished descriptor shards are kept in {out}: run the same "
                       "command again to resume", err=True)
            raise typer.Exit(130) from None
        unmet = [c for c in (res.report_json or {}).get("constraints", []) if isinstance(c, dict) and c.get("met") is False]
        if strict and unmet:
            typer.echo(f"gdo run: --strict: {len(unmet)} constraint(s) unmet (see report.html)", err=True)
            raise typer.Exit(3)
