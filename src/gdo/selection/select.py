"""Goal-driven selection: budget, quotas, constraints, oversampled pools, six fill steps, baseline.

GDO_METHOD.md section 5 (and 4 for the scores). Entry point:

* :func:`select` — in-memory: candidates table (``gdo.schema.CANDIDATE_SCHEMA``) + descriptors
  (table, path or None) + goal -> :class:`SelectionResult` (indices, stages, scores, report dict).
  It neither ingests nor writes: the stage layer (:func:`gdo.stages.select_stage`) reads the
  candidates and writes ``subset.jsonl``, ``baseline.jsonl``, ``selection.jsonl``, ``report.json``,
  ``scores.parquet`` and ``timings.json``.

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

import json

import math
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
from gdo.selection.goal import Goal
from gdo.selection.goalfile import load_goal
from gdo.selection.presets import get_preset
from gdo.descriptors.fields import compute_fields
from gdo.selection.score import candidate_scores, descriptor_terms
from gdo.selection import paper as _paper
from gdo.text import dedup_text, exact_pair_ids

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
    #: per candidate (aligned with ``score``): its stratum key and why it was left out of the GDO
    #: subset ("" when picked); see :func:`_left_out_reasons`. Read by report.html via scores.parquet.
    stratum: list = field(default_factory=list)
    reason: list = field(default_factory=list)
    #: score terms (docs/METHOD.md section 5), float64 (N,) each, aligned with ``score``.
    terms: dict = field(default_factory=dict)

    def scores_table(self):
        """``scores.parquet``: uid, score, stratum, reason (why not picked; "" when picked), the score
        terms, and with a goal set ``relevance`` and ``goal_rel_<space>`` per relevance space; one
        row per candidate in candidates order."""
        import pyarrow as pa

        n = len(self.uids)
        return pa.table({"uid": pa.array(self.uids, pa.string()), "score": pa.array(self.score, pa.float64()),
                         "stratum": pa.array(self.stratum or [None] * n, pa.string()),
                         "reason": pa.array(self.reason or [None] * n, pa.string()),
                         **{k: pa.array(v, pa.float64()) for k, v in self.terms.items()}})

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


def vds_quantile_order(idx: np.ndarray, vds: np.ndarray, strat: np.ndarray, gorder_rank: np.ndarray) -> np.ndarray:
    """Order candidates ``idx`` by the quantile of their VDS *within their own stratum* (best first).

    The temporal-minimum rule of ``temporal_rank = "vds_quantile"`` (docs/METHOD.md section 5). A
    candidate's quantile is ``r / m``: r = its 0-based rank by descending VDS among the ``m``
    candidates of ``idx`` in its stratum that have a VDS, ties broken by ``gorder_rank``. Visiting by
    ascending quantile takes the top share of every stratum before the next share of any, so a
    stratum whose VDS is low in absolute terms (a reference model that prefers a single-frame shortcut
    answers multi-frame questions with a high loss, clean or not) still contributes its cleanest
    candidates first, instead of losing them to a threshold or z-score taken over the whole pool.
    Candidates without a VDS (NaN) come after every candidate with one, in ``gorder_rank`` order.

    Args:
        idx: int64 (k,) candidate indices to order.
        vds: float64 (N,) VDS per candidate (loss_blind - loss_video, nats/token; NaN = missing).
        strat: int64 (N,) stratum code per candidate.
        gorder_rank: int64 (N,) position of each candidate in the score order (0 = best score),
            the tie-break.

    Returns:
        int64 (k,): ``idx`` reordered.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return idx
    v = vds[idx]
    has = ~np.isnan(v)
    s = strat[idx]
    g = gorder_rank[idx]
    q = np.full(idx.size, np.inf)
    hi = np.flatnonzero(has)
    if hi.size:
        # by stratum, then descending VDS, then score order
        o = hi[np.lexsort((g[hi], -v[hi], s[hi]))]
        so = s[o]
        start = np.r_[0, np.flatnonzero(so[1:] != so[:-1]) + 1]
        size = np.diff(np.r_[start, so.size])
        rank = np.arange(so.size) - np.repeat(start, size)
        q[o] = rank / np.repeat(size, size)
    return idx[np.lexsort((g, q))]


def select(candidates: pa.Table, descriptors: pa.Table | Descriptors | str | Path | None, goal: Goal | str | Path | None = None,
           *, preset: str | None = None, mode: str = "default", seed: int = 42, budget: int | str = "auto",
           baseline_mult: float | None = None, allow_random_fill: bool = False, no_vds: bool = False,
           no_ppl: bool = False, no_sc: bool = False, no_vds_budget: bool = False, ingest_rejects: int | None = None,
           pool_files: Sequence[str] = (), k_clusters: int | None = None, goal_set=None,
           embeddings=None, goal_model: dict | None = None) -> SelectionResult:
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
        no_vds / no_ppl / no_sc: ablations of the score terms (vds3', naturalness, q').
        no_vds_budget: ablation of the auto budget's VDS adjustment (the release's
            ``--disable-vds3-budget``; independent of ``no_vds``, as in the release).
        ingest_rejects: count reported in accounting.
        goal_set: a :class:`gdo.goalset.GoalSet` or goal-set file paths (default: the goal's
            ``goal_set`` key); relevance then enters score, quotas and auto budget
            (:mod:`gdo.selection.relevance`) and report.json gains a ``goal`` object.
        embeddings: the pool's embedding store (``embeddings.parquet`` or its folder, or an
            :class:`gdo.descriptors.embedding_store.Embeddings`); None computes text embeddings now.
        goal_model: ``{"path", "device", "batch_size", "trust_remote_code"}`` of the model the pool
            was profiled with: embeds goal items with media in its hidden-state space (the
            ``model`` relevance space); None skips that space (noted when the store has it).

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
    if mode == "paper" and g.temporal_rank != "score":
        raise SelectionError(f"temporal_rank={g.temporal_rank!r} is a default-mode rule; paper mode orders the "
                             "temporal minimum by score, as the release does")
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

        gctx = GoalContext.build(gs_src, uids_arr, cand, embeddings=embeddings, frames=g.frames, model=goal_model)
        score = gctx.adjust_score(score, g.relevance_weight)
    # VDS share r for the budget (its own switch: --no-vds drops only the score term, issue 12 item 10)
    if no_vds_budget or D is None or not has_desc.any():
        vds_pos, vds_tot = None, None
    elif paper:
        v_all, _ = descriptor_terms(stat_desc, sp.z_stats, D.table.num_rows, mode)
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
    if gctx is None:
        s_quota = largest_remainder(s_count, n, mode)
    else:  # quotas lean toward relevant strata; with quota_lean > 0, ties go to the stratum holding
        # the most relevant candidate (quota_lean 0 keeps the preset's quotas exactly)
        best = np.full(S, -np.inf)
        np.maximum.at(best, strat, gctx.relevance)
        s_quota = largest_remainder(gctx.lean_quota_counts(s_count, strat, n, g.quota_lean).astype(np.int64), n, mode,
                                    priority=best if mode == "default" and g.quota_lean > 0 else None)
    # ---- constraints
    is_video = fl.extra["is_video"]
    tset = set(g.temporal_set(mode))
    t_labels = np.asarray([lab in tset for lab in fl.labels["temporal"]], dtype=bool)
    temporal = is_video & t_labels[fl.codes["temporal"]]
    min_video = math.ceil(_exact(mode, g.min_video_ratio) * n)
    max_video = math.floor(_exact(mode, g.max_video_ratio) * n)
    max_video = max(min_video, min(max_video, n))  # the release: never below the minimum (issue 12 item 6)
    min_temporal = math.ceil(_exact(mode, g.min_temporal_in_video_ratio) * max(min_video, video_quota))
    g_labels = fl.labels["source_group"]
    g_count = np.bincount(fl.codes["source_group"], minlength=len(g_labels)).astype(np.int64)
    g_order = np.argsort(-g_count, kind="stable")[: g.source_floor_topk]
    floors: list[tuple[int, int, float]] = []  # (group code, need, expected)
    for gi in g_order.tolist():
        if g_count[gi] == 0 or N == 0:
            continue
        if paper:  # the release's operation order: n * (count / N); floor of at least 1
            expected = n * (float(g_count[gi]) / float(N))
            need = max(max(1, math.ceil(n * g.min_source_group_ratio)),
                       math.ceil(max(0.0, g.source_floor_frac_of_expected) * expected))
        else:
            expected = Fraction(n * int(g_count[gi]), N)
            need = max(math.ceil(_F(g.min_source_group_ratio) * n), math.ceil(_F(g.source_floor_frac_of_expected) * expected))
        if 0 < need <= math.floor(expected):
            floors.append((gi, need, expected))
    tot_need = sum(f[1] for f in floors)
    floor_scale = None
    if paper:
        # the release: all floors within floor(0.7 n) (none when that is 0), each scaled floor >= 1
        limit = math.floor(n * 0.7)
        if limit <= 0:
            floors = []
        elif tot_need > limit:
            floor_scale = limit / float(tot_need)
            floors = [(gi, max(1, math.floor(need * floor_scale)), e) for gi, need, e in floors]
    else:
        limit = Fraction(7, 10) * n
        if tot_need > limit and tot_need > 0:
            floor_scale = limit / tot_need
            floors = [(gi, math.floor(need * floor_scale), e) for gi, need, e in floors]
            floors = [f for f in floors if f[1] > 0]
    # ---- oversampled per-stratum pools
    rng_tie, rng_fill, rng_base = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    if paper:
        # the release's single random.Random(seed) stream (gdo.selection.paper): tie draws and the
        # baseline reservoir interleaved in pool order; best first, ties by the larger draw
        b_target = _paper.baseline_target(n, mult)
        u, reservoir, py_rng = _paper.stream_draws(N, _paper.reservoir_cap(b_target), seed)
        gorder = np.lexsort((-u, -score))
    else:
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
    if paper:
        kept = _paper.shortlist(score, u, strat, keep_k)
    else:
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
        # exact: sketches group the pairs, colliding sketches are compared byte for byte; texts
        # compared after normalising whitespace (paper, as the release) or stripping it (default)
        text_id = exact_pair_ids(dedup_text(cand["question"], mode), dedup_text(cand["answer"], mode))
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
    # (1) temporal-video minimum (order: score, or each stratum's VDS quantile; goal.temporal_rank)
    t_kept = kept_order[temporal[kept_order]]
    t_rest = gorder[temporal[gorder] & ~kept[gorder]]
    if g.temporal_rank == "vds_quantile":
        # one ranking over every temporal candidate: the score shortlist must not decide which
        # ones are in reach (it would, whenever the minimum needs more than the shortlist holds)
        grank = np.empty(N, dtype=np.int64)
        grank[gorder] = np.arange(N)
        t_kept = vds_quantile_order(np.concatenate([t_kept, t_rest]), desc_cols["vds"], strat, grank)
        t_rest = t_rest[:0]
    F.run(t_kept.tolist(), "temporal_min", lambda: F.n_temporal >= min_temporal)
    if not paper:
        F.run(t_rest.tolist(), "temporal_min_pool", lambda: F.n_temporal >= min_temporal)
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
        F.run(reservoir if paper else rng_fill.permutation(N).tolist(), "random_fill", lambda: False)
    T["fill"] = time.perf_counter() - t1
    # ---- baseline
    t1 = time.perf_counter()
    if paper:
        bl, br = _paper.baseline(reservoir, py_rng, b_target, text_id.tolist(), vid.tolist(), g.max_qa_per_video)
        b_idx, b_relaxed = np.asarray(bl, dtype=np.int64), np.asarray(br, dtype=bool)
    else:
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
            "no_vds": no_vds, "no_ppl": no_ppl, "no_sc": no_sc, "no_vds_budget": bool(no_vds_budget),
            "allow_random_fill": bool(allow_random_fill)},
        pool_files=list(pool_files), D=D, has_desc=has_desc, budget=bud, b_labels=b_labels, b_quota=b_quota,
        s_quota=s_quota, kept=kept, fl=fl, picks=picks, pstage=pstage, b_idx=b_idx, b_stage=b_stage,
        b_target=b_target, mult=mult, cons=constraints_info, is_video=is_video, temporal=temporal, grp=grp,
        score_parts=sp, desc_cols=desc_cols, D_cols_for_stats=_stat_cols(D, has_desc, take, N),
        ingest_rejects=ingest_rejects, tnc_judge=tnc_judge)
    from gdo.selection.report import media_flag_counts  # issue 13 item 8 (lane media hook)

    report["media_flags"] = media_flag_counts(candidates, D.table if D is not None else None)
    if gctx is not None:
        report["goal"] = gctx.report(candidates, picks, b_idx, weight=g.relevance_weight, lean=g.quota_lean,
                                     budget_info=goal_budget, seed=seed, cand_rows=None if identity else order0)
    T["report"] = time.perf_counter() - t1
    T["select_total"] = time.perf_counter() - t0
    full_score = np.empty(N)
    rows_of = order0 if not identity else np.arange(N)
    full_score[rows_of] = score
    uids = candidates["uid"].to_pylist()
    s_keys = [fl.stratum_label(s) for s in range(S)]
    full_stratum = [None] * N
    full_reason = [None] * N
    for j, r in enumerate(rows_of.tolist()):
        full_stratum[r] = s_keys[int(strat[j])]
    for j, why in enumerate(_left_out_reasons(F, kept, s_quota, strat, text_id, vid, is_video, max_video,
                                              g.max_qa_per_video)):
        full_reason[int(rows_of[j])] = why
    terms = {}
    for name in ("base_norm", "vds3p", "qp", "naturalness", "difficulty", "alignment"):
        terms[name] = np.empty(N)
        terms[name][rows_of] = getattr(sp, name)
    if gctx is not None:  # goal relevance and its per-space values (issue 15 item 2), NaN = space absent
        for name, vals in [("relevance", gctx.relevance)] + [(f"goal_rel_{k}", v) for k, v in gctx.per_space.items()]:
            terms[name] = np.full(N, np.nan)
            terms[name][rows_of] = vals
    return SelectionResult(gdo_idx=gdo_rows, gdo_stage=pstage.tolist(), baseline_idx=base_rows,
                           baseline_stage=b_stage.tolist(), score=full_score, report=report, uids=uids, timings=T,
                           stratum=full_stratum, reason=full_reason, terms=terms)


def _left_out_reasons(F: _Filler, kept, s_quota, strat, text_id, vid, is_video, max_video: int, cap: int) -> list[str]:
    """Why each candidate (selection order) is not in the GDO subset; "" for a pick.

    First match of: ``stratum quota 0`` (its stratum gets no quota), ``not in the kept pool``
    (ranked below its stratum's oversampled shortlist), ``duplicate`` (its (question, answer) text
    was already picked), ``per-video cap`` (its video already has ``cap`` picks), ``video share
    bound`` (the subset holds max_video videos), else ``outscored`` (the budget filled first).
    """
    out = []
    taken, tu, vc = F.taken, F.text_used, F.vcount
    for i in range(len(text_id)):
        if taken[i]:
            out.append("")
        elif s_quota[strat[i]] <= 0:
            out.append("stratum quota 0")
        elif not kept[i]:
            out.append("not in the kept pool")
        elif tu[int(text_id[i])]:
            out.append("duplicate")
        elif is_video[i] and vid[i] >= 0 and vc[int(vid[i])] >= cap:
            out.append("per-video cap")
        elif is_video[i] and F.n_video >= max_video:
            out.append("video share bound")
        else:
            out.append("outscored")
    return out


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


def embedding_store_beside(descriptors_path):
    """``embeddings.parquet`` beside a descriptors.parquet (or in its folder), else None."""
    if descriptors_path is None or isinstance(descriptors_path, pa.Table):
        return None
    p = Path(descriptors_path)
    f = (p if p.is_dir() else p.parent) / "embeddings.parquet"
    return f if f.exists() else None
