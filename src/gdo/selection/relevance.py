"""Selection for a goal set (issue 15, item 4): relevance in the score, quotas, budget, report.

:class:`GoalContext` is built once per selection from the goal set and the pool's stored
embeddings (``embeddings.parquet``, :mod:`gdo.descriptors.embedding_store`); select.py calls its
hooks. Rules (all documented in README "Goal sets"):

* **Score**: ``score' = (1 - w) * score + w * (2 * relevance - 1)`` with ``w`` = the goal key
  ``relevance_weight`` (target preset 0.8, other goals 0.5). ``2r - 1`` spans [-1, 1] like the
  normalised score terms, so ``w`` is the share of the ranking that relevance decides.
* **Quotas lean toward relevant strata**: stratum quotas are largest-remainder shares of
  ``(1 - lam) * p_s + lam * q_s`` where ``p_s`` is the stratum's share of the pool, ``q_s`` its
  share of the pool's ``K = min(N, 2n)`` most relevant candidates, and ``lam`` = the goal key
  ``quota_lean`` (target 1.0, others 0.5). Computed in exact integers:
  counts ``(1-lam) * c_s * K + lam * k_s * N`` with lam as a fraction.
* **Budget** (``--budget auto`` with a goal set): ``n = min(N, max(min_count,
  min(ceil(goal_budget_per_item * m), floor(max_ratio * N), max_count)))`` with m goal items
  (target: min_count 100, goal_budget_per_item 10, max_ratio 0.2, max_count 50,000).
* Hard constraints (dedup, per-video cap, video-share bounds, floors) are untouched: they act in
  the fill exactly as without a goal set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo.descriptors import relevance as R
from gdo.descriptors.embedding_store import Embeddings, EmbeddingStoreError, read_embeddings
from gdo.goalset import GoalSet, GoalSetError, read_goal_set

HIST_BINS = 20
#: Least cosine between the model fingerprints (gdo.models.hf.model_probe) of the profiled model
#: and the model given at selection: the same weights give 1 (0.99+ across dtypes / devices),
#: another checkpoint far less.
PROBE_MIN_COSINE = 0.99
NEAR_SAMPLE = 20000
REPORT_ITEMS = 50
NEAREST_PICKS = 3


def _frac(x: float) -> Fraction:
    return Fraction(str(x))


def _model_space(E: Embeddings | None, gs: GoalSet, model: dict | None, idx: np.ndarray | None, means: dict,
                 raw: dict, rel: dict) -> str | None:
    """Fill ``raw["model"]`` / ``rel["model"]`` (the reference model's hidden-state space) and
    return None (or a note naming goal items the model could not embed), or return the note
    saying why the space is skipped (nothing filled; "" when there is no model anywhere, so
    nothing to say)."""
    has = E is not None and E.model is not None and E.model_mask is not None and bool(E.model_mask.any())
    if not has:
        if model is not None:
            return ("a model was given but the embedding store holds no model embeddings (the pool was profiled "
                    "without --model, or by a gdo before they were stored): model space skipped")
        return ""  # nothing to say: no model anywhere
    if model is None:
        return (f"the pool has model embeddings ({E.meta.get('model_id')}) but no model was given at selection: "
                "model space skipped (pass the profiled model with --model to use it)")
    if not (Path(model["path"]) / "config.json").is_file():
        raise GoalSetError(f"--model {model['path']}: not a model folder (no config.json)")
    if not gs.has_media:
        return ("the goal items carry no media and the pool's model embeddings are conditioned on media: "
                "model space skipped (the text space scores a question-only goal set)")
    from gdo.models.hf import embed_rows, embedding_scorer, model_probe

    kw = dict(device=model.get("device", "auto"), batch_size=int(model.get("batch_size", 8)),
              trust_remote_code=bool(model.get("trust_remote_code", False)))
    frames = int(E.meta.get("model_frames") or 8)
    ref = E.meta.get("model_probe")
    try:
        if ref:  # same behaviour, wherever the folder lives: the fingerprint input's pooled state
            got = model_probe(embedding_scorer(model["path"], frames=frames, **kw))
            cos = float(np.dot(got, ref)) if got is not None and len(got) == len(ref) else -1.0
            if cos < PROBE_MIN_COSINE:
                return (f"the model given ({model['path']}) does not behave like the one the pool was profiled with "
                        f"({E.meta.get('model_id')}; fingerprint cosine {cos:.3f} < {PROBE_MIN_COSINE}): "
                        "model space skipped")
        else:  # a store from before fingerprints: compare folder identities
            from gdo.descriptors.profile import model_identity

            mid = model_identity(model["path"])
            if mid != E.meta.get("model_id"):
                return (f"the model given ({mid}) is not the one the pool was profiled with "
                        f"({E.meta.get('model_id')}): model space skipped")
    except RuntimeError as e:  # a model without an output head: no hidden states to pool
        return f"model space skipped: {e}"
    rows = [{"uid": f"goal:{i}", "question": q, "answer": a, "media_kind": k if m else "none", "media": list(m)}
            for i, (q, a, m, k) in enumerate(zip(gs.questions, gs.answers, gs.media, gs.media_kind))]
    has_media = np.array([bool(m) for m in gs.media])
    use = [i for i in range(len(rows)) if has_media[i]]
    try:
        gm, gmask_u, errs = embed_rows([rows[i] for i in use], model["path"], frames=frames, **kw)
    except RuntimeError as e:  # a model without an output head: no hidden states to pool
        return f"model space skipped: {e}"
    goal = np.zeros((len(rows), gm.shape[1]), np.float32)
    gmask = np.zeros(len(rows), bool)
    goal[use], gmask[use] = gm, gmask_u
    pm = E.model if idx is None else E.model[idx]
    pmask = E.model_mask if idx is None else E.model_mask[idx]
    if not gmask.any() or goal.shape[1] != pm.shape[1]:
        return "model space skipped (no goal item could be embedded by the model)"
    raw["model"], rel["model"] = R.space_relevance(pm, goal, pmask, gmask, pool_mean=means.get("model"))
    full_errs: list = [None] * len(rows)
    for k, i in enumerate(use):
        full_errs[i] = errs[k]
    failed = _named_errors(gs, full_errs)
    if failed:  # the space is used, without these items
        return (f"{len(failed)} goal item(s) could not be embedded by the model: " + "; ".join(failed[:3])
                + ("; ..." if len(failed) > 3 else ""))
    return None


def _goal_set_warnings(gs: GoalSet, cand: pa.Table) -> list[str]:
    """Notes on the goal set itself: repeated items (they weigh twice in the goal direction) and
    items that are also pool candidates (same question and answer: the evaluation set may leak
    into the training subset). Vectorised lookups, so a 1M pool costs milliseconds."""
    out = []
    pairs = list(zip(gs.questions, gs.answers))
    seen: dict = {}
    for i, qa in enumerate(pairs):
        seen.setdefault(qa, []).append(i)
    rep = [v for v in seen.values() if len(v) > 1]
    if rep:
        ex = ", ".join(f"{gs.origin[v[0]]} = {gs.origin[v[1]]}" for v in rep[:3] if len(gs.origin) > v[1])
        out.append(f"{sum(len(v) - 1 for v in rep)} goal item(s) repeat an earlier one (same question and answer; "
                   f"each copy weighs again in the goal direction){': ' + ex if ex else ''}")
    if "question" in cand.column_names and "answer" in cand.column_names and len(cand):
        def keys(q, a):
            return pc.binary_join_element_wise(pc.fill_null(q, ""), pc.fill_null(a, ""), "\x1f")

        pool_keys = keys(cand["question"].combine_chunks(), cand["answer"].combine_chunks())
        goal_keys = keys(pa.array(gs.questions, pa.string()), pa.array(gs.answers, pa.string()))
        hit = [i for i, x in enumerate(pc.is_in(goal_keys, value_set=pool_keys).to_pylist()) if x]
        if hit:
            ex = ", ".join(gs.origin[i] for i in hit[:3] if i < len(gs.origin))
            out.append(f"{len(hit)} goal item(s) are also pool candidates (same question and answer): the "
                       f"evaluation set may leak into the subset{': ' + ex if ex else ''}")
    return out


def _named_errors(gs: GoalSet, errs: Sequence) -> list[str]:
    """``"file:line: error"`` for each goal item with an error (``errs`` per item, None = fine)."""
    return [f"{gs.origin[i] if i < len(gs.origin) else f'item {i}'}: {e}" for i, e in enumerate(errs) if e]


@dataclass
class GoalContext:
    """Relevance of the N pool candidates (in the order select() uses) to one goal set."""

    goal_set: GoalSet
    relevance: np.ndarray                      # float64 (N,) in [0, 1]
    per_space: dict[str, np.ndarray]           # space -> rel_s float64 (N,), NaN where absent
    raw: dict[str, np.ndarray]                 # space -> raw goal-direction score
    text_pool: np.ndarray                      # float32 (N, 384) text embeddings (pool order)
    text_goal: np.ndarray                      # float32 (m, 384)
    source: str                                # where the pool embeddings came from
    spaces: list[str]
    notes: list[str] = field(default_factory=list)
    visual_goal_errors: list = field(default_factory=list)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, goal_set: GoalSet | Sequence[str | Path], uids: pa.Array, cand: pa.Table, *,
              embeddings: Embeddings | str | Path | None = None, text_encoder: str | None = None,
              frames: int = 32, model: dict | None = None) -> "GoalContext":
        """Relevance for the candidates ``uids`` (select's order).

        ``embeddings``: the store (object or path); None computes text embeddings of the
        candidates now (slow on large pools; noted in the report).
        ``model``: the reference model to embed the goal items in its hidden-state space
        (``{"path", "device", "batch_size", "trust_remote_code"}``); used when the store holds
        ``model_emb`` from the same model (:func:`gdo.descriptors.profile.model_identity`) and goal
        items carry media (the pool's states are conditioned on media); otherwise a note says
        why the model space was skipped.

        Raises:
            GoalSetError: invalid goal set, or a store that lacks candidates of the pool.
        """
        gs = goal_set if isinstance(goal_set, GoalSet) else read_goal_set(list(goal_set))
        N = len(uids)
        notes: list[str] = []
        E = None
        if embeddings is not None:
            try:
                E = embeddings if isinstance(embeddings, Embeddings) else read_embeddings(embeddings)
            except EmbeddingStoreError as e:
                raise GoalSetError(str(e)) from None
        if E is not None:
            idx = np.asarray(pc.fill_null(pc.index_in(uids, value_set=E.uids), -1), dtype=np.int64)
            missing = int((idx < 0).sum())
            if missing:
                ex = uids[int(np.nonzero(idx < 0)[0][0])].as_py()
                raise GoalSetError(f"{E.path}: the embedding store lacks {missing:,} of the pool's {N:,} candidates "
                                   f"(e.g. {ex!r}); re-run `gdo profile` on this pool")
            identity = bool(idx.size == len(E.uids) and np.array_equal(idx, np.arange(idx.size)))
            text = E.text if identity else E.text[idx]
            enc = text_encoder or E.meta.get("text_encoder") or "minilm"
            if str(enc).startswith("minilm"):
                enc = "minilm"
            source = E.path
        else:
            from gdo.descriptors.embeddings import text_embeddings, text_inputs

            enc = text_encoder or "minilm"
            text = text_embeddings(text_inputs(cand["question"].to_pylist(), cand["answer"].to_pylist()), encoder=enc)
            source = f"computed now ({enc}; no embedding store given)"
            notes.append("no embedding store: candidate text embeddings were computed during selection "
                         "(run `gdo profile` once to store them)")
            idx = None
            identity = False
        notes.extend(_goal_set_warnings(gs, cand))
        text_goal = R.embed_goal_texts(gs.texts(), encoder=enc)
        raw: dict[str, np.ndarray] = {}
        rel: dict[str, np.ndarray] = {}
        means = (E.meta.get("means") or {}) if E is not None and identity else {}
        raw["text"], rel["text"] = R.space_relevance(text, text_goal, pool_mean=means.get("text"))
        spaces = ["text"]
        vis_errs: list = []
        if gs.has_media:
            if E is None or E.visual is None:
                notes.append("goal items carry media but the pool has no stored visual embeddings: "
                             "visual relevance skipped")
            elif E.meta.get("visual_encoder") not in (None, "handcrafted"):
                notes.append(f"the pool's visual encoder is {E.meta.get('visual_encoder')}: goal media are embedded "
                             "with the handcrafted feature only, so visual relevance is skipped")
            else:
                gv, gmask, vis_errs = R.embed_goal_media(gs.media, gs.media_kind)
                bad = _named_errors(gs, vis_errs)
                if bad:
                    notes.append(f"{len(bad)} goal item(s) with unreadable media, left out of the visual space: "
                                 + "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else ""))
                pv = E.visual if idx is None or identity else E.visual[idx]
                pm = E.visual_mask if idx is None or identity else E.visual_mask[idx]
                if gmask.any() and pm.any() and gv.shape[1] == pv.shape[1]:
                    raw["visual"], rel["visual"] = R.space_relevance(pv, gv, pm, gmask, pool_mean=means.get("visual"))
                    spaces.append("visual")
                else:
                    notes.append("visual relevance skipped (no decodable goal media or no pool media)")
        mnote = _model_space(E, gs, model, idx if not identity else None, means, raw, rel)
        if "model" in rel:
            spaces.append("model")
        if mnote:
            notes.append(mnote)
        relevance = R.combine(rel)
        return cls(goal_set=gs, relevance=relevance, per_space=rel, raw=raw, text_pool=text, text_goal=text_goal,
                   source=source, spaces=spaces, notes=notes, visual_goal_errors=vis_errs)

    # ------------------------------------------------------------------ hooks
    def adjust_score(self, score: np.ndarray, weight: float) -> np.ndarray:
        """``(1 - w) * score + w * (2 * relevance - 1)`` (module doc)."""
        return (1.0 - weight) * np.asarray(score, dtype=np.float64) + weight * (2.0 * self.relevance - 1.0)

    def budget(self, goal, N: int) -> tuple[int, dict]:
        """The goal-set auto budget (module doc) and its intermediates."""
        m = len(self.goal_set)
        by_items = math.ceil(_frac(goal.goal_budget_per_item) * m)
        by_ratio = math.floor(_frac(goal.max_ratio) * N)
        n = min(N, max(goal.min_count, min(by_items, by_ratio, goal.max_count)))
        return n, {"rule": "n = min(N, max(min_count, min(ceil(goal_budget_per_item*m), floor(max_ratio*N), max_count)))",
                   "goal_items": m, "n_by_items": by_items, "n_by_ratio": by_ratio, "n": n}

    def lean_quota_counts(self, s_count: np.ndarray, strat: np.ndarray, n: int, lean: float) -> np.ndarray:
        """Integer weights for largest_remainder: ``(1-lam) c_s K + lam k_s N`` (module doc)."""
        N = int(s_count.sum())
        S = s_count.size
        if N == 0 or n <= 0:
            return s_count
        K = min(N, 2 * n)
        top = np.argsort(-self.relevance, kind="stable")[:K]
        k_s = np.bincount(strat[top], minlength=S).astype(object)
        lam = _frac(lean)
        c = s_count.astype(object)
        w = [(1 - lam) * ci * K + lam * ki * N for ci, ki in zip(c.tolist(), k_s.tolist())]
        den = math.lcm(*[x.denominator for x in w]) if w else 1
        return np.asarray([int(x * den) for x in w], dtype=object)

    # ------------------------------------------------------------------ report
    def report(self, cand: pa.Table, picks: np.ndarray, b_idx: np.ndarray, *, weight: float, lean: float,
               budget_info: dict | None, seed: int, cand_rows: np.ndarray | None = None) -> dict:
        """The ``goal`` object of report.json (README "Goal sets"; keys listed below).

        ``picks`` / ``b_idx`` index the relevance arrays (select's order); ``cand_rows[picks]`` the
        rows of ``cand`` (the caller's table, which may hold media paths for thumbnails).
        """
        N = len(self.relevance)
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)

        def hist(ix):
            return np.histogram(self.relevance[ix], bins=edges)[0].astype(int).tolist()

        thr = R.goal_self_similarity(self.text_goal) if len(self.goal_set) > 1 else 1.0
        rng = np.random.default_rng(np.random.SeedSequence([seed, 15]))
        sample = np.sort(rng.choice(N, NEAR_SAMPLE, replace=False)) if N > NEAR_SAMPLE else np.arange(N)

        def near_share(ix):
            if len(ix) == 0:
                return None
            s, _ = R.nearest_goal_sim(self.text_pool, self.text_goal, ix)
            return round(float((s >= thr).mean()), 6)

        items = []
        if len(picks):
            S = self.text_goal[:REPORT_ITEMS] @ np.asarray(self.text_pool[picks], dtype=np.float32).T
            q = cand["question"]
            a = cand["answer"]
            uid = cand["uid"]
            media = cand["media"] if "media" in cand.column_names else None
            kind = cand["media_kind"] if "media_kind" in cand.column_names else None
            for gi in range(S.shape[0]):
                order = np.argsort(-S[gi], kind="stable")[:NEAREST_PICKS]
                near = []
                for j in order.tolist():
                    row = int(picks[j]) if cand_rows is None else int(cand_rows[picks[j]])
                    mp = media[row].as_py() if media is not None else None
                    near.append({"uid": uid[row].as_py(), "question": q[row].as_py(), "answer": a[row].as_py(),
                                 "cosine": round(float(S[gi, j]), 6),
                                 "media_kind": kind[row].as_py() if kind is not None else None,
                                 "thumbnail_src": (mp or [None])[0]})
                items.append({"item": gi, "origin": self.goal_set.origin[gi], "question": self.goal_set.questions[gi],
                              "answer": self.goal_set.answers[gi], "nearest_picked": near})
        out = {
            "files": self.goal_set.sources,
            "items": len(self.goal_set),
            "items_with_media": int(sum(1 for m in self.goal_set.media if m)),
            "spaces": self.spaces,
            "space_weights": {s: R.SPACE_WEIGHTS[s] for s in self.spaces},
            "relevance_rule": "per space: ECDF over the pool of <x, mean(goal) - mean(pool)>; combined: weighted "
                              "mean over the candidate's spaces (text 1, visual 0.5, model 1)",
            "relevance_weight": weight,
            "quota_lean": lean,
            "embeddings": self.source,
            "budget": budget_info,
            "near_threshold_cosine": round(thr, 6),
            "near_share": {"pool": near_share(sample), "pool_sampled": bool(N > NEAR_SAMPLE),
                           "subset": near_share(np.asarray(picks, dtype=np.int64)),
                           "baseline": near_share(np.asarray(b_idx, dtype=np.int64))},
            "relevance_mean": {"pool": round(float(self.relevance.mean()), 6) if N else None,
                               "subset": round(float(self.relevance[picks].mean()), 6) if len(picks) else None,
                               "baseline": round(float(self.relevance[b_idx].mean()), 6) if len(b_idx) else None},
            "relevance_hist": {"bins": [round(float(x), 4) for x in edges], "pool": hist(np.arange(N)),
                               "subset": hist(picks), "baseline": hist(b_idx)},
            "goal_items": items,
            "items_listed": len(items),
            "notes": self.notes,
            "visual_goal_errors": [{"item": i, "origin": self.goal_set.origin[i] if i < len(self.goal_set.origin) else None,
                                    "error": e} for i, e in enumerate(self.visual_goal_errors) if e],
        }
        return out
