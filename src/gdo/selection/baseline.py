"""The Uni-Nx random baseline (GDO_METHOD.md section 5, last paragraph).

A uniform random sample of ``round(mult * n)`` candidates (at most N) under the same text dedup and
per-video cap as the GDO subset; only when the pool cannot fill the target under those rules are
the remaining candidates taken anyway (stage ``uniform_relaxed``, counted in the report).
"""

from __future__ import annotations

import numpy as np


def eligible_in_order(order: np.ndarray, text_id: np.ndarray, video_id: np.ndarray, cap: int) -> np.ndarray:
    """Which positions of ``order`` survive text dedup then the per-video cap, visiting in that order.

    A candidate is kept when it is the first of its (question, answer) text in ``order`` and, for
    videos, among the first ``cap`` such candidates of its video.

    Args:
        order: int64 (M,) candidate indices in visiting order.
        text_id: int (N,) text key per candidate; video_id: int (N,) video key, -1 for images.

    Returns:
        bool array (M,) aligned with ``order``.
    """
    m = order.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    t = text_id[order]
    first = np.zeros(m, dtype=bool)
    _, fi = np.unique(t, return_index=True)
    first[fi] = True
    v = video_id[order]
    isv = first & (v >= 0)
    pos = np.flatnonzero(isv)
    if pos.size:
        vv = v[pos]
        srt = np.argsort(vv, kind="stable")
        vs = vv[srt]
        start = np.r_[0, np.flatnonzero(np.diff(vs)) + 1]
        rank = np.arange(vs.size) - np.repeat(start, np.diff(np.r_[start, vs.size]))
        ok = np.empty(pos.size, dtype=bool)
        ok[srt] = rank < cap
        first[pos[~ok]] = False
    return first


def uniform_baseline(n_pool: int, target: int, text_id: np.ndarray, video_id: np.ndarray, cap: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uni-Nx sample.

    Args:
        n_pool: N; target: wanted size (clipped to N).
        rng: seeded generator (the permutation it draws decides the sample).

    Returns:
        (indices int64 in draw order, relaxed bool per index: True where dedup/cap had to be relaxed).
    """
    target = int(min(max(target, 0), n_pool))
    perm = rng.permutation(n_pool).astype(np.int64)
    ok = eligible_in_order(perm, text_id, video_id, cap)
    strict = perm[ok][:target]
    if strict.size >= target:
        return strict, np.zeros(strict.size, dtype=bool)
    rest = perm[~ok][: target - strict.size]
    return np.concatenate([strict, rest]), np.r_[np.zeros(strict.size, bool), np.ones(rest.size, bool)]
