"""Auto budget and largest-remainder quotas (GDO_METHOD.md section 5, "Budget" and "Quotas").

Two arithmetics:

* ``paper``: plain double precision as in the release (``floor(100000*0.018) == 1799``), fractional
  parts of quotas compared as floats.
* ``default``: exact. Every ratio of the goal is read as the decimal it is written as
  (``Fraction(repr(x))``), products with counts are exact rationals, so
  ``floor(100000*0.018) == 1800``; quota remainders are compared as exact integers. Only the
  entropy (``E = exp(H)``) is a float, being irrational.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from gdo.selection.goal import Goal


def _F(x: float | int) -> Fraction:
    """Exact rational of the decimal ``x`` is written as (0.018 -> 18/1000)."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def _ceil(x: Fraction | float) -> int:
    return math.ceil(x)


def _floor(x: Fraction | float) -> int:
    return math.floor(x)


def largest_remainder(counts, total: int, mode: str = "default", priority=None) -> np.ndarray:
    """Split ``total`` units proportionally to ``counts`` (GDO_METHOD.md section 5, quotas).

    Each key gets ``floor(total*c/N)`` (N = sum of counts); the leftover units go one each to the
    keys with the largest fractional part, ties to the key that comes first in ``counts`` (callers
    pass keys in first-seen pool order). ``paper`` mode computes the parts in double precision,
    ``default`` mode exactly (integer remainders).

    Args:
        counts: int array of shape (K,), non-negative.
        total: units to split (0 <= total <= N is not required, any non-negative int works).
        priority: optional float array (K,), default mode only: equal fractional parts go to the
            key with the higher priority first (goal sets: the stratum's best relevance), then to
            the earlier key.

    Returns:
        int64 array of shape (K,) summing to ``total`` (0 everywhere if N == 0).
    """
    c = np.asarray(counts, dtype=np.int64)
    N = int(c.sum())
    if N == 0 or total <= 0 or c.size == 0:
        return np.zeros(c.size, dtype=np.int64)
    if mode == "paper":
        q = total * (c.astype(np.float64) / float(N))  # the release's order: n * (count / N)
        base = np.floor(q).astype(np.int64)
        frac = q - base
        order = np.lexsort((np.arange(c.size), -frac))
    else:
        prod = c.astype(object) * int(total) if total * N >= 2**62 else c * int(total)
        base = np.asarray(prod // N, dtype=np.int64)
        rem = np.asarray(prod % N, dtype=np.int64)
        if priority is None:
            order = np.lexsort((np.arange(c.size), -rem))
        else:
            order = np.lexsort((np.arange(c.size), -np.asarray(priority, dtype=np.float64), -rem))
    left = int(total - base.sum())
    out = base.copy()
    if left > 0:
        out[order[:left]] += 1
    return out


def auto_budget(stratum_counts, goal: Goal, mode: str = "default", *, vds_positive: int | None = None,
                vds_total: int | None = None, budget: int | str = "auto") -> dict[str, Any]:
    """The auto budget with its VDS adjustment and cap (GDO_METHOD.md section 5, "Budget").

    Args:
        stratum_counts: int array of the pool's stratum sizes (any order; ties in the coverage
            sort keep this order).
        goal: the goal (ratios, counts, multipliers).
        mode: ``paper`` (float arithmetic) or ``default`` (exact).
        vds_positive / vds_total: candidates with vds3' > threshold and the rows r is taken over;
            None or a zero count skips the VDS adjustment (recorded in the result).
        budget: ``"auto"`` or a fixed int (then only clipped to [0, N]).

    Returns:
        dict with every intermediate: ``N``, ``strata``, ``entropy``, ``effective_strata``,
        ``n_eff``, ``coverage`` (``mass``, ``strata_covered``, ``p_tail``, ``tail_count``), ``n_tail``,
        ``n_min_count``, ``n_min_ratio``, ``n_lower`` (max of the four), ``n_max_count``,
        ``n_max_ratio``, ``n_before_vds``, ``vds`` (``r``, ``positives``, ``total``, ``need``,
        ``cap``, ``applied``, ``reason``), ``n`` (final) and ``arithmetic``.
    """
    c = np.asarray(stratum_counts, dtype=np.int64)
    c = c[c > 0]
    N = int(c.sum())
    paper = mode == "paper"
    out: dict[str, Any] = {"N": N, "strata": int(c.size), "arithmetic": "float" if paper else "exact",
                           "mode": "auto" if budget == "auto" else "fixed"}
    if budget != "auto":
        n = max(0, min(int(budget), N))
        out.update({"requested": int(budget), "n": n})
        return out
    if N == 0:
        out.update({"n": 0})
        return out
    p = c.astype(np.float64) / N
    if paper:
        # the release: H accumulated in first-seen stratum order in double precision
        H = 0.0
        for pi in p.tolist():
            H -= pi * math.log(max(pi, 1e-12))
        E = math.exp(H)
        n_eff = int(math.ceil(max(1.0, E * max(1.0, goal.effective_strata_mult))))
    else:
        H = float(-math.fsum((p * np.log(p)).tolist()))
        E = math.exp(H)
        n_eff = math.ceil(E * goal.effective_strata_mult)
    order = np.argsort(-c, kind="stable")
    cs = c[order]
    if paper:
        cum = np.cumsum(p[order])
        hit = np.nonzero(cum >= goal.coverage_mass)[0]
        k = int(hit[0]) if hit.size else int(cs.size - 1)
        p_tail = float(p[order][k])
        n_tail = int(math.ceil(max(1.0, goal.tail_target) / max(p_tail, 1e-9)))
        n_min_ratio = math.ceil(N * goal.min_ratio)
        n_max_ratio = math.floor(N * goal.max_ratio)
        if n_max_ratio <= 0:  # the release: a pool too small for max_ratio is not capped by it (item 6)
            n_max_ratio = N
    else:
        cum = np.cumsum(cs)
        need_mass = _F(goal.coverage_mass) * N
        hit = np.nonzero(cum >= math.ceil(need_mass))[0]  # cum is an integer: cum >= x <=> cum >= ceil(x)
        k = int(hit[0]) if hit.size else int(cs.size - 1)
        p_tail = Fraction(int(cs[k]), N)
        n_tail = _ceil(_F(goal.tail_target) / p_tail)
        n_min_ratio = _ceil(_F(goal.min_ratio) * N)
        n_max_ratio = _floor(_F(goal.max_ratio) * N)
    lower = max(goal.min_count, n_min_ratio, n_eff, n_tail)
    n = min(lower, goal.max_count, n_max_ratio, N)
    if paper:
        n = max(1, min(n, N))
    out.update({
        "entropy": H, "effective_strata": E, "effective_strata_mult": goal.effective_strata_mult,
        "n_eff": int(n_eff),
        "coverage": {"mass": goal.coverage_mass, "strata_covered": k + 1, "tail_count": int(cs[k]),
                     "p_tail": float(p_tail), "tail_target": goal.tail_target},
        "n_tail": int(n_tail), "n_min_count": goal.min_count, "n_min_ratio": int(n_min_ratio),
        "n_lower": int(lower), "n_max_count": goal.max_count, "n_max_ratio": int(n_max_ratio),
        "n_before_vds": int(n),
    })
    vds: dict[str, Any] = {"threshold": goal.vds3_threshold, "target_positive": goal.vds3_target_positive,
                           "max_mult": goal.vds3_max_mult, "positives": vds_positive, "total": vds_total,
                           "r": None, "need": None, "cap": None, "applied": False, "reason": None}
    if vds_positive is None or not vds_total:
        vds["reason"] = "no vds3' values (descriptors missing or --no-vds)"
    elif vds_positive == 0:
        vds["r"] = 0.0
        vds["reason"] = "no candidate has vds3' above the threshold"
    else:
        if paper:
            r = vds_positive / float(vds_total)
            need = int(math.ceil(max(1, goal.vds3_target_positive) / r))
            cap = min(N, max(1, goal.max_count), max(1, int(math.ceil(n * max(1.0, goal.vds3_max_mult)))),
                      max(1, n_max_ratio))
            r_out = r
        else:
            r = Fraction(int(vds_positive), int(vds_total))
            need = _ceil(_F(goal.vds3_target_positive) / r)
            cap = min(N, goal.max_count, _ceil(n * _F(goal.vds3_max_mult)), n_max_ratio)
            r_out = float(r)
        new_n = min(max(n, need), cap)
        if paper:
            new_n = max(1, min(new_n, N))
        vds.update({"r": r_out, "need": int(need), "cap": int(cap), "applied": True,
                    "changed": bool(new_n != n)})
        n = new_n
    out["vds"] = vds
    out["n"] = int(n)
    return out
