"""Cluster representativeness (GDO_METHOD.md 3.6): the one owner of clustering.

Every cluster column gdo uses comes from here: ``gdo profile`` (its embeddings) and
``gdo select`` on the release's raw shards (their ``text_feat`` / ``vis_feat``, through the adapter
in :mod:`gdo.selection.descriptors_io`) build their blocks with :func:`scalar_block` /
:func:`build_features` and call :func:`cluster`. One k rule per mode (:func:`cluster_k`):

* ``paper``: k = min(4096, N) (at least 2), the release's ``merge_metrics.py``: features unscaled
  (missing values 0, float32), scikit-learn ``MiniBatchKMeans`` (``random_state=seed``,
  ``batch_size=8192``, ``reassignment_ratio=0.01``) initialised by ``partial_fit`` on the first k
  rows and updated by ``partial_fit`` on each following block of 8192 rows in file order; every
  row is then assigned to its nearest centre and cluster_rep = exp(-distance) (float32
  distance). With k = N on a pool of at most 4096 rows every row is its own centre (rep = 1), as
  in the release.
* ``default``: the flaws of section 7 fixed, as described below; k = round(sqrt(N/2)) (at least 2,
  at most 4096): about sqrt(N/2) rows per cluster, the usual rule of thumb, so that a cluster is
  large enough for its centre to mean something at any pool size (N = 100k gives k = 224, the
  paper's 4.5M-candidate pool about 1500) while k grows with the pool; the paper's fixed 4096
  would give clusters of one or two rows on small pools, where every row is representative.

Feature vector per candidate, in three blocks, each scaled so no block dominates:

* text block: the text embedding (384 dims),
* visual block: the visual embedding (160 dims handcrafted, or the encoder's size),
* scalar block: tnc, amm, frame diversity and, when the model ran, ln(ppl) and vds
  (nulls filled with the column median).

Every column is standardised over the pool (mean 0, std 1; constant columns become 0; float32), then
each block is divided by sqrt(its number of columns), so every block has expected squared
norm 1 whatever its width. A block absent from the call is skipped.

k defaults to ``min(4096, max(2, round(sqrt(N/2))))`` capped at the number of distinct feature
rows (N=1 gives k=1). MiniBatchKMeans (scikit-learn, k-means++ init, ``random_state=seed``,
``n_init=3`` when sample x k <= 2e6, else 1) is fitted on a seeded sample of at most ``max(65536, 32*k)`` rows (all rows when
fewer) and every row is assigned in batches.

``cluster_rep`` (default mode) = exp(-d / s), d = Euclidean distance to the assigned centre,
s = the median of d over the pool (1 if that median is 0): a typical candidate gets
exp(-1) ~ 0.37, one on its centre 1, outliers near 0. ``mode="paper"`` uses the release's
exp(-d) on the same features. ``cluster_hard`` = 1 - cluster_rep.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np


def default_k(n: int) -> int:
    """Default number of clusters for ``n`` candidates: min(4096, max(2, round(sqrt(n/2)))), at most n."""
    if n <= 0:
        return 0
    return int(min(n, 4096, max(2, round(math.sqrt(n / 2)))))


#: The release's cluster count and streaming block size (merge_metrics.py ``--cluster-k``,
#: ``--cluster-batch-size``).
PAPER_K = 4096
PAPER_BATCH = 8192


def cluster_k(n: int, mode: str = "default") -> int:
    """k for ``n`` rows: ``paper`` min(4096, n) (the release: min(max(2, 4096), n)); ``default``
    :func:`default_k`. 0 for an empty pool."""
    if n <= 0:
        return 0
    if mode == "paper":
        return int(min(max(2, PAPER_K), n))
    return default_k(n)


def scalar_block(tnc, amm, frame_diversity, ppl=None, vds=None, mode: str = "default") -> np.ndarray:
    """The scalar feature block, float64 (N, 3..5): tnc, amm, frame diversity, then PPL and VDS.

    ``paper``: the release's columns as they are (raw PPL; missing values 0 later, in
    :func:`build_features`). ``default``: ln(PPL) instead of PPL (PPL spans orders of magnitude),
    and PPL / VDS only when some row has a value (a pool without model descriptors clusters on the
    other features). Arrays of shape (N,), NaN = missing; None = column absent.
    """
    cols = [np.asarray(tnc, np.float64), np.asarray(amm, np.float64), np.asarray(frame_diversity, np.float64)]
    n = cols[0].shape[0]
    if mode == "paper":
        cols.append(np.full(n, np.nan) if ppl is None else np.asarray(ppl, np.float64))
        cols.append(np.full(n, np.nan) if vds is None else np.asarray(vds, np.float64))
    else:
        if ppl is not None and np.isfinite(ppl).any():
            with np.errstate(divide="ignore", invalid="ignore"):
                cols.append(np.log(np.clip(np.asarray(ppl, np.float64), 1e-12, None)))
        if vds is not None and np.isfinite(vds).any():
            cols.append(np.asarray(vds, np.float64))
    return np.stack(cols, axis=1)


def _standardise(x: np.ndarray) -> np.ndarray:
    """float32 copy of ``x`` (N, d): NaN -> column median, then (x - mean) / std (std 0 -> 1)."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    x = x.astype(np.float32, copy=True)
    nan = np.isnan(x)
    if nan.any():
        with warnings.catch_warnings():  # all-NaN columns warn; they become 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(x, axis=0)
        med = np.where(np.isnan(med), 0.0, med).astype(np.float32)
        x[nan] = med[np.nonzero(nan)[1]]
    if x.shape[0] == 0:
        return x
    _scale_into(x, x)
    return x


def _scale_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst = (src - mean) / std`` per column (std 0 -> 1), stats from ``src`` (float32, no NaN)
    accumulated in float64; ``dst`` may be ``src`` (in place) or a view of another array."""
    mu = src.mean(axis=0, dtype=np.float64)
    sd = src.std(axis=0, dtype=np.float64)
    sd = np.where(sd > 1e-12, sd, 1.0)
    if dst is not src:
        dst[...] = src
    dst -= mu.astype(np.float32)
    dst /= sd.astype(np.float32)


def build_features(blocks: Sequence[np.ndarray | None], mode: str = "default") -> np.ndarray:
    """Concatenate standardised, block-scaled feature blocks (see module doc).

    ``mode="paper"``: the release's features: the blocks as they are, missing (NaN, inf) values 0,
    float32, no scaling.

    Args:
        blocks: arrays of shape (N, d_b) or (N,), or :class:`Gathered` row sources; None entries
            are skipped. NaN = missing.

    Returns:
        float32 (N, sum d_b) (memory: 4 bytes per value). :func:`cluster_descriptors` never builds
        this matrix: it reads the same rows a batch at a time from :class:`FeatureRows`.

    Raises:
        ValueError: when blocks disagree on N or no block is given.
    """
    src = FeatureRows(blocks, mode=mode)
    return src.rows(0, src.n)


class Gathered:
    """Rows ``items[index[i]]`` (float32; zeros where ``index[i] < 0``) without building the (N, D)
    matrix: the visual block of clustering, one feature per media item shared by its candidates.

    Args:
        items: float (M, D), or None (every row zeros).
        index: int (N,), the item of each row (-1: none).
        dim: D when ``items`` is None.
    """

    def __init__(self, items: np.ndarray | None, index: np.ndarray, dim: int | None = None):
        self.items = None if items is None else np.asarray(items)
        self.index = np.asarray(index, dtype=np.int64)
        self.shape = (self.index.shape[0], int(self.items.shape[1] if self.items is not None else dim))
        self.ndim = 2
        self.dtype = np.dtype(np.float32)

    def take(self, sel) -> np.ndarray:
        """float32 (len, D): the rows ``sel`` (a slice or an index array) of the gathered matrix."""
        ci = self.index[sel]
        out = np.zeros((ci.shape[0], self.shape[1]), np.float32)
        if self.items is not None and self.items.shape[0]:
            has = ci >= 0
            out[has] = self.items[ci[has]]
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.take(slice(None))
        return a if dtype is None else a.astype(dtype, copy=False)


_STAT_ROWS = 16384  # rows per batch of the column statistics (float64 temporaries of 16384 x d)


def _column_stats(take, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x.mean(axis=0, dtype=float64), x.std(axis=0, dtype=float64))`` of the float32 (n, d)
    matrix ``x`` whose rows ``take(slice)`` returns, without ``x`` or ``std``'s (n, d) float64
    temporary. NumPy reduces axis 0 of a 2-D array (d >= 2) row after row into a float64
    accumulator (pairwise summation only runs along the contiguous axis); this continues that
    accumulator batch by batch (the running sum as the first row of each batch), and squares
    ``x - mean`` in float64 as ``np.var`` does, so the results are bit-identical (checked in
    tests/descriptors/test_cluster.py). ``d`` must be >= 2."""
    mean = _column_sum(take, n) / n
    return mean, np.sqrt(_column_sum(take, n, mean) / n)


def _column_sum(take, n: int, centre: np.ndarray | None = None) -> np.ndarray:
    """float64 (d,): ``x.sum(axis=0, dtype=float64)`` of the float32 rows ``take(slice)`` (d >=
    2), or with ``centre`` the sum of ``(x - centre) ** 2`` as ``np.var`` forms it; bit-identical
    to the whole-array reduction (see :func:`_column_stats`)."""
    acc = None
    for s in range(0, n, _STAT_ROWS):
        b = np.asarray(take(slice(s, s + _STAT_ROWS)), dtype=np.float32)
        if centre is None:
            b = b.astype(np.float64)
        else:
            b = b - centre
            np.multiply(b, b, out=b)
        acc = np.add.reduce(b if acc is None else np.concatenate([acc[None], b]), axis=0)
    return acc


class FeatureRows:
    """The clustering features of :func:`build_features`, row by row: ``rows(s, e)`` and
    ``take(idx)`` return exactly the rows of ``build_features(blocks, mode)`` (float32) while
    holding only the blocks themselves plus per-column statistics.

    A block that is float (N, d >= 2) without NaN is standardised on the fly with statistics
    from :func:`_column_stats`; any other block (a 1-D column, one holding NaN: the median fill
    needs the whole column) is standardised once as before and kept (float32 N x d). ``paper``
    mode only casts and zeroes missing values, row by row.

    Raises:
        ValueError: when blocks disagree on N or no block is given.
    """

    def __init__(self, blocks: Sequence, mode: str = "default"):
        shaped = []
        for b in blocks:
            if b is None:
                continue
            a = b if isinstance(b, Gathered) else np.asarray(b)
            shaped.append(a[:, None] if a.ndim == 1 else a)
        if not shaped:
            raise ValueError("build_features needs at least one feature block")
        n = shaped[0].shape[0]
        for a in shaped[1:]:
            if a.shape[0] != n:
                raise ValueError(f"feature blocks have different row counts: {n} vs {a.shape[0]}")
        self.n = n
        self.dim = sum(a.shape[1] for a in shaped)
        self.mode = mode
        self._plan = []  # (kind, block, width, stats)
        for a in shaped:
            d = a.shape[1]
            take = a.take if isinstance(a, Gathered) else (lambda sel, _a=a: _a[sel])
            if mode == "paper":
                self._plan.append(("paper", take, d, None))
                continue
            if d >= 2 and n > 0 and (isinstance(a, Gathered) or np.issubdtype(a.dtype, np.floating)):
                mu, sd = _column_stats(take, n, d)
                if np.isfinite(mu).all():  # no NaN / inf anywhere in the block
                    sd = np.where(sd > 1e-12, sd, 1.0)
                    self._plan.append(("scale", take, d, (mu.astype(np.float32), sd.astype(np.float32),
                                                          np.float32(math.sqrt(d)))))
                    continue
            m = _standardise(np.asarray(a))
            m /= np.float32(math.sqrt(d))
            self._plan.append(("kept", (lambda sel, _m=m: _m[sel]), d, None))

    def _fill(self, sel, count: int) -> np.ndarray:
        out = np.empty((count, self.dim), np.float32)
        c = 0
        for kind, take, d, st in self._plan:
            dst = out[:, c:c + d]
            c += d
            if kind == "paper":
                dst[...] = np.nan_to_num(np.asarray(take(sel), dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            elif kind == "kept":
                dst[...] = take(sel)
            else:  # the steps of _scale_into and build_features' block scaling, on these rows
                mu, sd, root = st
                dst[...] = np.asarray(take(sel), dtype=np.float32)
                dst -= mu
                dst /= sd
                dst /= root
        return out

    def rows(self, s: int, e: int) -> np.ndarray:
        """float32 (e - s, D): feature rows ``s`` to ``e`` (clipped to N)."""
        s, e = max(0, s), min(self.n, e)
        return self._fill(slice(s, e), max(0, e - s))

    def take(self, idx: np.ndarray) -> np.ndarray:
        """float32 (len(idx), D): the feature rows ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        return self._fill(idx, idx.shape[0])


    def mean(self) -> np.ndarray:
        """float64 (1, D): the column means of the features, as ``x.mean(axis=0, keepdims=True,
        dtype=float64)`` of the whole matrix."""
        if self.dim < 2:
            return self.rows(0, self.n).mean(axis=0, keepdims=True, dtype=np.float64)
        return (_column_sum(lambda sel: self._fill(sel, len(range(*sel.indices(self.n)))), self.n) / self.n)[None]


class _Matrix:
    """A ready feature matrix as a row source (:func:`cluster` on ``build_features``' output)."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.n, self.dim = x.shape

    def rows(self, s: int, e: int) -> np.ndarray:
        return self.x[s:e]

    def take(self, idx: np.ndarray) -> np.ndarray:
        return self.x[idx]

    def mean(self) -> np.ndarray:
        return self.x.mean(axis=0, keepdims=True, dtype=np.float64)


def _distinct_rows(x: np.ndarray) -> int:
    """Number of distinct rows of float32 ``x`` (N, D), from 8 bytes per row: each row's bytes
    (as int32, so -0.0 and 0.0 stay apart as in a byte comparison) projected on a fixed random
    vector in float64. Equal rows give equal fingerprints; two different rows colliding is a
    measure-zero event, and would only lower k by one."""
    src = x if isinstance(x, (FeatureRows, _Matrix)) else _Matrix(np.asarray(x, dtype=np.float32))
    if src.n == 0:
        return 0
    w = np.random.default_rng(0).standard_normal(src.dim)
    # one batch of rows at a time: the int32 -> float64 product would otherwise copy all of x
    fp = [np.ascontiguousarray(src.rows(s, s + _DISTINCT_ROWS)).view(np.int32) @ w
          for s in range(0, src.n, _DISTINCT_ROWS)]
    return int(np.unique(np.concatenate(fp)).size)


_DISTINCT_ROWS = 65536


def cluster(features: "np.ndarray | FeatureRows", k: int | None = None, seed: int = 42, mode: str = "default",
            batch: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Cluster candidates and score representativeness (GDO_METHOD.md 3.6).

    Args:
        features: float (N, D) from :func:`build_features` (with the same ``mode``), or the
            :class:`FeatureRows` of the same blocks (the same result; the (N, D) matrix is never
            built: memory is the blocks plus a batch and a k-means sample of at most
            max(65536, 32 k) rows).
        k: clusters (None: :func:`cluster_k` of the mode); default mode caps it at the number of
            distinct rows.
        seed: random_state of the sample and of k-means.
        mode: "default" (exp(-d/median d)) or "paper" (the release's streaming fit and exp(-d),
            module docstring).
        batch: rows per assignment batch.

    Returns:
        (cluster_id int64 (N,), cluster_rep float64 (N,), cluster_hard float64 (N,), info dict
        with k, scale, sample size).

    Raises:
        ValueError: bad ``k`` or ``mode``.
    """
    if mode not in ("default", "paper"):
        raise ValueError(f"mode must be 'default' or 'paper', not {mode!r}")
    x = features if isinstance(features, FeatureRows) else _Matrix(np.ascontiguousarray(features, dtype=np.float32))
    n = x.n
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), {"k": 0, "scale": 1.0, "sample": 0})
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mode == "paper":
        return _release_stream(x, cluster_k(n, "paper") if k is None else min(int(k), n), seed, batch)
    k_eff = min(default_k(n) if k is None else int(k), n)
    if n <= 200_000:  # cap k at the number of distinct rows (only matters for small pools)
        k_eff = min(k_eff, _distinct_rows(x))
    if k_eff <= 1:
        centre = x.mean()
        labels = np.zeros(n, np.int64)
        d = np.empty(n)
        for s in range(0, n, batch):
            d[s:s + batch] = np.linalg.norm(x.rows(s, s + batch).astype(np.float64) - centre, axis=1)
        sample_n = n
    else:
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(seed)
        sample_n = min(n, max(65536, 32 * k_eff))
        idx = np.sort(rng.choice(n, size=sample_n, replace=False)) if sample_n < n else np.arange(n)
        n_init = 3 if sample_n * k_eff <= 2_000_000 else 1  # k-means++ restarts only where cheap
        km = MiniBatchKMeans(n_clusters=k_eff, init="k-means++", random_state=seed, n_init=n_init,
                             batch_size=min(4096, max(256, sample_n)), max_iter=100)
        from threadpoolctl import threadpool_limits

        # sklearn's mini-batch steps already use OpenMP with single-threaded BLAS; the k-means++
        # init calls BLAS on small blocks, where BLAS threads only contend (8x slower on a busy box)
        with threadpool_limits(limits=1, user_api="blas"):
            km.fit(x.take(idx))
        centres = km.cluster_centers_.astype(np.float64)
        labels = np.empty(n, np.int64)
        d = np.empty(n)
        c2 = (centres ** 2).sum(axis=1)
        for s in range(0, n, batch):
            xb = x.rows(s, s + batch).astype(np.float64)
            d2 = (xb ** 2).sum(axis=1)[:, None] - 2.0 * xb @ centres.T + c2[None, :]
            lab = np.argmin(d2, axis=1)
            labels[s:s + batch] = lab
            d[s:s + batch] = np.linalg.norm(xb - centres[lab], axis=1)
    if mode == "paper":
        scale = 1.0
    else:
        scale = float(np.median(d))
        scale = scale if scale > 1e-12 else 1.0
    rep = np.exp(-d / scale)
    return labels, rep, 1.0 - rep, {"k": int(k_eff), "scale": scale, "sample": int(sample_n)}


def cluster_descriptors(text: np.ndarray | None, visual: np.ndarray | None, tnc, amm, frame_diversity,
                        ppl=None, vds=None, *, k: int | None = None, seed: int = 42,
                        mode: str = "default") -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Cluster candidates from their descriptor blocks: the one entry point of ``gdo profile``
    (text and visual embeddings) and of the release-shard adapter (``text_feat``, ``vis_feat``).

    Blocks in the release's order: text (N, d_t), visual (N, d_v) (an array or a
    :class:`Gathered` of per-item features), then :func:`scalar_block` of
    tnc, amm, frame diversity, PPL, VDS (arrays (N,), NaN = missing); :func:`build_features` and
    :func:`cluster` with ``mode``'s rules and k (:func:`cluster_k` unless ``k`` is given).

    Returns:
        As :func:`cluster`; ``info`` also names the scalar columns used (``scalars``).
    """
    scal = scalar_block(tnc, amm, frame_diversity, ppl, vds, mode=mode)
    feats = FeatureRows([text, visual, scal], mode=mode)  # the rows of build_features, never all at once
    cid, rep, hard, info = cluster(feats, k=k, seed=seed, mode=mode)
    info["scalars"] = ["tnc", "amm", "frame_diversity", "ppl", "vds"][: scal.shape[1]]
    return cid, rep, hard, info


def _release_stream(x, k: int, seed: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """The release's merge_metrics.py clustering (module docstring, ``paper``) on the float32 rows
    of ``x`` (:class:`FeatureRows` or :class:`_Matrix`), read in blocks of 8192."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    n = x.n
    if n < 2:
        d = np.zeros(n)
        return np.zeros(n, np.int64), np.exp(-d), 1.0 - np.exp(-d), {"k": n, "scale": 1.0, "sample": n}
    k = max(2, min(k, n))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=PAPER_BATCH, n_init=3, reassignment_ratio=0.01)
    with threadpool_limits(limits=1, user_api="blas"):
        km.partial_fit(x.rows(0, k))
        for s in range(k, n, PAPER_BATCH):
            km.partial_fit(x.rows(s, s + PAPER_BATCH))
        centres = km.cluster_centers_
        labels = np.empty(n, np.int64)
        d = np.empty(n)
        for s in range(0, n, batch):
            xb = x.rows(s, s + batch)
            lab = km.predict(xb)
            labels[s:s + batch] = lab
            diff = xb - centres[lab]
            norm = np.linalg.norm
            # one float32 norm per row, as the release computes it (a row-wise reduction rounds
            # differently from the vector norm's dot product)
            d[s:s + batch] = [float(norm(r)) for r in diff]
    rep = np.exp(-d)
    return labels, rep, 1.0 - rep, {"k": int(k), "scale": 1.0, "sample": int(n), "fit": "release_stream"}
