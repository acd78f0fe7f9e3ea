"""Plain-text end-of-run summary (printed by `gdo run`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gdo.report.html import _constraint_status, _constraint_table, _first, run_warnings, warning_inputs


def run_summary(run_dir: str | Path, *, n_candidates: int | None = None, n_rejects: int | None = None,
                exports: list[Path] | None = None, elapsed_s: float | None = None) -> str:
    """A short human summary of a finished run folder (sizes, constraint status, where files are).

    Args:
        run_dir: the run folder (report.json and selection.jsonl must exist).
        n_candidates / n_rejects: counts from ingestion, when known.
        exports: export files written.
        elapsed_s: wall time of the run.

    Raises:
        FileNotFoundError: report.json or selection.jsonl is missing.
    """
    run = Path(run_dir)
    rj = json.loads((run / "report.json").read_text(encoding="utf-8"))
    n_sub = n_base = 0
    with open(run / "selection.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                s = json.loads(line)
                if s.get("set", "gdo") == "baseline":
                    n_base += 1
                else:
                    n_sub += 1
    cons = _first(rj, "constraints", "constraint_status", "feasibility")
    met, total = _constraint_status(cons)
    lines = ["", "gdo run finished" + (f" in {elapsed_s:.1f} s" if elapsed_s is not None else "")]
    if n_candidates is not None:
        lines.append(f"  candidates : {n_candidates:,}" + (f" ({n_rejects:,} rejects, see rejects.jsonl)" if n_rejects else ""))
    b = rj.get("budget") or {}
    if isinstance(b, dict) and "n" in b:
        how = "fixed by --budget" if b.get("mode") == "fixed" else "auto"
        lines.append(f"  budget     : {b['n']:,} ({how}; pool N = {b.get('N', '?'):,})")
        if b.get("n") == 0 and b.get("N"):
            lines.append("    --budget 0: the subset and the baseline are empty (nothing to train on)"
                         if b.get("mode") == "fixed" else
                         "    the auto budget is 0: the pool is too small for the preset's max_ratio; "
                         "re-run with --budget N")
    lines.append(f"  subset     : {n_sub:,}  (subset.jsonl)")
    if isinstance(b, dict) and isinstance(b.get("n"), int) and 0 < n_sub < b["n"]:
        lines.append(f"    short of the budget by {b['n'] - n_sub:,}: see the constraints; "
                     "--allow-random-fill fills the rest at random (reported)")
    lines.append(f"  baseline   : {n_base:,}  (baseline.jsonl)")
    if total:
        lines.append(f"  constraints: {met}/{total} met")
        for c in cons if isinstance(cons, list) else []:
            if isinstance(c, dict) and not c.get("met", True):
                name = str(c.get("name", "?")) + (f"[{c['group']}]" if c.get("group") else "")
                lines.append(f"    unmet: {name}: required {c.get('kind', '')} {c.get('required')}, "
                             f"available {c.get('available')}, achieved {c.get('achieved')} "
                             f"(short by {c.get('shortfall')})")
    cols, meta = warning_inputs(run)  # the same checks as report.html's banner (judge, untrained model)
    for w in run_warnings(rj, columns=cols, meta=meta, run=run):
        lines.append(f"  warning: {w['title']}: {w['text']}")
    for n in _first(rj, "notes", default=[]) or []:
        lines.append(f"  note: {n}")
    lines.append(f"  report     : {run / 'report.html'}")
    for p in exports or []:
        lines.append(f"  export     : {p}")
    lines.append(f"  all files  : {run}")
    return "\n".join(lines)

