"""`gdo compare`: peak match, reduction and deltas of a GDO training run against its baseline."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def _floats(text: Optional[str], opt: str) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        typer.echo(f"error: {opt} must be comma-separated numbers, got {text!r}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command("compare")
    def compare_cmd(
        csv: Optional[Path] = typer.Argument(
            None, help="Curves CSV with columns run,samples_seen,benchmark,accuracy (or use --gdo/--baseline)."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for compare.json and compare.html."),
        gdo: Optional[Path] = typer.Option(None, "--gdo", help="lmms-eval output folder of the GDO run (one results JSON per checkpoint)."),
        baseline: Optional[Path] = typer.Option(None, "--baseline", help="lmms-eval output folder of the baseline run."),
        start: Optional[Path] = typer.Option(None, "--start", help="lmms-eval results of the base model (samples seen 0, shared by both runs)."),
        gdo_batch_size: Optional[int] = typer.Option(None, "--gdo-batch-size", min=1, help="GDO run's global batch size: samples seen = checkpoint step x this."),
        baseline_batch_size: Optional[int] = typer.Option(None, "--baseline-batch-size", min=1, help="Baseline run's global batch size."),
        gdo_samples: Optional[str] = typer.Option(None, "--gdo-samples", help="Explicit samples seen per GDO checkpoint, comma-separated, ascending step order."),
        baseline_samples: Optional[str] = typer.Option(None, "--baseline-samples", help="Explicit samples seen per baseline checkpoint."),
        gdo_run: str = typer.Option("gdo", "--gdo-run", help="Name of the GDO run in the CSV."),
        baseline_run: str = typer.Option("baseline", "--baseline-run", help="Name of the baseline run in the CSV."),
        baseline_size: Optional[float] = typer.Option(None, "--baseline-size", help="Samples in the baseline's training set (default: its last checkpoint's samples seen)."),
        margin: float = typer.Option(1.0, "--margin", min=0.0, help="Percentage points the baseline must gain over the start to count as learned."),
        scale: str = typer.Option("auto", "--scale", help="Accuracy scale: auto (fraction when all values are in [0,1]) | fraction | percent."),
        metric: List[str] = typer.Option([], "--metric", help="TASK=METRIC: the lmms-eval metric to read for a task (repeatable)."),
    ) -> None:
        """Compare a GDO run with its baseline: best/final accuracy, deltas, peak match, reduction, validity.

        Writes OUT/compare.json and OUT/compare.html (self-contained, offline).
        """
        from gdo.compare import CompareError, run_compare

        metrics: dict[str, str] = {}
        for m in metric:
            if "=" not in m:
                typer.echo(f"error: --metric must be TASK=METRIC, got {m!r}", err=True)
                raise typer.Exit(2)
            k, v = m.split("=", 1)
            metrics[k.strip()] = v.strip()
        try:
            res = run_compare(out, csv=csv, gdo=gdo, baseline=baseline, start=start, gdo_run=gdo_run,
                              baseline_run=baseline_run, gdo_batch_size=gdo_batch_size,
                              baseline_batch_size=baseline_batch_size,
                              gdo_samples=_floats(gdo_samples, "--gdo-samples"),
                              baseline_samples=_floats(baseline_samples, "--baseline-samples"),
                              baseline_size=baseline_size, margin=margin, scale=scale, metric=metrics or None)
        except CompareError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        g, b = res["gdo_run"], res["baseline_run"]
        typer.echo(f"{'benchmark':<16} {g + ' best':>10} {b + ' best':>14} {'d final':>8} {'peak match':>12} {'reduction':>9}  validity")
        for r in res["benchmarks"]:
            pm = "-" if r["peak_match"] is None else f"{r['peak_match']:,.0f}" + ("<=" if r["peak_match_bound"] == "upper" else "")
            red = "-" if r["reduction"] is None else f"{r['reduction']:.1f}x"
            val = {True: "ok", False: "INVALID", None: "unknown"}[r["valid"]]
            typer.echo(f"{r['benchmark']:<16} {r['gdo']['best']:>10.2f} {r['baseline']['best']:>14.2f} "
                       f"{r['delta_final']:>+8.2f} {pm:>12} {red:>9}  {val}")
            for n in r["notes"]:
                typer.echo(f"  note: {n}")
        for w in res["warnings"]:
            typer.echo(f"warning: {w}", err=True)
        typer.echo(f"wrote {out / 'compare.json'} and {out / 'compare.html'}")
