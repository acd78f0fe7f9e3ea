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
        engine: str = typer.Option("local", "--engine", help="local (processes on this machine) | ray (Ray Data; "
                                   "pip install 'gdo[ray]'). Output identical."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (auto | HOST:PORT | "
                                              "ray://HOST:10001); default: start a local Ray."),
        devices: Optional[str] = typer.Option(None, "--devices", help="GPUs for model actors, e.g. 0,1,2,3 "
                                              "(--engine ray: one actor per GPU; default all visible)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the cost estimate (candidates, videos, model "
                                     "calls, prompt tokens, CPU/GPU-hours) and exit without profiling."),
        model_size: Optional[float] = typer.Option(None, "--model-size", help="--dry-run: model size in billions "
                                                   "of parameters for GPU-hours (e.g. 8)."),
        gpu: str = typer.Option("h100", "--gpu", help="--dry-run: GPU kind (h100, h200, a100, l40s, a10, l4)."),
        gpus: int = typer.Option(1, "--gpus", min=1, help="--dry-run: GPUs for the wall-clock figure."),
        json_out: bool = typer.Option(False, "--json", help="--dry-run: print the estimate as JSON."),
    ) -> None:
        """Compute descriptors (motion, stratum fields, TNC, embeddings, clusters, near-duplicates)."""
        from pydantic import ValidationError

        from gdo.descriptors.config import ProfileConfig
        from gdo.descriptors.profile import ShardsFailedError, profile

        missing = [str(p) for p in pool if not Path(p).exists()]
        if missing:
            typer.echo(f"error: pool file not found: {', '.join(missing)}", err=True)
            raise typer.Exit(2)
        try:
            dev = tuple(int(d) for d in devices.split(",") if d.strip()) if devices else None
        except ValueError:
            typer.echo(f"error: --devices must be GPU indices like 0,1, not {devices!r}", err=True)
            raise typer.Exit(2)
        try:
            cfg = ProfileConfig(descriptors=descriptors, workers=workers, mode=mode, model=model, frames=frames,
                                k=k, seed=seed, progress=progress, visual_encoder=visual_encoder,
                                text_encoder=text_encoder, model_batch_size=batch_size, device=device,
                                trust_remote_code=trust_remote_code, model_frames=model_frames, engine=engine,
                                address=address, devices=dev)
        except ValidationError as e:
            msgs = "; ".join(f"--{'-'.join(str(x) for x in err['loc']).replace('_', '-')}: "
                             f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors())
            typer.echo(f"error: {msgs}", err=True)
            raise typer.Exit(2)
        if dry_run:
            _dry_run(pool, out, cfg, media_root, format, model_size, gpu, gpus, json_out)
            return
        if engine == "ray":
            try:
                import ray.data  # noqa: F401
            except ImportError:
                from gdo.engine.ray import INSTALL_HINT

                typer.echo(f"error: {INSTALL_HINT}", err=True)
                raise typer.Exit(2)
        if model is None:
            typer.echo("note: no --model given: only the model-free descriptors run "
                       "(loss_video, loss_blind, vds, ppl, sc, tnc_judge stay null).", err=True)
        try:
            table = profile(pool, out, config=cfg, media_root=media_root, fmt=format)
        except ShardsFailedError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1)
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


def _dry_run(pool, out, cfg, media_root, fmt, model_size, gpu, gpus, json_out) -> None:
    """Print :func:`gdo.engine.cost.estimate` for the pool; reads candidates without opening media
    (reuses OUT/candidates.parquet, else a lean ingest: no media probing, nothing written)."""
    import orjson
    import pyarrow.parquet as pq

    import os

    from gdo.engine.cost import estimate, format_estimate, load_processor_async

    get_proc = load_processor_async(cfg.model, cfg.trust_remote_code) if cfg.model is not None else None
    paths = [Path(p) for p in pool]
    if len(paths) == 1 and paths[0].name == "candidates.parquet":
        cands = pq.read_table(paths[0])
    elif (Path(out) / "candidates.parquet").exists() and (Path(out) / ".gdo" / "ingest.json").exists():
        cands = pq.read_table(Path(out) / "candidates.parquet")
    else:
        from gdo.pool.ingest import ingest

        cands = ingest([str(p) for p in paths], media_root=media_root, fmt=fmt, frames=cfg.frames,
                       probe_media=False, media_columns=False,
                       workers=max(cfg.workers, min(4, os.cpu_count() or 1))).candidates
    try:
        e = estimate(cands, frames=cfg.frames, model=cfg.model, model_frames=cfg.model_frames, model_size_b=model_size,
                     gpu=gpu, gpus=gpus, cpus=cfg.workers, text_encoder=cfg.text_encoder,
                     batch_size=cfg.model_batch_size, trust_remote_code=cfg.trust_remote_code,
                     processor=get_proc() if get_proc is not None else None)
    except (ValueError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    typer.echo(orjson.dumps(e, option=orjson.OPT_INDENT_2).decode() if json_out else format_estimate(e))
