"""Accuracy-versus-samples curves of two training runs and the paper's comparison figures.

A *curve* is one run's accuracy on one benchmark at each checkpoint, keyed by training samples
seen (the x axis of the paper's convergence plots). ``compare_curves`` computes, per benchmark
(docs/METHOD.md section 1, GDO_METHOD.md section 1):

* best and final accuracy of each run, and the final and best deltas (GDO minus baseline);
* the **peak match**: samples seen by the GDO run when its curve first reaches the baseline's
  best accuracy, interpolated linearly between the two checkpoints around the crossing;
* the **reduction** = baseline size / peak match (the paper: 512k / 35.4k = 14.5x on MVBench);
* a **validity** note when the baseline never gained ``margin`` over the starting checkpoint
  (its "best" is then noise, and a reduction measured against it means nothing).

Accuracies are in percent (0-100) throughout; ``to_percent`` converts a benchmark reported as a
fraction (lmms-eval reports some tasks in [0, 1], others in [0, 100]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

#: Default margin (percentage points) a baseline must gain over the start to count as learned.
DEFAULT_MARGIN_PP = 1.0


class CompareError(ValueError):
    """Curves that cannot be compared (a message names the run, benchmark and checkpoint)."""


@dataclass(frozen=True)
class Curve:
    """One run's accuracy on one benchmark, sorted by samples seen.

    Attributes:
        run: run label (``gdo`` or ``baseline``).
        benchmark: benchmark (task) name.
        samples: training samples seen at each checkpoint (non-negative, strictly increasing).
        accuracy: accuracy in percent at each checkpoint, same length as ``samples``.
        sources: optional provenance of each point (file path, CSV line), same length or empty.
    """

    run: str
    benchmark: str
    samples: tuple[float, ...]
    accuracy: tuple[float, ...]
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.samples) != len(self.accuracy):
            raise CompareError(f"{self.run}/{self.benchmark}: {len(self.samples)} sample counts "
                               f"but {len(self.accuracy)} accuracies")
        if not self.samples:
            raise CompareError(f"{self.run}/{self.benchmark}: no checkpoints")
        for i, (s, a) in enumerate(zip(self.samples, self.accuracy)):
            where = f" ({self.sources[i]})" if i < len(self.sources) else ""
            if not (math.isfinite(s) and s >= 0):
                raise CompareError(f"{self.run}/{self.benchmark}: samples_seen {s!r} is not a "
                                   f"non-negative number{where}")
            if not math.isfinite(a):
                raise CompareError(f"{self.run}/{self.benchmark}: accuracy {a!r} is not finite{where}")
            if i and s <= self.samples[i - 1]:
                raise CompareError(f"{self.run}/{self.benchmark}: samples_seen must increase, got "
                                   f"{self.samples[i - 1]:g} then {s:g}{where} (two checkpoints with "
                                   "the same samples seen?)")

    @staticmethod
    def from_points(run: str, benchmark: str, points: Sequence[tuple[float, float, str]]) -> "Curve":
        """Build a curve from unsorted ``(samples_seen, accuracy_percent, source)`` points.

        Raises:
            CompareError: duplicate samples_seen, negative or non-finite values, no points.
        """
        pts = sorted(points, key=lambda p: p[0])
        return Curve(run, benchmark, tuple(float(p[0]) for p in pts), tuple(float(p[1]) for p in pts),
                     tuple(str(p[2]) for p in pts))


def to_percent(values: Sequence[float], scale: str = "auto") -> tuple[list[float], str]:
    """Convert accuracies to percent.

    Args:
        values: every accuracy of one benchmark (both runs), as reported.
        scale: ``fraction`` (x100), ``percent`` (as is) or ``auto``: ``fraction`` when every value
            lies in [0, 1], else ``percent``. The scale used is returned so callers can report it.

    Returns:
        (values in percent, scale used).

    Raises:
        CompareError: unknown scale, or a value outside [0, 1] / [0, 100] for the scale.
    """
    if scale not in ("auto", "fraction", "percent"):
        raise CompareError(f"scale must be auto, fraction or percent, not {scale!r}")
    if scale == "auto":
        scale = "fraction" if all(0.0 <= v <= 1.0 for v in values) else "percent"
    hi = 1.0 if scale == "fraction" else 100.0
    bad = [v for v in values if not (0.0 <= v <= hi)]
    if bad:
        raise CompareError(f"accuracy {bad[0]!r} outside [0, {hi:g}] for scale {scale}")
    return ([v * 100.0 for v in values] if scale == "fraction" else [float(v) for v in values]), scale


def peak_match(curve: Curve, target: float, *, start: tuple[float, float] | None = None) -> dict[str, Any]:
    """Samples seen when ``curve`` first reaches ``target`` accuracy (GDO_METHOD.md section 1).

    The crossing is interpolated linearly between the last checkpoint below ``target`` and the
    first at or above it: s = s0 + (target - a0) / (a1 - a0) * (s1 - s0). When the first
    checkpoint already reaches the target, the starting point ``start`` = (samples, accuracy)
    (e.g. the shared base model at 0 samples) is used as the point below; without one the first
    checkpoint's samples are returned with ``bound = "upper"`` (the true crossing is earlier).

    Args:
        curve: the GDO run's curve (percent).
        target: accuracy to reach (percent), usually the baseline's best.
        start: optional (samples, accuracy) before the curve's first checkpoint.

    Returns:
        ``{"samples": float | None, "bound": "interpolated" | "exact" | "upper" | None,
        "between": [[s0, a0], [s1, a1]] | None}``; ``samples`` is None when never reached.
    """
    pts = list(zip(curve.samples, curve.accuracy))
    if start is not None and (not pts or start[0] < pts[0][0]):
        pts = [(float(start[0]), float(start[1]))] + pts
    for i, (s1, a1) in enumerate(pts):
        if a1 >= target:
            if a1 == target:
                return {"samples": s1, "bound": "exact", "between": [[s1, a1], [s1, a1]]}
            if i == 0:
                return {"samples": s1, "bound": "upper", "between": None}
            s0, a0 = pts[i - 1]
            s = s0 + (target - a0) / (a1 - a0) * (s1 - s0)
            return {"samples": s, "bound": "interpolated", "between": [[s0, a0], [s1, a1]]}
    return {"samples": None, "bound": None, "between": None}


def _start_point(gdo: Curve, base: Curve, start: tuple[float, float] | None) -> tuple[float, float] | None:
    """The starting checkpoint shared by both runs: given, else a samples_seen = 0 point."""
    if start is not None:
        return start
    for c in (base, gdo):
        if c.samples[0] == 0:
            return (0.0, c.accuracy[0])
    return None


def compare_benchmark(gdo: Curve, baseline: Curve, *, baseline_size: float | None = None,
                      margin: float = DEFAULT_MARGIN_PP, start: tuple[float, float] | None = None,
                      scale: str = "percent") -> dict[str, Any]:
    """Compare the GDO and baseline curves of one benchmark.

    Args:
        gdo: GDO run curve (percent).
        baseline: baseline run curve (percent), same benchmark.
        baseline_size: samples in the baseline's training set (the reduction's numerator, e.g.
            512,000 for Uni-10x); default: the baseline curve's last samples_seen (one epoch).
        margin: percentage points the baseline must gain over the start to count as learned.
        start: (samples, accuracy) of the starting checkpoint (the shared base model); default: a
            samples_seen = 0 point of either curve; without one, validity cannot be checked.
        scale: the scale the benchmark was reported in (recorded only).

    Returns:
        A JSON-ready dict: ``gdo`` and ``baseline`` (best, best_samples, final, final_samples,
        points), ``delta_final``, ``delta_best`` (pp), ``target`` (baseline best), ``peak_match``
        (samples or None), ``peak_match_bound``, ``reduction`` (x, or None), ``valid`` (bool or
        None), ``notes`` (list of strings).

    Raises:
        CompareError: the curves are of different benchmarks, or ``baseline_size`` <= 0.
    """
    if gdo.benchmark != baseline.benchmark:
        raise CompareError(f"benchmark mismatch: {gdo.benchmark!r} vs {baseline.benchmark!r}")
    size = float(baseline_size) if baseline_size is not None else float(baseline.samples[-1])
    if not size > 0:
        raise CompareError(f"{baseline.benchmark}: baseline size must be > 0, got {size:g}")
    notes: list[str] = []

    def summary(c: Curve) -> dict[str, Any]:
        # best over trained checkpoints (a samples_seen = 0 point is the base model); ties: earliest
        idx = [k for k in range(len(c.samples)) if c.samples[k] > 0] or list(range(len(c.samples)))
        i = max(idx, key=lambda k: (c.accuracy[k], -k))
        return {"best": c.accuracy[i], "best_samples": c.samples[i], "final": c.accuracy[-1],
                "final_samples": c.samples[-1], "points": [[s, a] for s, a in zip(c.samples, c.accuracy)]}

    g, b = summary(gdo), summary(baseline)
    st = _start_point(gdo, baseline, start)
    target = b["best"]  # the baseline's best over its trained checkpoints
    valid: bool | None
    if st is None:
        valid = None
        notes.append("no starting checkpoint (samples_seen 0): cannot check that the baseline learned")
    else:
        gain = target - st[1]
        valid = gain >= margin
        if not valid:
            notes.append(f"baseline never gained {margin:g} pp over the start ({st[1]:.2f} -> best "
                         f"{target:.2f}, +{gain:.2f} pp): its best is noise, the peak match and "
                         "reduction against it mean nothing")
    pm = peak_match(gdo, target, start=st)
    reduction = None
    if pm["samples"] is None:
        notes.append(f"GDO never reached the baseline's best {target:.2f} (GDO best {g['best']:.2f})")
    else:
        if pm["samples"] > 0:
            reduction = size / pm["samples"]
        else:
            notes.append("the starting checkpoint already matches the baseline's best: reduction undefined")
        if pm["bound"] == "upper":
            notes.append("GDO reached the baseline's best at its first checkpoint and no starting point "
                         "is known: the peak match is an upper bound, the reduction a lower bound")
    return {
        "benchmark": gdo.benchmark,
        "scale": scale,
        "gdo": g,
        "baseline": b,
        "start": None if st is None else {"samples": st[0], "accuracy": st[1]},
        "delta_final": g["final"] - b["final"],
        "delta_best": g["best"] - b["best"],
        "target": target,
        "baseline_size": size,
        "peak_match": pm["samples"],
        "peak_match_bound": pm["bound"],
        "peak_match_between": pm["between"],
        "reduction": reduction,
        "margin_pp": margin,
        "valid": valid,
        "notes": notes,
    }


def compare_curves(curves: Sequence[Curve], *, gdo_run: str = "gdo", baseline_run: str = "baseline",
                   baseline_size: float | None = None, margin: float = DEFAULT_MARGIN_PP,
                   starts: dict[str, tuple[float, float]] | None = None,
                   scales: dict[str, str] | None = None) -> dict[str, Any]:
    """Compare every benchmark present in both runs.

    Args:
        curves: curves of both runs (percent), at most one per (run, benchmark).
        gdo_run: run label of the GDO run.
        baseline_run: run label of the baseline run.
        baseline_size: see ``compare_benchmark``.
        margin: see ``compare_benchmark`` (percentage points).
        starts: optional starting point per benchmark.
        scales: scale each benchmark was reported in (recorded in the output).

    Returns:
        ``{"gdo_run", "baseline_run", "benchmarks": [per-benchmark dicts, sorted by name],
        "missing": {run: [benchmarks only the other run has]}, "summary": {...}}``.

    Raises:
        CompareError: a run label with no curves, duplicate curves, or no common benchmark.
    """
    by: dict[tuple[str, str], Curve] = {}
    for c in curves:
        if (c.run, c.benchmark) in by:
            raise CompareError(f"two curves for run {c.run!r}, benchmark {c.benchmark!r}")
        by[(c.run, c.benchmark)] = c
    runs = sorted({c.run for c in curves})
    for r in (gdo_run, baseline_run):
        if r not in runs:
            raise CompareError(f"no results for run {r!r} (runs found: {', '.join(runs) or 'none'})")
    gb = {b for (r, b) in by if r == gdo_run}
    bb = {b for (r, b) in by if r == baseline_run}
    common = sorted(gb & bb)
    if not common:
        raise CompareError(f"no benchmark in both runs ({gdo_run}: {sorted(gb)}; {baseline_run}: {sorted(bb)})")
    rows = [compare_benchmark(by[(gdo_run, b)], by[(baseline_run, b)], baseline_size=baseline_size,
                              margin=margin, start=(starts or {}).get(b), scale=(scales or {}).get(b, "percent"))
            for b in common]
    reds = [r["reduction"] for r in rows if r["reduction"] is not None and r["valid"] is not False]
    return {
        "gdo_run": gdo_run,
        "baseline_run": baseline_run,
        "benchmarks": rows,
        "missing": {gdo_run: sorted(bb - gb), baseline_run: sorted(gb - bb)},
        "summary": {
            "benchmarks": len(rows),
            "peak_matched": sum(r["peak_match"] is not None for r in rows),
            "invalid_baseline": [r["benchmark"] for r in rows if r["valid"] is False],
            "reduction_min": min(reds) if reds else None,
            "reduction_max": max(reds) if reds else None,
            "mean_delta_final": sum(r["delta_final"] for r in rows) / len(rows),
        },
    }
