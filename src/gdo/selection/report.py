"""report.json of `gdo select` (full schema: docs/REPORT_SCHEMA.md, ``schema_version`` 1).

Deterministic: built only from the inputs, the goal and the seed (no timestamps, no timings).

Top-level keys: ``schema_version``, ``mode``, ``seed``, ``preset`` {name, source, params},
``ablations`` {no_vds, no_ppl, no_sc, allow_random_fill}, ``inputs`` {pool_files, descriptors},
``budget`` (every intermediate of the budget math, see :func:`gdo.selection.budget.auto_budget`),
``quotas`` {bucket, video_quota, strata_with_quota, kept, kept_by_bucket}, ``constraints`` (list of
{name, group?, kind, required, available, feasible, achieved, met, shortfall}), ``unmet``,
``source_floor_scale``, ``stages`` {gdo, baseline}, ``fields`` {field: {labels, pool, subset,
baseline, jsd_subset, jsd_baseline}}, ``strata`` {count, listed, rows: [{key, pool, quota, kept,
subset, baseline}]}, ``descriptor_stats`` {name: {bins, pool, subset, baseline, missing, mean}},
``z_stats``, ``baseline`` {mult, target, size, relaxed, seed}, ``accounting`` {candidates_in_pool,
selected, not_selected, baseline_selected, ingest_rejects, without_descriptor_row, random_fill,
budget, short_of_budget}; the stage layer (gdo.stages.select_stage) adds ``outputs`` {writer, files}.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from gdo.descriptors.fields import FIELD_NAMES

SCHEMA_VERSION = 1
MAX_STRATA_ROWS = 2000
HIST_BINS = 20


def jensen_shannon(p_counts, q_counts) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between two count vectors of equal length.

    Returns 0.0 when either vector sums to 0.
    """
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return float(max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m)))


def _num(x):
    if isinstance(x, Fraction):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


def _hist(values: np.ndarray, sets: dict[str, np.ndarray]) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    fin = np.isfinite(v)
    out: dict[str, Any] = {"missing": {}, "mean": {}}
    if fin.any():
        vf = v[fin]
        if vf.size > 200_000:  # bin edges from a fixed-stride sample (deterministic, fast)
            vf = vf[:: vf.size // 200_000]
        lo, hi = np.percentile(vf, [0.5, 99.5])
        if not hi > lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, HIST_BINS + 1)
    else:
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    out["bins"] = [float(e) for e in edges]
    for name, idx in sets.items():
        x = v if idx is None else v[idx]
        f = np.isfinite(x)
        xf = np.clip(x[f], edges[0], edges[-1])
        h, _ = np.histogram(xf, bins=edges)
        out[name] = [int(c) for c in h]
        out["missing"][name] = int((~f).sum())
        out["mean"][name] = float(xf.mean()) if xf.size else None
    return out


def build_report(*, mode, seed, goal, goal_source, ablations, pool_files, D, has_desc, budget, b_labels, b_quota,
                 s_quota, kept, fl, picks, pstage, b_idx, b_stage, b_target, mult, cons, is_video, temporal, grp,
                 score_parts, desc_cols, D_cols_for_stats, ingest_rejects, tnc_judge) -> dict[str, Any]:
    """Assemble the report dict (see docs/REPORT_SCHEMA.md). Arguments are select()'s internals."""
    N = int(len(fl.stratum))
    n = int(cons["n"])
    params = goal.model_dump()
    params["temporal_categories"] = list(goal.temporal_set(mode))
    rep: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "mode": mode, "seed": int(seed),
                           "preset": {"name": goal.name, "source": goal_source, "params": params},
                           "ablations": ablations}
    # inputs
    if D is None:
        dinfo = {"path": None, "form": "none", "rows": 0, "matched": 0, "unmatched_rows": 0, "duplicate_uids": 0,
                 "computed": [], "cluster": None}
    else:
        matched = int(has_desc.sum())
        dinfo = {"path": D.path, "form": D.form, "rows": int(D.table.num_rows), "matched": matched,
                 "unmatched_rows": int(D.table.num_rows - matched - D.info.get("duplicate_uids", 0)),
                 "duplicate_uids": int(D.info.get("duplicate_uids", 0)), "computed": list(D.computed),
                 "cluster": D.info.get("cluster")}
        if "shards" in D.info:
            dinfo["shards"] = D.info["shards"]
    dinfo["tnc_judge_rows"] = int(np.isfinite(tnc_judge).sum())
    rep["inputs"] = {"pool_files": pool_files, "descriptors": dinfo}
    rep["budget"] = budget
    # quotas
    kept_b = {}
    for ci, lab in enumerate(b_labels):
        kept_b[lab] = int((kept & (fl.codes["bucket"] == ci)).sum())
    rep["quotas"] = {"bucket": {lab: int(q) for lab, q in zip(b_labels, b_quota)}, "video_quota": int(cons["video_quota"]),
                     "strata_with_quota": int((s_quota > 0).sum()), "kept": int(kept.sum()), "kept_by_bucket": kept_b}
    # constraints
    sel_video = int(is_video[picks].sum())
    sel_temporal = int(temporal[picks].sum())
    elig = cons["elig"]
    max_video = int(cons["max_video"])
    clist = []

    def add(name, kind, required, available, achieved, **extra):
        required = int(required)
        available = None if available is None else int(available)
        if kind == "max":
            met = achieved <= required
            short = max(0, achieved - required)
            feasible = extra.pop("feasible")
        else:
            met = achieved >= required
            short = max(0, required - achieved)
            feasible = available is None or available >= required
        clist.append({"name": name, "kind": kind, "required": required, "available": available,
                      "feasible": bool(feasible), "achieved": int(achieved), "met": bool(met),
                      "shortfall": int(short), **extra})

    add("budget", "min", n, cons["av_img"] + min(cons["av_video"], max_video), len(picks))
    add("min_video", "min", cons["min_video"], min(cons["av_video"], max_video), sel_video)
    add("max_video", "max", max_video, cons["av_video"], sel_video,
        feasible=cons["min_video"] <= max_video)
    add("min_temporal_video", "min", cons["min_temporal"], min(cons["av_temporal"], max_video), sel_temporal,
        categories=params["temporal_categories"])
    g_labels = fl.labels["source_group"]
    pick_g = np.bincount(grp[picks], minlength=len(g_labels)) if len(picks) else np.zeros(len(g_labels), int)
    for gi, need, expected in cons["floors"]:
        in_g = grp == gi
        avail = int((elig & in_g & ~is_video).sum()) + min(int((elig & in_g & is_video).sum()), max_video)
        add("source_floor", "min", need, avail, int(pick_g[gi]), group=g_labels[gi], expected=_num(expected))
    rep["constraints"] = clist
    rep["source_floor_scale"] = _num(cons["floor_scale"])
    rep["unmet"] = [c["name"] + (f":{c['group']}" if "group" in c else "") for c in clist if not c["met"]]
    # stages
    gst: dict[str, int] = {}
    for s in pstage.tolist():
        gst[s] = gst.get(s, 0) + 1
    bst: dict[str, int] = {}
    for s in b_stage.tolist():
        bst[s] = bst.get(s, 0) + 1
    rep["stages"] = {"gdo": gst, "baseline": bst}
    # fields
    fields = {}
    for f in FIELD_NAMES:
        labs = fl.labels[f]
        codes = fl.codes[f]
        pc_ = np.bincount(codes, minlength=len(labs))
        sc_ = np.bincount(codes[picks], minlength=len(labs)) if len(picks) else np.zeros(len(labs), int)
        bc_ = np.bincount(codes[b_idx], minlength=len(labs)) if len(b_idx) else np.zeros(len(labs), int)
        fields[f] = {"labels": list(labs), "pool": {l: int(c) for l, c in zip(labs, pc_)},
                     "subset": {l: int(c) for l, c in zip(labs, sc_)},
                     "baseline": {l: int(c) for l, c in zip(labs, bc_)},
                     "jsd_subset": jensen_shannon(pc_, sc_), "jsd_baseline": jensen_shannon(pc_, bc_)}
    rep["fields"] = fields
    # strata
    S = fl.stratum_fields.shape[0]
    sp_ = np.bincount(fl.stratum, minlength=S)
    ss_ = np.bincount(fl.stratum[picks], minlength=S) if len(picks) else np.zeros(S, int)
    sb_ = np.bincount(fl.stratum[b_idx], minlength=S) if len(b_idx) else np.zeros(S, int)
    sk_ = np.bincount(fl.stratum[kept], minlength=S) if N else np.zeros(S, int)
    keys = [fl.stratum_label(s) for s in range(S)]
    order = sorted(range(S), key=lambda s: (-int(sp_[s]), keys[s]))[:MAX_STRATA_ROWS]
    rep["strata"] = {"count": int(S), "listed": len(order),
                     "rows": [{"key": keys[s], "pool": int(sp_[s]), "quota": int(s_quota[s]), "kept": int(sk_[s]),
                               "subset": int(ss_[s]), "baseline": int(sb_[s])} for s in order]}
    # descriptor stats
    sets = {"pool": None, "subset": picks, "baseline": b_idx}
    ds = {"score": _hist(score_parts.score, sets), "vds3p": _hist(np.where(has_desc, score_parts.vds3p, np.nan), sets),
          "quality": _hist(desc_cols["quality"], sets)}
    for k, v in D_cols_for_stats.items():
        ds[k] = _hist(v, sets)
    rep["descriptor_stats"] = ds
    rep["z_stats"] = score_parts.z_stats
    rep["baseline"] = {"mult": mult, "target": int(b_target), "size": int(len(b_idx)),
                       "relaxed": int(bst.get("uniform_relaxed", 0)), "seed": int(seed)}
    rep["accounting"] = {"candidates_in_pool": N, "selected": int(len(picks)), "not_selected": int(N - len(picks)),
                         "baseline_selected": int(len(b_idx)), "ingest_rejects": ingest_rejects,
                         "without_descriptor_row": int(N - int(has_desc.sum())),
                         "random_fill": int(gst.get("random_fill", 0)), "budget": n,
                         "short_of_budget": int(max(0, n - len(picks)))}
    return rep


def media_flag_counts(candidates: Any, descriptors: Any = None) -> dict[str, int]:
    """report.json ``media_flags``: flag -> number of candidates carrying it (issue 13 item 8).

    A candidate's flags are the union of ``media_flags`` in the candidates table (found when
    ingest probed the media: ``partial``, ``vfr``, ``rotated``, ``upscaled``, ``animated``, ...)
    and ``media_flags`` in the descriptor table (found when profile decoded it, matched by uid).
    Either table may lack the column; flags are ``gdo.media.probe.FLAGS``. Keys sorted.
    """
    per_uid: dict[str, set[str]] = {}
    for t in (candidates, descriptors):
        if t is None or "media_flags" not in t.column_names or "uid" not in t.column_names:
            continue
        for u, v in zip(t.column("uid").to_pylist(), t.column("media_flags").to_pylist()):
            if v:
                per_uid.setdefault(u, set()).update(v.split(",") if isinstance(v, str) else v)
    counts: dict[str, int] = {}
    for s in per_uid.values():
        for f in s:
            counts[f] = counts.get(f, 0) + 1
    return dict(sorted(counts.items()))
