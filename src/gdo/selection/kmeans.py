"""Fast k-means for cluster representativeness (GDO_METHOD.md 3.6) at k = 4096 on millions of rows.

Lloyd iterations on a seeded sample, with nearest-centre search through a coarse quantizer of the
centres (an inverted file: the centres are grouped by a small k-means, each point is compared with
the centres of its ``nprobe`` nearest groups). Exact search is used when k is small. Everything is
float32 numpy/BLAS, batched, and deterministic for a seed.
"""

from __future__ import annotations

import math

import numpy as np


def _sqnorm(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, a, dtype=np.float64).astype(np.float32)


def exact_assign(X: np.ndarray, C: np.ndarray, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every row (exact). Returns (labels int64 (N,), squared distance float32 (N,))."""
    n = X.shape[0]
    lab = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float32)
    cn = _sqnorm(C)
    for s in range(0, n, batch):
        xb = X[s:s + batch]
        d = xb @ C.T
        d *= -2.0
        d += cn[None, :]
        j = d.argmin(axis=1)
        lab[s:s + batch] = j
        dist[s:s + batch] = np.maximum(d[np.arange(len(j)), j] + _sqnorm(xb), 0.0)
    return lab, dist


class _IVF:
    """Centres grouped under ``m`` coarse centroids."""

    def __init__(self, C: np.ndarray, seed: int, nprobe: int, cells: int | None = None):
        k = C.shape[0]
        self.C = C
        self.cn = _sqnorm(C)
        m = int(cells) if cells else max(1, int(round(math.sqrt(k))))
        self.nprobe = min(nprobe, m)
        rng = np.random.default_rng(seed)
        Q = C[rng.choice(k, m, replace=False)].copy()
        for _ in range(8):  # a few Lloyd steps on the centres themselves (k x m: cheap)
            g, _ = exact_assign(C, Q)
            sums = np.zeros_like(Q)
            np.add.at(sums, g, C)
            cnt = np.bincount(g, minlength=m)
            ok = cnt > 0
            Q[ok] = sums[ok] / cnt[ok, None]
        self.Q = Q
        g, _ = exact_assign(C, Q)
        order = np.argsort(g, kind="stable")
        self.members = order
        self.bounds = np.searchsorted(g[order], np.arange(m + 1))

    def assign(self, X: np.ndarray, batch: int = 131072) -> tuple[np.ndarray, np.ndarray]:
        n = X.shape[0]
        m = self.Q.shape[0]
        # 1. each row's nearest coarse group (batched N x m products)
        cell = np.empty(n, dtype=np.int16)
        qn = _sqnorm(self.Q)
        for s in range(0, n, batch):
            dq = X[s:s + batch] @ self.Q.T
            dq *= -2.0
            dq += qn[None, :]
            cell[s:s + batch] = dq.argmin(axis=1)
        # 2. rows of one cell are compared with the centres of the nprobe coarse groups nearest to the
        #    cell's centroid (one contiguous block, one matrix product per cell)
        dqq = qn[:, None] + qn[None, :] - 2.0 * (self.Q @ self.Q.T)
        near = np.argsort(dqq, axis=1, kind="stable")[:, : self.nprobe]
        order = np.argsort(cell, kind="stable")
        seg = np.searchsorted(cell[order], np.arange(m + 1))
        best = np.empty(n, dtype=np.float32)
        lab = np.empty(n, dtype=np.int64)
        for g in range(m):
            lo, hi = int(seg[g]), int(seg[g + 1])
            if lo == hi:
                continue
            mem = np.concatenate([self.members[self.bounds[h]:self.bounds[h + 1]] for h in near[g]])
            Cg = self.C[mem]
            cng = self.cn[mem]
            for a in range(lo, hi, batch):
                rows = order[a:min(a + batch, hi)]
                d = X[rows] @ Cg.T
                d *= -2.0
                d += cng[None, :]
                j = d.argmin(axis=1)
                best[rows] = d[np.arange(len(j)), j]
                lab[rows] = mem[j]
        return lab, np.maximum(best + _sqnorm(X), 0.0)


def assign(X: np.ndarray, C: np.ndarray, *, seed: int = 0, nprobe: int = 8, exact_below: int = 512):
    """Nearest centre (approximate through the coarse quantizer when k >= ``exact_below``).

    BLAS runs single-threaded here: the products are skinny (d is small), where extra BLAS threads
    only add synchronisation (3x slower on a busy 2-core machine).

    Returns:
        (labels int64 (N,), Euclidean distance float64 (N,)).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        if C.shape[0] < exact_below:
            lab, d2 = exact_assign(X, C)
        else:
            lab, d2 = _IVF(C, seed, nprobe).assign(X)
    return lab, np.sqrt(d2.astype(np.float64))


def fit(X: np.ndarray, k: int, *, seed: int = 0, init: np.ndarray | None = None, sample: int = 32768,
        iters: int = 4, nprobe: int = 8) -> tuple[np.ndarray, dict]:
    """k centres of float32 rows X (M, d): Lloyd iterations on a seeded sample of at most
    max(``sample``, 8k) rows (an empty cluster keeps its centre).

    Args:
        init: initial centres (paper mode passes the first k rows); default: k distinct sample rows
            drawn with the seed.

    Returns:
        (centres float32 (k, d), info dict {fit_rows, iters}).
    """
    m = X.shape[0]
    k = max(1, min(int(k), m))
    rng = np.random.default_rng(seed)
    ns = min(m, max(sample, 8 * k))
    rows = np.sort(rng.choice(m, ns, replace=False)) if ns < m else np.arange(m)
    S = np.ascontiguousarray(X[rows], dtype=np.float32)
    if init is not None:
        C = np.array(init, dtype=np.float32, copy=True)
    else:
        C = S[np.sort(rng.choice(len(S), k, replace=False))].copy()
    d = S.shape[1]
    for it in range(iters):
        lab, _ = assign(S, C, seed=seed + it, nprobe=nprobe)
        cnt = np.bincount(lab, minlength=k)
        ok = cnt > 0
        for j in range(d):
            col = np.bincount(lab, weights=S[:, j], minlength=k)
            C[ok, j] = (col[ok] / cnt[ok]).astype(np.float32)
    return C, {"fit_rows": int(len(rows)), "iters": iters}
