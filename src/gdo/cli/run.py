"""`gdo run`: ingest -> profile -> select -> export -> report in one command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    def run_cmd(
        pools: List[Path] = typer.Argument(..., help="Pool files (JSONL, JSON, Parquet, saved HF datasets), in pool order."),
        out: Path = typer.Option(..., "--out", "-o", help="Run folder for every output file."),
        preset: str = typer.Option("temp_plus", "--preset", "-p", help="Goal preset: minloss, diverse, temp, temp_plus, target (see `gdo presets`)."),
        goal: Optional[Path] = typer.Option(None, "--goal", help="Custom goal file (TOML or YAML); overrides --preset."),
        model: Optional[Path] = typer.Option(None, "--model", help="Local VLM checkpoint folder for VDS/PPL/SC/TNC (e.g. Qwen3-VL-8B-Instruct)."),
        mode: str = typer.Option("default", "--mode", help="default (fixed pipeline) or paper (reproduce the release)."),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (results identical for any value)."),
        media_root: Optional[Path] = typer.Option(None, "--media-root", help="Folder media paths resolve against (default: each pool file's folder)."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Force the input format (default: auto-detect per file)."),
        export: List[str] = typer.Option([], "--export", "-e", help="Trainer export: swift, llamafactory, llava (repeat or comma-separate)."),
        budget: str = typer.Option("auto", "--budget", help="Subset size: auto (GDO budget) or a number."),
        seed: int = typer.Option(42, "--seed", help="Seed (clustering, model sampling, ties, baseline)."),
        frames: int = typer.Option(32, "--frames", min=1, help="Frames a video is sampled to."),
        baseline_mult: Optional[float] = typer.Option(None, "--baseline-mult", help="Uni-Nx baseline multiplier (default 10)."),
        no_vds: bool = typer.Option(False, "--no-vds", help="Ablation: drop the VDS term."),
        no_ppl: bool = typer.Option(False, "--no-ppl", help="Ablation: drop the PPL-like (naturalness) term."),
        no_sc: bool = typer.Option(False, "--no-sc", help="Ablation: drop the SC/quality term."),
        allow_random_fill: bool = typer.Option(False, "--allow-random-fill", help="Default mode: fill a short subset at random (reported)."),
        thumbnails: bool = typer.Option(True, "--thumbnails/--no-thumbnails", help="Frame thumbnails in report.html."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
        goal_set: List[Path] = typer.Option([], "--goal-set", help="Your evaluation examples (5-5,000; .txt one question "
                                            "per line, JSONL with `question`, or any pool format): select toward them "
                                            "(use with --preset target; repeat for several files)."),
    ) -> None:
        """Select a goal-specific subset of POOL... and write subset, baseline, exports and report.html."""
        from gdo.run import run

        try:
            run(pools, out, preset=preset, goal=goal, model=model, mode=mode, workers=workers, media_root=media_root,
                fmt=fmt, exports=export, budget=budget, seed=seed, frames=frames, baseline_mult=baseline_mult,
                no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc, allow_random_fill=allow_random_fill,
                thumbnails=thumbnails, progress=not quiet, goal_set=[str(p) for p in goal_set] or None)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"gdo run: error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo(f"gdo run: interrupted; finished descriptor shards are kept in {out}: run the same "
                       "command again to resume", err=True)
            raise typer.Exit(130) from None
