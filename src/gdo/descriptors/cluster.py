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


def _standardise_into(b: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = _standardise(b)`` without a full copy of ``b`` when it is a C-contiguous float32
    block free of NaN (the text and visual embeddings): the same mean/std over the same array and
    the same element-wise steps, so the values are identical to :func:`_standardise`'s."""
    x = np.asarray(b)
    if x.ndim == 1:
        x = x[:, None]
    if x.dtype != np.float32 or not x.flags.c_contiguous or x.shape[0] == 0 or _has_nan(x):
        dst[...] = _standardise(x)
        return
    _scale_into(x, dst)


def _has_nan(x: np.ndarray, rows: int = 65536) -> bool:
    return any(np.isnan(x[s:s + rows]).any() for s in range(0, x.shape[0], rows))


def build_features(blocks: Sequence[np.ndarray | None], mode: str = "default") -> np.ndarray:
    """Concatenate standardised, block-scaled feature blocks (see module doc).

    ``mode="paper"``: the release's features: the blocks as they are, missing (NaN, inf) values 0,
    float32, no scaling.

    Args:
        blocks: arrays of shape (N, d_b) or (N,); None entries are skipped. NaN = missing.

    Returns:
        float32 (N, sum d_b) (memory: 4 bytes per value; built in place, so the peak is this
        matrix plus at most one block that holds NaN or is not float32).

    Raises:
        ValueError: when blocks disagree on N or no block is given.
    """
    shaped = []
    for b in blocks:
        if b is None:
            continue
        a = np.asarray(b)
        shaped.append(a[:, None] if a.ndim == 1 else a)
    if not shaped:
        raise ValueError("build_features needs at least one feature block")
    n = shaped[0].shape[0]
    for a in shaped[1:]:
        if a.shape[0] != n:
            raise ValueError(f"feature blocks have different row counts: {n} vs {a.shape[0]}")
    out = np.empty((n, sum(a.shape[1] for a in shaped)), np.float32)
    c = 0
    for a in shaped:
        dst = out[:, c:c + a.shape[1]]
        c += a.shape[1]
        if mode == "paper":
            dst[...] = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            continue
        _standardise_into(a, dst)
        dst /= np.float32(math.sqrt(a.shape[1]))
    return out


def _distinct_rows(x: np.ndarray) -> int:
    """Number of distinct rows of float32 ``x`` (N, D), from 8 bytes per row: each row's bytes
    (as int32, so -0.0 and 0.0 stay apart as in a byte comparison) projected on a fixed random
    vector in float64. Equal rows give equal fingerprints; two different rows colliding is a
    measure-zero event, and would only lower k by one."""
    if x.shape[0] == 0:
        return 0
    w = np.random.default_rng(0).standard_normal(x.shape[1])
    return int(np.unique(np.ascontiguousarray(x).view(np.int32) @ w).size)


def cluster(features: np.ndarray, k: int | None = None, seed: int = 42, mode: str = "default",
            batch: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Cluster candidates and score representativeness (GDO_METHOD.md 3.6).

    Args:
        features: float (N, D) from :func:`build_features` (with the same ``mode``).
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
    x = np.ascontiguousarray(features, dtype=np.float32)
    n = x.shape[0]
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
        centre = x.mean(axis=0, keepdims=True, dtype=np.float64)
        labels = np.zeros(n, np.int64)
        d = np.linalg.norm(x.astype(np.float64) - centre, axis=1)
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
            km.fit(x[idx])
        centres = km.cluster_centers_.astype(np.float64)
        labels = np.empty(n, np.int64)
        d = np.empty(n)
        c2 = (centres ** 2).sum(axis=1)
        for s in range(0, n, batch):
            xb = x[s:s + batch].astype(np.float64)
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

    Blocks in the release's order: text (N, d_t), visual (N, d_v), then :func:`scalar_block` of
    tnc, amm, frame diversity, PPL, VDS (arrays (N,), NaN = missing); :func:`build_features` and
    :func:`cluster` with ``mode``'s rules and k (:func:`cluster_k` unless ``k`` is given).

    Returns:
        As :func:`cluster`; ``info`` also names the scalar columns used (``scalars``).
    """
    scal = scalar_block(tnc, amm, frame_diversity, ppl, vds, mode=mode)
    feats = build_features([text, visual, scal], mode=mode)
    cid, rep, hard, info = cluster(feats, k=k, seed=seed, mode=mode)
    info["scalars"] = ["tnc", "amm", "frame_diversity", "ppl", "vds"][: scal.shape[1]]
    return cid, rep, hard, info


def _release_stream(x: np.ndarray, k: int, seed: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """The release's merge_metrics.py clustering (module docstring, ``paper``) on float32 ``x``."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    n = x.shape[0]
    if n < 2:
        d = np.zeros(n)
        return np.zeros(n, np.int64), np.exp(-d), 1.0 - np.exp(-d), {"k": n, "scale": 1.0, "sample": n}
    k = max(2, min(k, n))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=PAPER_BATCH, n_init=3, reassignment_ratio=0.01)
    with threadpool_limits(limits=1, user_api="blas"):
        km.partial_fit(x[:k])
        for s in range(k, n, PAPER_BATCH):
            km.partial_fit(x[s:s + PAPER_BATCH])
        centres = km.cluster_centers_
        labels = np.empty(n, np.int64)
        d = np.empty(n)
        for s in range(0, n, batch):
            xb = x[s:s + batch]
            lab = km.predict(xb)
            labels[s:s + batch] = lab
            diff = xb - centres[lab]
            norm = np.linalg.norm
            # one float32 norm per row, as the release computes it (a row-wise reduction rounds
            # differently from the vector norm's dot product)
            d[s:s + batch] = [float(norm(r)) for r in diff]
    rep = np.exp(-d)
    return labels, rep, 1.0 - rep, {"k": int(k), "scale": 1.0, "sample": int(n), "fit": "release_stream"}
