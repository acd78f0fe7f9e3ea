"""`gdo report`: write a self-contained DIR/report.html from a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gdo.cli import options


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command("report")
    def report_cmd(
        run_dir: Path = typer.Argument(..., help="Run folder with report.json and selection.jsonl (from `gdo select` or `gdo run`)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default DIR/report.html)."),
        candidates: Optional[Path] = typer.Option(None, "--candidates", help="candidates.parquet (default DIR/candidates.parquet)."),
        descriptors: Optional[Path] = typer.Option(None, "--descriptors", help="descriptors.parquet (default DIR/descriptors.parquet)."),
        examples: int = options.examples(),
        thumbnails: bool = options.thumbnails(),
    ) -> None:
        """Plots (pool vs subset vs baseline), budget math, constraint status, top/bottom candidates."""
        from gdo import stages
        from gdo.config import ReportConfig

        try:
            cfg = ReportConfig.make(examples=examples, thumbnails=thumbnails)
            path = stages.report_stage(run_dir, cfg, out_path=out, candidates_path=candidates,
                                       descriptors_path=descriptors, progress=True)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"gdo report: error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(str(path))
