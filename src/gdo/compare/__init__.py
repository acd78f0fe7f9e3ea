"""``gdo compare``: the paper's comparison of a GDO training run against its baseline.

``run_compare`` reads per-checkpoint evaluation results (a curves CSV, or lmms-eval output
folders), computes per benchmark best/final accuracy, deltas, peak match, reduction and validity
(``gdo.compare.curves``), and writes ``compare.json`` and a self-contained ``compare.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from gdo.compare.curves import (
    DEFAULT_MARGIN_PP,
    CompareError,
    Curve,
    compare_benchmark,
    compare_curves,
    peak_match,
    to_percent,
)
from gdo.compare.readers import group_rows, read_curves_csv, read_lmms_eval
from gdo.utils.io import write_json_atomic, write_text_atomic


def curves_from_rows(rows: Sequence[tuple[str, str, float, float, str]], *, scale: str = "auto"
                     ) -> tuple[list[Curve], dict[str, str], dict[str, tuple[float, float]]]:
    """Turn ``(run, benchmark, samples_seen, accuracy, source)`` rows into percent curves.

    The scale is decided per benchmark over both runs (``to_percent``). Rows at samples_seen 0
    from a run named ``start`` become the benchmark's starting point and no curve.

    Returns:
        (curves, benchmark -> scale used, benchmark -> starting point (0, accuracy %)).

    Raises:
        CompareError: see ``to_percent`` and ``Curve``.
    """
    by_bench: dict[str, list[tuple[str, str, float, float, str]]] = {}
    for r in rows:
        by_bench.setdefault(r[1], []).append(r)
    scaled: list[tuple[str, str, float, float, str]] = []
    scales: dict[str, str] = {}
    for bench, rs in by_bench.items():
        try:
            vals, used = to_percent([r[3] for r in rs], scale)
        except CompareError as e:
            raise CompareError(f"benchmark {bench!r}: {e}") from None
        scales[bench] = used
        scaled += [(r[0], r[1], r[2], v, r[4]) for r, v in zip(rs, vals)]
    starts: dict[str, tuple[float, float]] = {}
    curves = []
    for (run, bench), pts in sorted(group_rows(scaled).items()):
        if run == "start":
            if len(pts) != 1 or pts[0][0] != 0:
                raise CompareError(f"benchmark {bench!r}: the 'start' run must have one point at samples_seen 0")
            starts[bench] = (0.0, pts[0][1])
            continue
        curves.append(Curve.from_points(run, bench, pts))
    return curves, scales, starts


def run_compare(out_dir: str | Path, *, csv: str | Path | None = None, gdo: str | Path | None = None,
                baseline: str | Path | None = None, start: str | Path | None = None,
                gdo_run: str = "gdo", baseline_run: str = "baseline",
                gdo_batch_size: int | None = None, baseline_batch_size: int | None = None,
                gdo_samples: Sequence[float] | None = None, baseline_samples: Sequence[float] | None = None,
                baseline_size: float | None = None, margin: float = DEFAULT_MARGIN_PP, scale: str = "auto",
                metric: dict[str, str] | None = None, html: bool = True) -> dict[str, Any]:
    """Compare a GDO run with its baseline and write ``compare.json`` (+ ``compare.html``).

    Give either ``csv`` (columns run,samples_seen,benchmark,accuracy; the runs named ``gdo_run``
    and ``baseline_run``; an optional run ``start`` with samples_seen 0 is the base model), or
    ``gdo`` and ``baseline`` lmms-eval output folders (one results JSON per checkpoint) with each
    run's global batch size or explicit samples seen, and optionally ``start``, the base model's
    lmms-eval results (samples seen 0, shared by both runs).

    Args:
        out_dir: folder for compare.json and compare.html (created).
        baseline_size: samples in the baseline's training set (default: its last checkpoint's
            samples seen, i.e. one epoch).
        margin: percentage points the baseline must gain over the start to be valid.
        scale: ``auto`` | ``fraction`` | ``percent`` (see ``curves.to_percent``).
        metric: task -> lmms-eval metric key to use.

    Returns:
        The dict written to compare.json (``compare_curves`` output plus ``inputs``, ``scales``,
        ``warnings``).

    Raises:
        CompareError: bad or missing inputs (the message names the file, line and field).
    """
    warnings: list[str] = []
    if csv is not None:
        if gdo is not None or baseline is not None or start is not None:
            raise CompareError("give either a curves CSV or lmms-eval folders (--gdo/--baseline), not both")
        rows = read_curves_csv(csv)
        inputs: dict[str, Any] = {"csv": str(csv)}
    else:
        if gdo is None or baseline is None:
            raise CompareError("give a curves CSV, or both --gdo and --baseline lmms-eval result folders")
        rows, w1 = read_lmms_eval(gdo, gdo_run, batch_size=gdo_batch_size, samples=gdo_samples, metric=metric)
        rows2, w2 = read_lmms_eval(baseline, baseline_run, batch_size=baseline_batch_size,
                                   samples=baseline_samples, metric=metric)
        rows = rows + rows2
        warnings += w1 + w2
        if start is not None:
            rows3, w3 = read_lmms_eval(start, "start", start=True, metric=metric)
            rows += rows3
            warnings += w3
        inputs = {"gdo": str(gdo), "baseline": str(baseline), "start": None if start is None else str(start),
                  "gdo_batch_size": gdo_batch_size, "baseline_batch_size": baseline_batch_size,
                  "gdo_samples": list(gdo_samples) if gdo_samples else None,
                  "baseline_samples": list(baseline_samples) if baseline_samples else None}
    curves, scales, starts = curves_from_rows(rows, scale=scale)
    result = compare_curves(curves, gdo_run=gdo_run, baseline_run=baseline_run, baseline_size=baseline_size,
                            margin=margin, starts=starts, scales=scales)
    for run, missing in result["missing"].items():
        if missing:
            warnings.append(f"run {run!r} has no results for: {', '.join(missing)} (left out)")
    result["inputs"] = inputs
    result["warnings"] = warnings
    from gdo.utils.io import output_dir

    out = output_dir(out_dir)
    # 12 significant digits: 0.7 rather than 0.7000000000000028 (differences of floating-point
    # subtraction), far below any accuracy or sample count anyone reads
    write_json_atomic(out / "compare.json", _rounded(result))
    if html:
        from gdo.compare.html import render_compare_html

        write_text_atomic(out / "compare.html", render_compare_html(result, warnings))
    return result


__all__ = ["CompareError", "Curve", "DEFAULT_MARGIN_PP", "compare_benchmark", "compare_curves", "curves_from_rows",
           "peak_match", "read_curves_csv", "read_lmms_eval", "run_compare", "to_percent"]


def _rounded(x, digits: int = 12):
    """``x`` with every float rounded to ``digits`` significant digits (dicts and lists walked)."""
    if isinstance(x, float):
        return float(f"{x:.{digits}g}") if x == x and abs(x) != float("inf") else x
    if isinstance(x, dict):
        return {k: _rounded(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v, digits) for v in x]
    return x
