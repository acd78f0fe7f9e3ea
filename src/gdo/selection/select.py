"""Goal-driven selection: budget, quotas, constraints, oversampled pools, six fill steps, baseline.

GDO_METHOD.md section 5 (and 4 for the scores). Entry points:

* :func:`select` — in-memory: candidates table (``gdo.schema.CANDIDATE_SCHEMA``) + descriptors
  (table, path or None) + goal -> :class:`SelectionResult` (indices, stages, scores, report dict).
* :func:`run_select` — files: ingests the pool (``probe_media=False``: select never opens media),
  reads the descriptors, selects, and writes ``subset.jsonl``, ``baseline.jsonl``,
  ``selection.jsonl``, ``report.json`` (deterministic) and ``timings.json`` into ``out_dir``.

Modes: ``paper`` reproduces the release (float budget arithmetic, mean/std z over every descriptor
row, durations after the 32-frame cut, whitespace-collapsing MCQ test, every video question counted
temporal, random-reservoir fill step, image candidates before video candidates in pool order).
``default`` fixes section 7's flaws: robust z everywhere, exact arithmetic, native-frame durations,
temporal = TNC judge >= 0.5 (lexical where the judge did not run), proper MCQ detection, no random
fill unless ``allow_random_fill``; and a constraint step (temporal minimum, video minimum, source
floors) that cannot be met from the oversampled pools continues into the rest of the pool by score
(stages ``*_pool``), so every constraint the pool can satisfy is met.

``report.json`` schema: docs/REPORT_SCHEMA.md (built by :mod:`gdo.selection.report`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo.schema import SHORT_VIDEO
from gdo.selection.baseline import eligible_in_order, uniform_baseline
from gdo.selection.budget import _F, auto_budget, largest_remainder
from gdo.selection.descriptors_io import Descriptors, read_descriptors
from gdo.selection.goal import Goal, load_goal
from gdo.selection.presets import get_preset
from gdo.selection.score import candidate_scores, compute_fields, descriptor_terms
from gdo.selection.text import exact_pair_ids

STAGES = ("temporal_min", "temporal_min_pool", "video_min", "video_min_pool", "source_floor",
          "source_floor_pool", "stratum_quota", "global", "goal_pool", "random_fill")
BASELINE_STAGES = ("uniform", "uniform_relaxed")
_SLIM_COLS = ("uid", "bucket", "question", "answer", "data_source", "n_frames", "native_frames",
              "media_kind", "video_key", "pool_pos")


class SelectionError(ValueError):
    """Invalid selection input (missing columns, bad mode, bad budget)."""


@dataclass
class SelectionResult:
    """Result of :func:`select`.

    ``gdo_idx`` / ``baseline_idx``: int64 row indices into the candidates table given to select, in
    pool order; ``gdo_stage`` / ``baseline_stage``: stage name per pick; ``score``: float64 (N,)
    candidate scores aligned with the candidates table; ``report``: the report.json dict.
    """

    gdo_idx: np.ndarray
    gdo_stage: list
    baseline_idx: np.ndarray
    baseline_stage: list
    score: np.ndarray
    report: dict
    uids: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def gdo_uids(self) -> list[str]:
        return [self.uids[i] for i in self.gdo_idx.tolist()]

    def baseline_uids(self) -> list[str]:
        return [self.uids[i] for i in self.baseline_idx.tolist()]


def _resolve_goal(goal: Goal | str | Path | None, preset: str | None) -> tuple[Goal, str]:
    if isinstance(goal, Goal):
        return goal, "goal"
    if goal is not None:
        return load_goal(goal), str(goal)
    if preset is None:
        raise SelectionError("give a preset (--preset) or a goal file (--goal)")
    return get_preset(preset), "preset"


def _slim(cand: pa.Table) -> pa.Table:
    missing = [c for c in ("uid", "bucket", "question", "answer") if c not in cand.column_names]
    if missing:
        raise SelectionError(f"candidates table lacks column(s) {missing}")
    cols = {c: cand[c] for c in _SLIM_COLS if c in cand.column_names}
    for c in ("question", "answer"):
        # one contiguous chunk, built once (type kept): tokenisation, MCQ/temporal tests and the
        # text keys all scan these buffers instead of each combining the chunks again
        cols[c] = _one_chunk(cols[c])
    if "media_len" in cand.column_names:
        cols["media_len"] = cand["media_len"]
    elif "media" in cand.column_names:
        cols["media_len"] = pc.fill_null(pc.list_value_length(cand["media"]), 0)
    return pa.table(cols)


def _one_chunk(a):
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def _exact(mode: str, x: float):
    return float(x) if mode == "paper" else _F(x)


class _Filler:
    """State of the fill: taken flags, used texts, per-video counts, counters; a tight loop per step."""

    def __init__(self, n_budget, text_id, vid, is_video, temporal, group, stratum, max_video, cap):
        self.n = n_budget
        self.text = text_id
        self.vid = vid
        self.isv = is_video
        self.tmp = temporal
        self.grp = group
        self.strat = stratum
        self.max_video = max_video
        self.cap = cap
        N = len(text_id)
        self.taken = bytearray(N)
        self.text_used = bytearray(int(max(text_id)) + 1 if N else 0)
        self.vcount = [0] * (int(max(vid)) + 1 if N and max(vid) >= 0 else 0)
        self.n_video = 0
        self.n_temporal = 0
        self.group_count: dict[int, int] = {}
        self.strat_count: dict[int, int] = {}
        self.picks: list[int] = []
        self.stages: list[str] = []

    def run(self, order, stage, until) -> int:
        """Visit ``order`` (list of candidate indices); take allowed ones until ``until()`` is True."""
        taken, tu, vc, text, vid, isv, tmp = self.taken, self.text_used, self.vcount, self.text, self.vid, self.isv, self.tmp
        grp, strat, gc, sc = self.grp, self.strat, self.group_count, self.strat_count
        got = 0
        if until() or len(self.picks) >= self.n:
            return 0
        for i in order:
            if taken[i]:
                continue
            t = text[i]
            if tu[t]:
                continue
            if isv[i]:
                if self.n_video >= self.max_video:
                    continue
                v = vid[i]
                if v >= 0:
                    if vc[v] >= self.cap:
                        continue
                    vc[v] += 1
                self.n_video += 1
                if tmp[i]:
                    self.n_temporal += 1
            taken[i] = 1
            tu[t] = 1
            g = grp[i]
            gc[g] = gc.get(g, 0) + 1
            s = strat[i]
            sc[s] = sc.get(s, 0) + 1
            self.picks.append(i)
            self.stages.append(stage)
            got += 1
            if len(self.picks) >= self.n or until():
                break
        return got


def select(candidates: pa.Table, descriptors: pa.Table | Descriptors | str | Path | None, goal: Goal | str | Path | None = None,
           *, preset: str | None = None, mode: str = "default", seed: int = 42, budget: int | str = "auto",
           baseline_mult: float | None = None, allow_random_fill: bool = False, no_vds: bool = False,
           no_ppl: bool = False, no_sc: bool = False, ingest_rejects: int | None = None,
           pool_files: Sequence[str] = (), k_clusters: int | None = None, goal_set=None,
           embeddings=None) -> SelectionResult:
    """Select the GDO subset and the Uni-Nx baseline (GDO_METHOD.md sections 4-5).

    Args:
        candidates: N candidates (CANDIDATE_SCHEMA; at least uid, bucket, question, answer;
            data_source, video_key, n_frames, native_frames, media_kind, media, pool_pos used when present).
        descriptors: a canonical/raw descriptor table, a :class:`Descriptors`, a path in any accepted
            form (see :mod:`gdo.selection.descriptors_io`), or None (every candidate lacks a row).
        goal: a Goal, or a goal file path; else ``preset`` names one of the presets.
        mode: ``default`` or ``paper``. seed: tie draws, random fill and baseline.
        budget: ``"auto"`` or a fixed int. baseline_mult: defaults to the goal's (10).
        allow_random_fill: default mode only (paper mode always fills at random when short).
        no_vds / no_ppl / no_sc: ablations. ingest_rejects: count reported in accounting.
        goal_set: a :class:`gdo.goalset.GoalSet` or goal-set file paths (default: the goal's
            ``goal_set`` key); relevance then enters score, quotas and auto budget
            (:mod:`gdo.selection.relevance`) and report.json gains a ``goal`` object.
        embeddings: the pool's embedding store (``embeddings.parquet`` or its folder, or an
            :class:`gdo.descriptors.embedding_store.Embeddings`); None computes text embeddings now.

    Returns:
        :class:`SelectionResult`.

    Raises:
        SelectionError, GoalError, DescriptorError: invalid inputs.
    """
    if mode not in ("default", "paper"):
        raise SelectionError(f"mode must be 'default' or 'paper', not {mode!r}")
    if budget != "auto":
        try:
            budget = int(budget)
        except (TypeError, ValueError):
            raise SelectionError(f"budget must be 'auto' or a non-negative integer, not {budget!r}") from None
        if budget < 0:
            raise SelectionError(f"budget must be non-negative, got {budget}")
    g, goal_source = _resolve_goal(goal, preset)
    mult = float(baseline_mult if baseline_mult is not None else g.baseline_mult)
    T: dict[str, float] = {}
    t0 = time.perf_counter()
    paper = mode == "paper"
    cand = _slim(candidates)
    N = cand.num_rows
    # ---- pool order (paper: image candidates first, then video; rows and turns in file order)
    pos = np.asarray(cand["pool_pos"], dtype=np.int64) if "pool_pos" in cand.column_names else np.arange(N)
    is_video0 = np.asarray(pc.equal(pc.fill_null(cand["bucket"], ""), SHORT_VIDEO), dtype=bool)
    order0 = np.lexsort((pos, is_video0)) if paper else np.argsort(pos, kind="stable")
    identity = bool(np.array_equal(order0, np.arange(N)))
    if not identity:
        cand = cand.take(pa.array(order0))
    uids_arr = cand["uid"]
    if uids_arr.null_count:
        raise SelectionError("candidates: null uid")
    if N and len(pc.unique(uids_arr)) != N:
        raise SelectionError("candidates: duplicate uids")
    T["prepare"] = time.perf_counter() - t0
    # ---- descriptors
    t1 = time.perf_counter()
    if descriptors is None or isinstance(descriptors, Descriptors):
        D = descriptors
    else:
        D = read_descriptors(descriptors, candidates=cand, mode=mode, seed=seed, k=k_clusters)
    T["descriptors"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    if D is not None and D.table.num_rows:
        didx = np.asarray(pc.fill_null(pc.index_in(uids_arr, value_set=D.table["uid"]), -1), dtype=np.int64)
    else:
        didx = np.full(N, -1, dtype=np.int64)
    has_desc = didx >= 0
    if D is not None and D.table.num_rows and N and not has_desc.any():
        ex_c = uids_arr[0].as_py() if hasattr(uids_arr, "__getitem__") else "?"
        ex_d = D.table["uid"][0].as_py()
        raise SelectionError(
            f"the descriptor file ({getattr(D, 'path', None) or 'table'}) matches none of the {N:,} candidates: "
            f"its uids (e.g. {ex_d!r}) differ from the pool's (e.g. {ex_c!r}); was it computed on another pool?")
    take = np.where(has_desc, didx, 0)

    def dcol(name):
        if D is None or D.table.num_rows == 0:
            return np.full(N, np.nan)
        v = np.asarray(pc.fill_null(D.table[name], np.nan), dtype=np.float64)
        return np.where(has_desc, v[take], np.nan)

    desc_cols = {k: dcol(k) for k in ("loss_video", "loss_blind", "frame_diversity", "vds")}
    desc_cols["quality"] = dcol("quality_score")
    tnc_judge = dcol("tnc_judge")
    nat_frames = dcol("native_frames")
    # ---- fields and scores
    fl = compute_fields(cand, mode, tnc_judge=tnc_judge if not paper else None, native_frames=nat_frames,
                        frames=g.frames)
    T["fields"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    stat_desc = None
    if paper and D is not None and D.table.num_rows:
        full = {k: np.asarray(pc.fill_null(D.table[k], np.nan), dtype=np.float64)
                for k in ("loss_video", "loss_blind", "frame_diversity", "vds")}
        full["quality"] = np.asarray(pc.fill_null(D.table["quality_score"], np.nan), dtype=np.float64)
        stat_desc = full
    sp = candidate_scores(fl, desc_cols, has_desc, mode, stat_desc=stat_desc, no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc)
    score = sp.score
    # ---- goal set (issue 15): relevance enters the score (gdo.selection.relevance)
    gctx = None
    gs_src = goal_set if goal_set is not None else g.goal_set
    if gs_src is not None:
        from gdo.selection.relevance import GoalContext

        gctx = GoalContext.build(gs_src, uids_arr, cand, embeddings=embeddings, frames=g.frames)
        score = gctx.adjust_score(score, g.relevance_weight)
    # VDS share r for the budget
    if no_vds or D is None or not has_desc.any():
        vds_pos, vds_tot = None, None
    elif paper:
        v_all, _ = descriptor_terms(stat_desc, sp.z_stats, D.table.num_rows)
        vds_pos, vds_tot = int((v_all > g.vds3_threshold).sum()), int(D.table.num_rows)
    else:
        vds_pos, vds_tot = int((sp.vds3p[has_desc] > g.vds3_threshold).sum()), int(N)
    T["score"] = time.perf_counter() - t1
    # ---- budget and quotas
    t1 = time.perf_counter()
    S = fl.stratum_fields.shape[0]
    strat = fl.stratum
    s_count = np.bincount(strat, minlength=S).astype(np.int64)
    goal_budget = gctx.budget(g, N)[1] if gctx is not None and budget == "auto" else None
    bud = auto_budget(s_count, g, mode, vds_positive=vds_pos, vds_total=vds_tot,
                      budget=goal_budget["n"] if goal_budget else budget)
    if goal_budget:
        bud.update({"mode": "goal_set", "goal_set_rule": goal_budget})
    if budget == "auto" and not paper and int(bud["n"]) == 0 and N > 0:
        # every preset gives a non-empty subset on a pool with a usable candidate (issue 15)
        bud["n_before_nonempty_rule"] = 0
        bud["n"] = min(N, max(1, math.ceil(_F(g.max_ratio) * N)))
        bud["nonempty_rule"] = "auto budget 0 on a non-empty pool -> min(N, max(1, ceil(max_ratio*N)))"
    n = int(bud["n"])
    b_labels = fl.labels["bucket"]
    b_count = np.bincount(fl.codes["bucket"], minlength=len(b_labels)).astype(np.int64)
    b_quota = largest_remainder(b_count, n, mode)
    video_quota = int(sum(q for lab, q in zip(b_labels, b_quota) if lab == SHORT_VIDEO))
    s_quota = largest_remainder(s_count if gctx is None else
                                gctx.lean_quota_counts(s_count, strat, n, g.quota_lean).astype(np.int64), n, mode)
    # ---- constraints
    is_video = fl.extra["is_video"]
    tset = set(g.temporal_set(mode))
    t_labels = np.asarray([lab in tset for lab in fl.labels["temporal"]], dtype=bool)
    temporal = is_video & t_labels[fl.codes["temporal"]]
    min_video = math.ceil(_exact(mode, g.min_video_ratio) * n)
    max_video = math.floor(_exact(mode, g.max_video_ratio) * n)
    min_temporal = math.ceil(_exact(mode, g.min_temporal_in_video_ratio) * max(min_video, video_quota))
    g_labels = fl.labels["source_group"]
    g_count = np.bincount(fl.codes["source_group"], minlength=len(g_labels)).astype(np.int64)
    g_order = np.argsort(-g_count, kind="stable")[: g.source_floor_topk]
    floors: list[tuple[int, int, float]] = []  # (group code, need, expected)
    for gi in g_order.tolist():
        if g_count[gi] == 0 or N == 0:
            continue
        if paper:
            expected = n * float(g_count[gi]) / N
            need = max(math.ceil(n * g.min_source_group_ratio), math.ceil(g.source_floor_frac_of_expected * expected))
        else:
            expected = Fraction(n * int(g_count[gi]), N)
            need = max(math.ceil(_F(g.min_source_group_ratio) * n), math.ceil(_F(g.source_floor_frac_of_expected) * expected))
        if 0 < need <= math.floor(expected):
            floors.append((gi, need, expected))
    tot_need = sum(f[1] for f in floors)
    limit = 0.7 * n if paper else Fraction(7, 10) * n
    floor_scale = None
    if tot_need > limit and tot_need > 0:
        floor_scale = limit / tot_need
        floors = [(gi, math.floor(need * floor_scale), e) for gi, need, e in floors]
        floors = [f for f in floors if f[1] > 0]
    # ---- oversampled per-stratum pools
    rng_tie, rng_fill, rng_base = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    u = rng_tie.random(N)
    gorder = np.lexsort((u, -score))  # best first, ties by a seeded draw
    s_is_video = np.zeros(S, dtype=bool)
    s_temporal = np.zeros(S, dtype=bool)
    if N:
        first_of = np.full(S, N, dtype=np.int64)
        np.minimum.at(first_of, strat, np.arange(N))
        s_is_video = is_video[first_of]
        s_temporal = temporal[first_of]
    m_img = _exact(mode, g.oversample)
    m_vid = max(_exact(mode, g.oversample), _exact(mode, g.video_oversample))
    m_tmp = max(m_vid, _exact(mode, g.temporal_oversample))
    keep_k = np.asarray([math.ceil(int(q) * (m_tmp if st else m_vid if sv else m_img)) if q > 0 else 0
                         for q, sv, st in zip(s_quota.tolist(), s_is_video.tolist(), s_temporal.tolist())],
                        dtype=np.int64)
    sorder = gorder[np.argsort(strat[gorder], kind="stable")]  # by stratum, best first inside
    s_start = np.r_[0, np.cumsum(s_count)[:-1]] if S else np.zeros(0, np.int64)
    rank = np.empty(N, dtype=np.int64)
    rank[sorder] = np.arange(N) - np.repeat(s_start, s_count)
    kept = rank < keep_k[strat] if N else np.zeros(0, bool)
    T["budget_quotas"] = time.perf_counter() - t1
    # ---- text and video keys
    t1 = time.perf_counter()
    # (question, answer) text key: one code per distinct pair
    if N:
        # exact: sketches group the pairs, colliding sketches are compared byte for byte
        text_id = exact_pair_ids(cand["question"], cand["answer"])
    else:
        text_id = np.zeros(0, np.int64)
    if "video_key" in cand.column_names:
        vk = pc.dictionary_encode(_one_chunk(cand["video_key"]))
        vid = np.asarray(pc.fill_null(vk.indices, -1), dtype=np.int64)
    else:
        vid = np.full(N, -1, dtype=np.int64)
    vid = np.where(is_video, vid, -1)
    T["keys"] = time.perf_counter() - t1
    # ---- feasibility (before filling): what the pool can give under dedup + cap + max video
    t1 = time.perf_counter()
    elig_pos = eligible_in_order(gorder, text_id, vid, g.max_qa_per_video)
    elig = np.zeros(N, dtype=bool)
    elig[gorder[elig_pos]] = True
    av_video = int((elig & is_video).sum())
    av_img = int((elig & ~is_video).sum())
    av_temporal = int((elig & temporal).sum())
    grp = fl.codes["source_group"].astype(np.int64)
    # ---- fill
    F = _Filler(n, text_id.tolist(), vid.tolist(), is_video.tolist(), temporal.tolist(), grp.tolist(),
                strat.tolist(), max_video, g.max_qa_per_video)
    kept_order = gorder[kept[gorder]]
    kept_list = kept_order.tolist()
    # (1) temporal-video minimum
    F.run(kept_order[temporal[kept_order]].tolist(), "temporal_min", lambda: F.n_temporal >= min_temporal)
    if not paper:
        F.run(gorder[temporal[gorder] & ~kept[gorder]].tolist(), "temporal_min_pool", lambda: F.n_temporal >= min_temporal)
    # (2) video minimum
    F.run(kept_order[is_video[kept_order]].tolist(), "video_min", lambda: F.n_video >= min_video)
    if not paper:
        F.run(gorder[is_video[gorder] & ~kept[gorder]].tolist(), "video_min_pool", lambda: F.n_video >= min_video)
    # (3) source-group floors, groups by descending count (ties first-seen)
    kg = grp[kept_order]
    for gi, need, _ in floors:
        F.run(kept_order[kg == gi].tolist(), "source_floor", lambda gi=gi, need=need: F.group_count.get(gi, 0) >= need)
        if not paper:
            F.run(gorder[(grp[gorder] == gi) & ~kept[gorder]].tolist(), "source_floor_pool",
                  lambda gi=gi, need=need: F.group_count.get(gi, 0) >= need)
    # (4) stratum quotas, strata in first-seen order
    ks = strat[kept_order]
    korder = np.argsort(ks, kind="stable")
    ks_sorted = ks[korder]
    kept_by_s = kept_order[korder]
    bounds = np.searchsorted(ks_sorted, np.arange(S + 1))
    for s in range(S):
        q = int(s_quota[s])
        if q <= 0 or bounds[s] == bounds[s + 1] or len(F.picks) >= n:
            continue
        if F.strat_count.get(s, 0) >= q:
            continue
        F.run(kept_by_s[bounds[s]:bounds[s + 1]].tolist(), "stratum_quota", lambda s=s, q=q: F.strat_count.get(s, 0) >= q)
    # (5) global by score
    F.run(kept_list, "global", lambda: False)
    if gctx is not None and not paper:
        # (5b) goal set: the rest of the pool by (relevance-weighted) score, so a small budget is met
        # when dedup, the per-video cap or the video bounds empty the per-stratum shortlists
        F.run(gorder[~kept[gorder]].tolist(), "goal_pool", lambda: False)
    # (6) random reservoir
    random_allowed = paper or allow_random_fill
    if random_allowed and len(F.picks) < n:
        F.run(rng_fill.permutation(N).tolist(), "random_fill", lambda: False)
    T["fill"] = time.perf_counter() - t1
    # ---- baseline
    t1 = time.perf_counter()
    b_target = int(min(N, round(mult * n)))
    b_idx, b_relaxed = uniform_baseline(N, b_target, text_id, vid, g.max_qa_per_video, rng_base)
    T["baseline"] = time.perf_counter() - t1
    # ---- results in pool order
    picks = np.asarray(F.picks, dtype=np.int64)
    pstage = np.asarray(F.stages, dtype=object)
    o = np.argsort(picks, kind="stable")
    picks, pstage = picks[o], pstage[o]
    o = np.argsort(b_idx, kind="stable")
    b_idx, b_relaxed = b_idx[o], b_relaxed[o]
    b_stage = np.where(b_relaxed, "uniform_relaxed", "uniform").astype(object)
    # map back to the caller's row order
    back = order0 if not identity else None
    gdo_rows = back[picks] if back is not None else picks
    base_rows = back[b_idx] if back is not None else b_idx
    # ---- report
    t1 = time.perf_counter()
    from gdo.selection.report import build_report

    constraints_info = {
        "n": n, "min_video": min_video, "max_video": max_video, "min_temporal": min_temporal,
        "video_quota": video_quota, "floors": floors, "floor_scale": floor_scale,
        "av_video": av_video, "av_img": av_img, "av_temporal": av_temporal, "elig": elig,
    }
    report = build_report(
        mode=mode, seed=seed, goal=g, goal_source=goal_source, ablations={
            "no_vds": no_vds, "no_ppl": no_ppl, "no_sc": no_sc, "allow_random_fill": bool(allow_random_fill)},
        pool_files=list(pool_files), D=D, has_desc=has_desc, budget=bud, b_labels=b_labels, b_quota=b_quota,
        s_quota=s_quota, kept=kept, fl=fl, picks=picks, pstage=pstage, b_idx=b_idx, b_stage=b_stage,
        b_target=b_target, mult=mult, cons=constraints_info, is_video=is_video, temporal=temporal, grp=grp,
        score_parts=sp, desc_cols=desc_cols, D_cols_for_stats=_stat_cols(D, has_desc, take, N),
        ingest_rejects=ingest_rejects, tnc_judge=tnc_judge)
    if gctx is not None:
        report["goal"] = gctx.report(candidates, picks, b_idx, weight=g.relevance_weight, lean=g.quota_lean,
                                     budget_info=goal_budget, seed=seed, cand_rows=None if identity else order0)
    T["report"] = time.perf_counter() - t1
    T["select_total"] = time.perf_counter() - t0
    full_score = np.empty(N)
    full_score[order0 if not identity else np.arange(N)] = score
    uids = candidates["uid"].to_pylist()
    return SelectionResult(gdo_idx=gdo_rows, gdo_stage=pstage.tolist(), baseline_idx=base_rows,
                           baseline_stage=b_stage.tolist(), score=full_score, report=report, uids=uids, timings=T)


def _stat_cols(D, has_desc, take, N) -> dict[str, np.ndarray]:
    out = {}
    if D is None or D.table.num_rows == 0:
        return out
    for k in ("loss_video", "loss_blind", "vds", "ppl", "sc", "tnc", "amm", "frame_diversity", "cluster_rep"):
        col = D.table[k]
        if col.null_count == len(col):
            continue
        v = np.asarray(pc.fill_null(col, np.nan), dtype=np.float64)
        out[k] = np.where(has_desc, v[take], np.nan)
    return out


# ----------------------------------------------------------------------------- files
def _default_store(descriptors_path):
    """``embeddings.parquet`` beside a descriptors.parquet (or in its folder), else None."""
    if descriptors_path is None or isinstance(descriptors_path, pa.Table):
        return None
    p = Path(descriptors_path)
    f = (p if p.is_dir() else p.parent) / "embeddings.parquet"
    return f if f.exists() else None


def _fallback_write_rows(candidates: pa.Table, uids: Sequence[str], out_path: Path) -> int:
    """Minimal writer (used only when gdo.pool.writer is unavailable): one LLaVA-style row per candidate."""
    from gdo.utils.io import atomic_open
    import orjson

    want = pa.array(list(uids), pa.string())
    mask = pc.is_in(candidates["uid"], value_set=want)
    sub = candidates.filter(mask)
    if "pool_pos" in sub.column_names:
        sub = sub.take(pc.sort_indices(sub, [("pool_pos", "ascending")]))
    rows = sub.to_pylist()
    with atomic_open(out_path, "wb") as f:
        for r in rows:
            kind = r.get("media_kind")
            tok = "<video>" if r.get("bucket") == SHORT_VIDEO else "<image>"
            nmedia = len(r.get("media_raw") or []) if kind == "image" else (1 if r.get("media_raw") else 0)
            obj = {"id": r.get("row_id"), "uid": r["uid"],
                   "conversations": [{"from": "human", "value": tok * nmedia + ("\n" if nmedia else "") + (r.get("question") or "")},
                                     {"from": "gpt", "value": r.get("answer") or ""}]}
            if r.get("data_source") is not None:
                obj["data_source"] = r["data_source"]
            if kind == "image":
                obj["image"] = r.get("media_raw")
            elif kind in ("frames", "video"):
                obj["video"] = r.get("media_raw") if kind == "frames" else (r.get("media_raw") or [None])[0]
            f.write(orjson.dumps(obj) + b"\n")
    return len(rows)


def _write_rows(candidates: pa.Table, uids: Sequence[str], out_path: Path) -> tuple[int, str]:
    try:
        from gdo.pool.writer import write_rows  # type: ignore
    except ImportError:
        return _fallback_write_rows(candidates, uids, out_path), "fallback"
    return int(write_rows(candidates, list(uids), out_path)), "gdo.pool.writer"


def run_select(pool_paths: Sequence[str | Path] | None, descriptors_path: str | Path | pa.Table | None,
               out_dir: str | Path, *, preset: str | None = None, goal: Goal | str | Path | None = None,
               candidates: pa.Table | None = None, ingest_rejects: int | None = None,
               mode: str = "default", seed: int = 42, budget: int | str = "auto",
               baseline_mult: float | None = None, allow_random_fill: bool = False, no_vds: bool = False,
               no_ppl: bool = False, no_sc: bool = False, media_root: str | None = None, fmt: str | None = None,
               write_subsets: bool = True, workers: int = 0, goal_set=None, embeddings=None) -> SelectionResult:
    """Select from files (or an already-ingested ``candidates`` table) and write the outputs.

    Writes ``out_dir``/``subset.jsonl``, ``baseline.jsonl`` (pool's own format, only the chosen
    turns), ``selection.jsonl`` (``{"uid", "set", "score", "stage"}`` per pick: the GDO picks in
    pool order, then the baseline picks in pool order), ``report.json`` (byte-identical for the
    same inputs and seed) and ``timings.json``.

    ``workers`` processes parse large JSONL pool files (0 = one per CPU, at most 8); the output is
    identical for any value.

    Raises:
        SelectionError: neither pool paths nor candidates given; and the errors of :func:`select`.
    """
    from gdo.utils.io import atomic_open, dumps_json, write_json_atomic

    import orjson

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if candidates is None:
        if not pool_paths:
            raise SelectionError("no pool files given")
        from gdo.pool.ingest import ingest

        missing = [str(p) for p in pool_paths if not Path(p).exists()]
        if missing:
            raise SelectionError(f"pool file not found: {', '.join(missing)}")
        # lean ingest: no media files opened, no media path lists built (select never needs them)
        n_workers = workers if workers > 0 else max(1, min(8, os.cpu_count() or 1))
        res = ingest([str(p) for p in pool_paths], media_root=media_root, fmt=fmt, probe_media=False,
                     media_columns=False, workers=n_workers)
        candidates = res.candidates
        if candidates.num_rows == 0:
            reasons: dict[str, int] = {}
            for r in res.rejects:
                reasons[r.get("reason", "?")] = reasons.get(r.get("reason", "?"), 0) + 1
            detail = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "no rows"
            raise SelectionError(f"nothing usable was read: no candidate in any pool file ({detail})")
        if ingest_rejects is None:
            rej = getattr(res, "rejects", None)
            ingest_rejects = (rej.num_rows if hasattr(rej, "num_rows") else len(rej)) if rej is not None else None
        # selection and the row writer never need the media path lists (most of the table's memory):
        # keep only their lengths
        drop = [c for c in ("media", "media_raw") if c in candidates.column_names]
        if drop:
            mlen = pc.fill_null(pc.list_value_length(candidates["media"]), 0) if "media" in drop else None
            candidates = candidates.drop_columns(drop)
            if mlen is not None:
                candidates = candidates.append_column("media_len", mlen)
        del res
        timings["ingest"] = time.perf_counter() - t0
    result = select(candidates, descriptors_path, goal, preset=preset, mode=mode, seed=seed, budget=budget,
                    baseline_mult=baseline_mult, allow_random_fill=allow_random_fill, no_vds=no_vds,
                    no_ppl=no_ppl, no_sc=no_sc, ingest_rejects=ingest_rejects,
                    pool_files=[str(p) for p in (pool_paths or [])], goal_set=goal_set,
                    embeddings=embeddings if embeddings is not None else _default_store(descriptors_path))
    timings.update(result.timings)
    t1 = time.perf_counter()
    g_uids = result.gdo_uids()
    b_uids = result.baseline_uids()
    writer = None
    if write_subsets:
        try:
            from gdo.pool.writer import write_row_sets
        except ImportError:
            _, writer = _write_rows(candidates, g_uids, out / "subset.jsonl")
            _write_rows(candidates, b_uids, out / "baseline.jsonl")
        else:
            # both files in one pass over the pool files
            write_row_sets(candidates, [(result.gdo_idx, out / "subset.jsonl"),
                                        (result.baseline_idx, out / "baseline.jsonl")])
            writer = "gdo.pool.writer"
    timings["write_subsets"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    sc = result.score
    with atomic_open(out / "selection.jsonl", "wb") as f:
        buf = []
        for i, u, st in zip(result.gdo_idx.tolist(), g_uids, result.gdo_stage):
            buf.append(orjson.dumps({"uid": u, "set": "gdo", "score": float(sc[i]), "stage": st}))
        for i, u, st in zip(result.baseline_idx.tolist(), b_uids, result.baseline_stage):
            buf.append(orjson.dumps({"uid": u, "set": "baseline", "score": float(sc[i]), "stage": st}))
        f.write(b"\n".join(buf) + (b"\n" if buf else b""))
    result.report["outputs"] = {"writer": writer, "files": ["subset.jsonl", "baseline.jsonl", "selection.jsonl",
                                                            "report.json"]}
    with atomic_open(out / "report.json", "wb") as f:
        f.write(dumps_json(result.report))
    timings["write_selection_report"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    write_json_atomic(out / "timings.json", {k: round(v, 4) for k, v in timings.items()})
    result.timings = timings
    return result
