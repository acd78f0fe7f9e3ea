"""Paper mode's random stream, shortlists and baseline, in the release's exact order (issue 12 item 9).

The release (github rujiewu/GDO, ``gdo/build_pair.py``) draws every random number from one
``random.Random(seed)`` while it streams the pool once, candidate by candidate in pool order
(image file, then video file):

1. a tie draw ``u = random()`` for the candidate;
2. a reservoir step of the Uni-Nx baseline (classic reservoir sampling, Algorithm R) of capacity
   ``cap = max(m, ceil(1.35 * m))``, ``m = max(1, ceil(n * mult))``: the first ``cap`` candidates
   fill it; afterwards ``j = randint(1, i)`` (``i`` = 1-based candidate number) and the candidate
   replaces slot ``j`` when ``j <= cap``;
3. a bounded min-heap per stratum keeps the shortlist: a new candidate enters while the heap holds
   fewer than its stratum's keep count, and afterwards only when its score is strictly greater
   than the heap's minimum (the minimum by (score, u)), which it then evicts.

After the stream the reservoir, in slot order, is the random-fill pool (fill step 6), and
``shuffle`` of the reservoir with the same generator orders the baseline. Python's
``random.Random`` is reproducible across platforms and versions for ``random``, ``randint`` and
``shuffle``, so the same seed gives the release's draws exactly; this module reproduces them with
one Python loop over the pool (about 0.3 s per million candidates).

Everything here is order-exact but vectorised where the order cannot matter: the heap's final
content equals "the top k by score" whenever the k-th and (k+1)-th scores of the stratum differ;
only strata tied at that boundary are replayed with :mod:`heapq`.
"""

from __future__ import annotations

import heapq
import math
import random

import numpy as np

#: The release's extra reservoir room for a dedup-constrained baseline (``--random-oversample-factor``).
RESERVOIR_OVERSAMPLE = 1.35


def baseline_target(n: int, mult: float) -> int:
    """The release's Uni-Nx size: ``max(1, ceil(n * mult))`` (``mult <= 0`` counts as 1)."""
    m = mult if mult > 0 else 1.0
    return max(1, int(math.ceil(n * m)))


def reservoir_cap(target: int) -> int:
    """Reservoir capacity for a baseline of ``target`` picks: ``max(t, ceil(t * 1.35))``."""
    if target <= 0:
        return 0
    return max(target, int(math.ceil(target * max(1.0, RESERVOIR_OVERSAMPLE))))


def stream_draws(n_candidates: int, cap: int, seed: int) -> tuple[np.ndarray, list[int], random.Random]:
    """Replay the release's per-candidate draws (module docstring, steps 1-2).

    Args:
        n_candidates: N, candidates in pool order.
        cap: reservoir capacity (:func:`reservoir_cap`; 0 = no baseline).
        seed: the release's ``--seed`` (42).

    Returns:
        (u, reservoir, rng): float64 (N,) tie draws; the reservoir's candidate indices in slot
        order; the generator, positioned where the release's baseline shuffle starts.
    """
    rng = random.Random(seed)
    rr, ri = rng.random, rng.randint
    u = [0.0] * n_candidates
    res: list[int] = []
    fill = min(cap, n_candidates)
    for i in range(fill):
        u[i] = rr()
        res.append(i)
    if cap > 0:
        for i in range(fill, n_candidates):
            u[i] = rr()
            j = ri(1, i + 1)
            if j <= cap:
                res[j - 1] = i
    else:
        for i in range(fill, n_candidates):
            u[i] = rr()
    return np.asarray(u, dtype=np.float64), res, rng


def shortlist(score: np.ndarray, u: np.ndarray, stratum: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Which candidates the per-stratum bounded heaps hold at the end of the stream (step 3).

    Args:
        score, u: float64 (N,) candidate scores and tie draws, pool order.
        stratum: int (N,) stratum code per candidate; keep: int64 (S,) heap size per stratum.

    Returns:
        bool (N,): True for the candidates on a shortlist.
    """
    N = score.size
    kept = np.zeros(N, dtype=bool)
    if N == 0:
        return kept
    order = np.lexsort((np.arange(N), -score, stratum))  # by stratum, best score first
    st = stratum[order]
    S = keep.size
    start = np.searchsorted(st, np.arange(S + 1))
    size = np.diff(start)
    rank = np.arange(N) - np.repeat(start[:-1], size)
    kept[order] = rank < keep[st]
    over = np.flatnonzero((size > keep) & (keep > 0))
    if over.size:
        sc_sorted = score[order]
        at_k = sc_sorted[start[over] + keep[over] - 1]
        after = sc_sorted[start[over] + keep[over]]
        for s in over[at_k == after].tolist():  # tied at the boundary: replay the heap
            members = np.sort(order[start[s]:start[s + 1]])  # pool order
            k = int(keep[s])
            h: list[tuple[float, float, int]] = []
            for i in members.tolist():
                key = (float(score[i]), float(u[i]), i)
                if len(h) < k:
                    heapq.heappush(h, key)
                elif key[0] > h[0][0]:
                    heapq.heapreplace(h, key)
            kept[members] = False
            kept[[x[2] for x in h]] = True
    return kept


def baseline(reservoir: list[int], rng: random.Random, target: int, text_id, vid, cap_per_video: int
             ) -> tuple[list[int], list[bool]]:
    """The release's Uni-Nx pick from the reservoir (after the stream, same generator).

    Shuffle the reservoir; take candidates in that order while they are new, their (question,
    answer) text is unused and their video holds fewer than ``cap_per_video`` picks; if short, a
    second pass drops the text test (those picks are "relaxed"). The release's third pass, which
    appends reservoir entries again (duplicates) until the target, is not reproduced: a candidate
    is picked once, and the shortfall is reported by the caller.

    Returns:
        (picks, relaxed): candidate indices in pick order, and per pick whether it was relaxed.
    """
    pool = list(reservoir)
    rng.shuffle(pool)
    used: set[int] = set()
    used_text: set[int] = set()
    vcount: dict[int, int] = {}
    picks: list[int] = []
    relaxed: list[bool] = []
    for enforce in (True, False):
        for i in pool:
            if len(picks) >= target:
                break
            if i in used or (enforce and text_id[i] in used_text):
                continue
            v = vid[i]
            if v >= 0 and vcount.get(v, 0) >= cap_per_video:
                continue
            picks.append(i)
            relaxed.append(not enforce)
            used.add(i)
            if enforce:
                used_text.add(text_id[i])
            if v >= 0:
                vcount[v] = vcount.get(v, 0) + 1
    return picks, relaxed
