"""`gdo train-plan RUN_DIR`: ms-swift / LLaMA-Factory / lmms-eval commands for the paper's contract."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``train-plan`` command to ``app``."""

    @app.command("train-plan")
    def train_plan_cmd(
        run_dir: Path = typer.Argument(..., help="A gdo run folder with exports/ (gdo run --export swift|llamafactory)."),
        model: str = typer.Option("Qwen/Qwen3-VL-8B-Instruct", "--model", help="Base checkpoint (hub id or local folder) of both runs."),
        gpus: int = typer.Option(1, "--gpus", min=1, help="Devices per run (batch 1 per device)."),
        grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Gradient accumulation steps (the paper: 1)."),
        trainer: str = typer.Option("both", "--trainer", help="swift | llamafactory | both."),
        output_root: Optional[Path] = typer.Option(None, "--output-root", help="Checkpoint folder (default RUN_DIR/train)."),
        eval_root: Optional[Path] = typer.Option(None, "--eval-root", help="lmms-eval output folder (default RUN_DIR/eval)."),
        template: str = typer.Option("qwen3_vl", "--template", help="LLaMA-Factory template."),
        lmms_model: str = typer.Option("qwen3_vl", "--lmms-model", help="lmms-eval model name."),
        tasks: str = typer.Option("mvbench,videomme,mlvu_test,lvbench", "--tasks", help="lmms-eval tasks."),
        deepspeed: Optional[str] = typer.Option(None, "--deepspeed", help="DeepSpeed config passed to the trainer."),
        as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    ) -> None:
        """Print the training (ms-swift, LLaMA-Factory) and lmms-eval commands for subset and baseline."""
        import json

        from gdo.trainplan import TrainPlanError, build_train_plan, render_train_plan

        if trainer not in ("swift", "llamafactory", "both"):
            typer.echo(f"error: --trainer must be swift, llamafactory or both, not {trainer!r}", err=True)
            raise typer.Exit(2)
        try:
            plan = build_train_plan(run_dir, model=model, gpus=gpus, grad_accum=grad_accum, output_root=output_root,
                                    eval_root=eval_root, template=template, lmms_model=lmms_model,
                                    tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()), deepspeed=deepspeed)
        except (TrainPlanError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps(plan, indent=2) if as_json else render_train_plan(plan, trainer))
