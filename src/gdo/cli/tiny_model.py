"""`gdo tiny-model DIR`: write a tiny offline Qwen2-VL-architecture model (smoke test of an install)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``tiny-model`` command to app."""

    @app.command("tiny-model")
    def tiny_model(
        out_dir: Path = typer.Argument(..., help="Folder to write the model, processor and tokenizer to."),
        seed: int = typer.Option(0, help="Seed of the random weight initialisation."),
        check: bool = typer.Option(
            True, "--check/--no-check", help="Reload the folder and score one image+question to check the install."
        ),
    ) -> None:
        """Build a tiny random Qwen2-VL model offline (no download, no GPU) and optionally check it loads.

        The folder loads with transformers' AutoModelForImageTextToText / AutoProcessor and can be
        passed to `gdo profile --model DIR`. Its descriptor values are meaningless (untrained).
        """
        import time

        import numpy as np
        from transformers.utils import logging as hf_logging

        from gdo.models.tiny import build_tiny_model

        hf_logging.disable_progress_bar()
        from transformers import Qwen2VLForConditionalGeneration  # noqa: F401  (import outside the timing)

        t0 = time.perf_counter()
        path = build_tiny_model(out_dir, seed=seed)
        built = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        typer.echo(f"wrote tiny Qwen2-VL model to {path} ({size / 1024:.0f} KiB, built in {built:.2f} s)")
        if check:
            from gdo.models.hf import VLMItem, VLMScorer

            scorer = VLMScorer(path, device="cpu", batch_size=2)
            img = (np.arange(32 * 32 * 3, dtype=np.uint32).reshape(32, 32, 3) % 256).astype(np.uint8)
            lv, lb = scorer.losses([VLMItem("What colour is this image?", "Red.", images=[img])])
            if not (np.isfinite(lv[0]) and np.isfinite(lb[0])):
                typer.echo(f"check failed: {scorer.errors}", err=True)
                raise typer.Exit(1)
            typer.echo(f"check ok: loss_video={lv[0]:.4f} loss_blind={lb[0]:.4f} nats/token")
