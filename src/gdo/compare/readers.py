"""Readers of per-checkpoint evaluation results: a curves CSV, or lmms-eval output folders.

CSV layout (header required, extra columns ignored)::

    run,samples_seen,benchmark,accuracy
    gdo,0,mvbench,55.1
    gdo,10240,mvbench,61.3

lmms-eval layout (EvolvingLMMs-Lab/lmms-eval, ``loggers/evaluation_tracker.py``): each evaluation
writes ``OUTPUT_PATH/<model name, '/' -> '__'>/<date>_results.json`` holding ``results`` (task ->
``{"alias", "<metric>,<filter>": value, "<metric>_stderr,<filter>": ...}``), ``group_subtasks``
(group -> its subtasks; a group such as ``mvbench`` may hold no metric of its own),
``n-samples`` (task -> ``{"original", "effective"}``) and ``config.model_args``
(``pretrained=<checkpoint folder>,...``). A checkpoint's samples seen are its step (the
``checkpoint-N`` of its folder, as ms-swift, LLaMA-Factory and transformers name them) times the
run's global batch size, or given explicitly.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from gdo.compare.curves import CompareError

CSV_COLUMNS = ("run", "samples_seen", "benchmark", "accuracy")
_STEP_RE = re.compile(r"checkpoint[-_](\d+)")


def read_curves_csv(path: str | Path) -> list[tuple[str, str, float, float, str]]:
    """Read a curves CSV into ``(run, benchmark, samples_seen, accuracy, source)`` rows.

    Accuracy is returned as written (fraction or percent; see ``curves.to_percent``).

    Raises:
        CompareError: missing file or column, an empty field, a non-numeric or negative value,
            or the same (run, benchmark, samples_seen) twice; the message names file, line and field.
    """
    p = Path(path)
    if not p.is_file():
        raise CompareError(f"{p}: curves CSV not found")
    rows: list[tuple[str, str, float, float, str]] = []
    seen: dict[tuple[str, str, float], int] = {}
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS if c not in cols]
        if missing:
            raise CompareError(f"{p}:1: missing column(s) {', '.join(missing)} (need {','.join(CSV_COLUMNS)})")
        for raw in reader:
            line = reader.line_num
            rec = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            for c in CSV_COLUMNS:
                if not rec.get(c):
                    raise CompareError(f"{p}:{line}: field {c!r} is empty")
            vals = {}
            for c in ("samples_seen", "accuracy"):
                try:
                    vals[c] = float(rec[c])
                except ValueError:
                    raise CompareError(f"{p}:{line}: field {c!r} is not a number: {rec[c]!r}") from None
                if not math.isfinite(vals[c]) or vals[c] < 0:
                    raise CompareError(f"{p}:{line}: field {c!r} must be a finite number >= 0, got {rec[c]!r}")
            key = (rec["run"], rec["benchmark"], vals["samples_seen"])
            if key in seen:
                raise CompareError(f"{p}:{line}: run {key[0]!r}, benchmark {key[1]!r}, samples_seen "
                                   f"{key[2]:g} already given on line {seen[key]}")
            seen[key] = line
            rows.append((rec["run"], rec["benchmark"], vals["samples_seen"], vals["accuracy"], f"{p}:{line}"))
    if not rows:
        raise CompareError(f"{p}: no data rows")
    return rows


def find_results_files(folder: str | Path) -> list[Path]:
    """Every lmms-eval ``*_results.json`` (or ``results.json``) under ``folder``, sorted by path.

    Raises:
        CompareError: ``folder`` missing or holding no results file.
    """
    d = Path(folder)
    if d.is_file():
        return [d]
    if not d.is_dir():
        raise CompareError(f"{d}: lmms-eval results folder not found")
    files = sorted(p for p in d.rglob("*.json") if p.name == "results.json" or p.name.endswith("_results.json"))
    if not files:
        raise CompareError(f"{d}: no lmms-eval results file (*_results.json) found")
    return files


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _metrics(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """``(metric,filter, value)`` pairs of a task entry, in file order, stderr and aliases left out."""
    out = []
    for k, v in entry.items():
        if "," not in k or "_stderr" in k.split(",")[0]:
            continue
        x = _number(v)
        if x is not None:
            out.append((k, x))
    return out


def parse_lmms_results(data: dict[str, Any], *, source: str = "<results>",
                       metric: dict[str, str] | None = None) -> dict[str, tuple[float, str]]:
    """Benchmark accuracies of one lmms-eval results JSON.

    Benchmarks are the top-level tasks: groups of ``group_subtasks`` and tasks that belong to no
    group. A task's accuracy is ``metric[task]`` when given (``"mvbench_accuracy"`` or
    ``"mvbench_accuracy,none"``), else its first numeric non-stderr metric. A group without a
    metric of its own (lmms-eval writes ``mvbench`` this way) gets the mean of its subtasks
    weighted by their ``n-samples`` effective counts (plain mean when counts are absent).

    Returns:
        benchmark -> (accuracy as reported, metric key used or ``"mean of N subtasks: key"``).

    Raises:
        CompareError: no ``results`` object, a requested metric absent, or a benchmark with no
            numeric metric; the message names ``source`` and the task.
    """
    res = data.get("results")
    if not isinstance(res, dict) or not res:
        raise CompareError(f"{source}: no 'results' object (not an lmms-eval results file?)")
    groups = data.get("group_subtasks") or {}
    sub_of = {t for subs in groups.values() if isinstance(subs, list) for t in subs}
    nsamp = data.get("n-samples") or {}
    metric = metric or {}

    def pick(task: str) -> tuple[float, str] | None:
        entry = res.get(task)
        ms = _metrics(entry) if isinstance(entry, dict) else []
        want = metric.get(task)
        if want is not None:
            for k, x in ms:
                if k == want or k.split(",")[0] == want:
                    return x, k
            if ms:
                raise CompareError(f"{source}: task {task!r} has no metric {want!r} "
                                   f"(has: {', '.join(k for k, _ in ms)})")
        elif ms:
            return ms[0][1], ms[0][0]
        subs = [t for t in groups.get(task, []) if t in res]
        if not subs:
            return None
        vals, weights, keys = [], [], set()
        for t in subs:
            got = pick(t)
            if got is None:
                continue
            n = nsamp.get(t, {}) if isinstance(nsamp.get(t), dict) else {}
            w = _number(n.get("effective", n.get("original")))
            vals.append(got[0])
            weights.append(w)
            keys.add(got[1])
        if not vals:
            return None
        if all(w is not None and w > 0 for w in weights):
            acc = sum(v * w for v, w in zip(vals, weights)) / sum(weights)  # type: ignore[operator]
            how = "sample-weighted mean"
        else:
            acc = sum(vals) / len(vals)
            how = "mean"
        return acc, f"{how} of {len(vals)} subtasks: {', '.join(sorted(keys))}"

    out: dict[str, tuple[float, str]] = {}
    for task in res:
        if task in sub_of and task not in groups:
            continue
        if task in sub_of:  # a subgroup inside a group
            continue
        got = pick(task)
        if got is None:
            raise CompareError(f"{source}: task {task!r} has no numeric metric")
        out[task] = got
    return out


def checkpoint_step(data: dict[str, Any], path: Path) -> tuple[int | None, str]:
    """The training step of the checkpoint an lmms-eval results file evaluated.

    Looks for ``checkpoint-N`` in ``config.model_args`` (``pretrained=...``), ``model_name``,
    ``model_name_or_path``, then in the file's own path (lmms-eval names its folder after the
    model). Returns (step or None, the model identifier seen).
    """
    cfg = data.get("config") or {}
    cands = [str(cfg.get("model_args") or ""), str(data.get("model_name") or ""),
             str(data.get("model_name_or_path") or ""), str(data.get("model_name_sanitized") or ""),
             str(path)]
    ident = next((c for c in cands if c), str(path))
    m = re.search(r"pretrained=([^,]+)", cands[0])
    if m:
        ident = m.group(1)
    for c in cands:
        hits = _STEP_RE.findall(c)
        if hits:
            return int(hits[-1]), ident
    return None, ident


def read_lmms_eval(folder: str | Path, run: str, *, batch_size: int | None = None,
                   samples: Sequence[float] | None = None, metric: dict[str, str] | None = None,
                   start: bool = False) -> tuple[list[tuple[str, str, float, float, str]], list[str]]:
    """Read one run's lmms-eval results (one results JSON per checkpoint) into curve rows.

    Args:
        folder: the run's lmms-eval output folder (searched recursively) or one results file.
        run: run label for the rows.
        batch_size: global batch size (per-device batch x devices x gradient accumulation):
            samples seen = step x batch_size.
        samples: explicit samples seen per checkpoint, in ascending step order (or file order when
            the files name no step); overrides ``batch_size``.
        metric: task -> metric key (see ``parse_lmms_results``).
        start: the folder holds the starting checkpoint (the base model): samples seen 0.

    Returns:
        (rows ``(run, benchmark, samples_seen, accuracy, source)``, warnings).

    Raises:
        CompareError: no results files, a checkpoint without a step and no explicit samples,
            ``samples`` of the wrong length, or neither ``batch_size`` nor ``samples``.
    """
    files = find_results_files(folder)
    warnings: list[str] = []
    evals: list[tuple[int | None, str, Path, dict[str, tuple[float, str]]]] = []
    for p in files:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise CompareError(f"{p}: cannot read lmms-eval results JSON: {e}") from None
        if not isinstance(data, dict):
            raise CompareError(f"{p}: top level is not a JSON object")
        step, ident = checkpoint_step(data, p)
        evals.append((step, ident, p, parse_lmms_results(data, source=str(p), metric=metric)))
    if start:
        if len({e[1] for e in evals}) > 1:
            raise CompareError(f"{folder}: the starting-checkpoint folder holds results of several models: "
                               + ", ".join(sorted({e[1] for e in evals})))
        xs = [0.0] * len(evals)
    elif samples is not None:
        # one checkpoint per distinct model identifier, in ascending step order
        idents = sorted({(e[0] if e[0] is not None else -1, e[1]) for e in evals})
        if len(samples) != len(idents):
            raise CompareError(f"{folder}: {len(samples)} explicit samples_seen values for {len(idents)} "
                               f"checkpoints ({', '.join(i for _, i in idents)})")
        lookup = {i: float(s) for (_, i), s in zip(idents, samples)}
        xs = [lookup[e[1]] for e in evals]
    else:
        if batch_size is None or batch_size <= 0:
            raise CompareError(f"{folder}: give the run's global batch size (samples seen = step x batch "
                               "size) or the samples seen of each checkpoint explicitly")
        xs = []
        for step, ident, p, _ in evals:
            if step is None:
                raise CompareError(f"{p}: cannot tell the training step of model {ident!r} (no 'checkpoint-N' "
                                   "in its path); give samples seen explicitly, or pass the base model's "
                                   "results as the starting checkpoint")
            xs.append(float(step * batch_size))
    # A checkpoint evaluated more than once on a benchmark: the last file (lmms-eval names files by
    # date, so sorted order is time order within a folder) wins, with a warning.
    acc: dict[tuple[str, float], tuple[float, str]] = {}
    for x, (_, ident, p, res) in zip(xs, evals):
        for bench, (val, key) in res.items():
            if (bench, x) in acc:
                warnings.append(f"{run}/{bench}: checkpoint at {x:g} samples evaluated twice; using {p}")
            acc[(bench, x)] = (val, f"{p} [{key}]")
    rows = [(run, b, x, v, src) for (b, x), (v, src) in sorted(acc.items())]
    return rows, warnings


def group_rows(rows: Sequence[tuple[str, str, float, float, str]]) -> dict[tuple[str, str], list[tuple[float, float, str]]]:
    """Group curve rows by (run, benchmark) into ``(samples_seen, accuracy, source)`` points."""
    out: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    for run, bench, x, acc, src in rows:
        out[(run, bench)].append((x, acc, src))
    return dict(out)
