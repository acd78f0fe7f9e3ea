"""`gdo ingest POOL... --out DIR`: pool files -> candidates.parquet, rejects.jsonl, ingest.json."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gdo.cli import options


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to ``app``."""

    @app.command("ingest")
    def ingest_cmd(
        pool: List[Path] = typer.Argument(..., help="Pool files (JSONL, JSON, Parquet) or saved HF dataset folders."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        media_root: Optional[Path] = options.media_root(),
        format: Optional[str] = options.fmt(),
        frames: int = options.frames(),
        workers: int = typer.Option(1, "--workers", min=1, help="Processes for large JSONL files."),
        no_probe: bool = typer.Option(False, "--no-probe", help="Do not open media files (no checks, null video facts)."),
    ) -> None:
        """Read instruction pools into candidates: one per (user, assistant) turn pair."""
        from gdo import stages
        from gdo.config import IngestConfig

        try:
            cfg = IngestConfig.make(media_root=media_root, fmt=format, frames=frames, workers=workers,
                                    probe_media=not no_probe)
            res = stages.ingest_stage(pool, out, cfg)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        t = res.stats["totals"]
        for f, s in res.stats["files"].items():
            extra = f", file rejected: {s['file_reject']}" if "file_reject" in s else ""
            typer.echo(f"{f} [{s['format']}]: {s['rows_read']} rows, {s['candidates']} candidates, "
                       f"{s['rows_rejected']} rows rejected{extra}")
        reasons = ", ".join(f"{k}={v}" for k, v in t["rejects_by_reason"].items()) or "none"
        typer.echo(f"total: {t['rows_read']} rows, {t['candidates']} candidates, {t['rows_rejected']} rows rejected "
                   f"({reasons}); uid collisions: {res.stats['uid_collisions']}; wrote {out}")
        if res.candidates.num_rows == 0:
            typer.echo("error: nothing usable was read: no candidate in any pool file (see "
                       f"{out / 'rejects.jsonl'})", err=True)
            raise typer.Exit(1)
