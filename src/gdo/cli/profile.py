"""`gdo profile POOL... --out DIR`: descriptors of every candidate -> DIR/descriptors.parquet (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``profile`` command to ``app``."""

    @app.command("profile")
    def profile_cmd(
        pool: List[Path] = typer.Argument(
            ..., help="Pool files (ingested first; DIR/candidates.parquet is reused when it matches), "
                      "or one candidates.parquet."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        descriptors: Optional[str] = typer.Option(
            None, "--descriptors",
            help="Comma-separated groups: fields,motion,embeddings,cluster,dedup (default: all)."),
        workers: int = typer.Option(1, "--workers", min=1, help="Processes decoding media (output identical for any N)."),
        mode: str = typer.Option("default", "--mode", help="default | paper (reproduce the released pipeline)."),
        model: Optional[Path] = typer.Option(
            None, "--model", help="Local VLM folder: also compute loss_video, loss_blind, vds, ppl, sc, tnc_judge."),
        media_root: Optional[Path] = typer.Option(None, "--media-root", help="Root media paths are confined to."),
        frames: int = typer.Option(32, "--frames", min=1, help="T: frames a video is sampled to."),
        k: Optional[int] = typer.Option(None, "--k", min=1, help="Clusters (default min(4096, max(2, round(sqrt(N/2)))))."),
        seed: int = typer.Option(42, "--seed", help="Seed of clustering and the model stage."),
        visual_encoder: Optional[Path] = typer.Option(
            None, "--visual-encoder", help="Local CLIP/SigLIP folder for visual embeddings (default: weight-free features)."),
        text_encoder: str = typer.Option(
            "minilm", "--text-encoder", help="minilm (all-MiniLM-L6-v2, offline) | hashing | local sentence-transformers folder."),
        format: Optional[str] = typer.Option(None, "--format", help="Force the pool row format (ingest)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Model batch size (with --model)."),
        model_frames: Optional[int] = typer.Option(
            None, "--model-frames", min=1, help="Frames per video the model sees (default: --frames)."),
        device: str = typer.Option("auto", "--device", help="Model device: auto | cpu | cuda."),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own code (explicit opt-in)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    ) -> None:
        """Compute descriptors (motion, stratum fields, TNC, embeddings, clusters, near-duplicates)."""
        from gdo.descriptors.profile import profile

        if mode not in ("default", "paper"):
            typer.echo(f"error: --mode must be default or paper, not {mode!r}", err=True)
            raise typer.Exit(2)
        missing = [str(p) for p in pool if not Path(p).exists()]
        if missing:
            typer.echo(f"error: pool file not found: {', '.join(missing)}", err=True)
            raise typer.Exit(2)
        groups = [g.strip() for g in descriptors.split(",") if g.strip()] if descriptors else None
        if model is None:
            typer.echo("note: no --model given: only the model-free descriptors run "
                       "(loss_video, loss_blind, vds, ppl, sc, tnc_judge stay null).", err=True)
        try:
            table = profile(pool, out, descriptors=groups, workers=workers, mode=mode, model=model,
                            media_root=media_root, frames=frames, k=k, seed=seed, progress=progress,
                            visual_encoder=visual_encoder, text_encoder=text_encoder, fmt=format,
                            model_batch_size=batch_size, device=device, trust_remote_code=trust_remote_code,
                            model_frames=model_frames)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            typer.echo(f"interrupted: finished shards are kept in {out}; run the same command again to resume",
                       err=True)
            raise typer.Exit(130)
        errs = sum(e is not None for e in table.column("media_error").to_pylist())
        typer.echo(f"profiled {table.num_rows} candidates -> {Path(out) / 'descriptors.parquet'}"
                   + (f" ({errs} with unreadable media: see the media_error column)" if errs else ""))
