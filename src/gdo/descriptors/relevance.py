"""Goal relevance: how close each candidate is to the user's goal set (issue 15, item 2).

Per embedding space s (``text``: all-MiniLM-L6-v2 of question+answer; ``visual``: the media
feature, only when goal items carry media; ``model``: the reference model's pooled hidden state,
only when both the pool and the goal items have it):

1. goal direction ``d_s = mean(goal embeddings) - mean(pool embeddings)`` (both L2-normalised
   rows; the pool mean over candidates that have the space). This is the class-mean difference
   of a nearest-centroid / linear discriminant between "goal" and "pool": it keeps what the goal
   items share and the pool lacks, and cancels what every item shares (e.g. the style of a
   benchmark's questions);
2. raw score ``raw_s(i) = <x_i, d_s>`` (column ``goal_raw_<s>``);
3. per-space relevance ``rel_s(i)`` = empirical CDF of ``raw_s`` over the pool's candidates that
   have the space: the fraction of them with ``raw_s <= raw_s(i)``, in (0, 1]
   (column ``goal_rel_<s>``; NaN where the candidate lacks the space).

Combined ``relevance(i) = sum_s w_s rel_s(i) / sum_s w_s`` over the spaces candidate i has, with
:data:`SPACE_WEIGHTS` (text 1, visual 0.5, model 1), so it lies in (0, 1]; a candidate without
any space gets 0.

Cost: one (N, d) x (d,) product and one sort per space: about a second for 1M candidates.
On NExT-QA (30 goal questions of one type, pool of the other 4,966) the top 200 candidates by
the text direction alone hold 0.78-1.0 of the goal's type (4 draws per type); the mean cosine to
the 5 nearest goal items, a common alternative, 0.63-0.82 (one draw). Full selection figures:
``benchmarks/bench_goal_nextqa.py``.

``nearest_goal_sim`` (max cosine to any goal item) drives the report's "near the goal" share.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPACE_WEIGHTS = {"text": 1.0, "visual": 0.5, "model": 1.0}
SPACES = ("text", "visual", "model")


def ecdf_in_pool(raw: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Empirical CDF of ``raw`` over the rows where ``mask`` (all when None); NaN elsewhere.

    Returns:
        float64 (N,): fraction of masked rows with a value <= the row's, in (0, 1].
    """
    raw = np.asarray(raw, dtype=np.float64)
    out = np.full(raw.shape[0], np.nan)
    m = np.ones(raw.shape[0], bool) if mask is None else np.asarray(mask, bool)
    vals = raw[m]
    if vals.size == 0:
        return out
    srt = np.sort(vals)
    out[m] = np.searchsorted(srt, vals, side="right") / float(vals.size)
    return out


def goal_direction(pool: np.ndarray, goal: np.ndarray, pool_mask: np.ndarray | None = None,
                   goal_mask: np.ndarray | None = None, pool_mean: np.ndarray | None = None) -> np.ndarray:
    """``mean(goal rows) - mean(pool rows)`` as float64 (d,) (masked rows only).

    ``pool_mean``: the pool's mean when already known (the store records it), saving a pass.

    Raises:
        ValueError: dimensions differ, or no goal / pool row is available.
    """
    if pool.shape[1] != goal.shape[1]:
        raise ValueError(f"goal embeddings have {goal.shape[1]} dims, the pool's {pool.shape[1]} "
                         "(different encoders?)")
    g = goal if goal_mask is None else goal[np.asarray(goal_mask, bool)]
    if g.shape[0] == 0:
        raise ValueError("no goal item has this embedding")
    if pool_mean is not None:
        return g.mean(axis=0, dtype=np.float64) - np.asarray(pool_mean, dtype=np.float64)
    pm = np.ones(pool.shape[0], bool) if pool_mask is None else np.asarray(pool_mask, bool)
    if not pm.any():
        raise ValueError("no pool candidate has this embedding")
    acc = np.zeros(pool.shape[1], dtype=np.float64)
    step = 1 << 16
    for s in range(0, pool.shape[0], step):
        acc += np.asarray(pool[s:s + step][pm[s:s + step]], dtype=np.float32).sum(axis=0, dtype=np.float64)
    mu_p = acc / pm.sum()
    return g.mean(axis=0, dtype=np.float64) - mu_p


def space_relevance(pool: np.ndarray, goal: np.ndarray, pool_mask: np.ndarray | None = None,
                    goal_mask: np.ndarray | None = None, pool_mean: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Raw goal-direction score and its pool ECDF for one space (module doc, steps 1-3).

    Args:
        pool: float32 (N, d) candidate embeddings; goal: (m, d) goal-item embeddings.

    Returns:
        (raw float64 (N,), rel float64 (N,) in (0, 1], NaN where ``pool_mask`` is False).
    """
    d = goal_direction(pool, goal, pool_mask, goal_mask, pool_mean).astype(np.float32)
    raw = np.empty(pool.shape[0], dtype=np.float64)
    step = 1 << 16  # chunks: a float16 memory-mapped store is converted 64k rows at a time
    for s in range(0, pool.shape[0], step):
        raw[s:s + step] = np.asarray(pool[s:s + step], dtype=np.float32) @ d
    if pool_mask is not None:
        raw = np.where(np.asarray(pool_mask, bool), raw, np.nan)
    return raw, ecdf_in_pool(raw, pool_mask)


def combine(rels: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> np.ndarray:
    """Weighted mean of the per-space relevances available per row (module doc); 0 where none."""
    w = weights or SPACE_WEIGHTS
    num = None
    den = None
    for s, r in rels.items():
        ok = np.isfinite(r)
        a = np.where(ok, r, 0.0) * w[s]
        b = ok * w[s]
        num = a if num is None else num + a
        den = b if den is None else den + b
    if num is None:
        raise ValueError("no relevance space")
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def nearest_goal_sim(pool: np.ndarray, goal: np.ndarray, rows: np.ndarray | None = None,
                     chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Max cosine of each (selected) pool row to the goal items, and the index of that item.

    Args:
        pool: (N, d) L2-normalised; goal: (m, d) L2-normalised; rows: int indices (None: all).

    Returns:
        (sim float64 (R,), nearest goal index int64 (R,)).
    """
    idx = np.arange(pool.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    sims = np.empty(idx.size)
    arg = np.empty(idx.size, dtype=np.int64)
    gt = np.ascontiguousarray(goal.T, dtype=np.float32)
    for s in range(0, idx.size, chunk):
        S = np.asarray(pool[idx[s:s + chunk]], dtype=np.float32) @ gt
        arg[s:s + chunk] = S.argmax(axis=1)
        sims[s:s + chunk] = S.max(axis=1)
    return sims, arg


def goal_self_similarity(goal: np.ndarray) -> float:
    """Median over goal items of the cosine to their nearest other goal item (the "near" threshold)."""
    S = goal @ goal.T
    np.fill_diagonal(S, -np.inf)
    return float(np.median(S.max(axis=1)))


def embed_goal_texts(texts: Sequence[str], encoder: str = "minilm") -> np.ndarray:
    """Text embeddings of goal items with the pool's encoder (float32 (m, 384), L2-normalised)."""
    from gdo.descriptors.embeddings import text_embeddings

    return text_embeddings(list(texts), encoder=encoder)


def embed_goal_media(media: Sequence[Sequence[str]], kinds: Sequence[str], frames: int = 8
                     ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Handcrafted visual features of goal items with media (the same decode as ``gdo profile``).

    Returns:
        (float32 (m, 160), mask bool (m,), error per item or None). Items without media or whose
        media fail to decode get a zero row, mask False, and the error text.
    """
    from gdo.descriptors.embeddings import VISUAL_DIM, handcrafted_visual
    from gdo.descriptors.motion import load_motion_frames

    out = np.zeros((len(media), VISUAL_DIM), np.float32)
    mask = np.zeros(len(media), bool)
    errs: list[str | None] = []
    for i, (m, k) in enumerate(zip(media, kinds)):
        if not m or k == "none":
            errs.append(None)
            continue
        try:
            fr, _ = load_motion_frames(k, list(m), frames)
            out[i] = handcrafted_visual(fr)
            mask[i] = bool(np.linalg.norm(out[i]) > 0)
            errs.append(None)
        except Exception as e:  # reported per item by the caller
            errs.append(f"{type(e).__name__}: {e}")
    return out, mask, errs
