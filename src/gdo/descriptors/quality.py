"""Normalisation and the shared quality score (GDO_METHOD.md section 4): the one owner.

z conventions:

* ``robust`` (section 4, and default mode everywhere): ``(x - median) / (IQR / 1.349)``; when the
  IQR is 0 the sample standard deviation is used instead, and when that is 0 too every z is 0.
* ``meanstd`` (paper mode, descriptor terms of the candidate score): ``(x - mean) / std`` with
  ddof 1; std 1.0 when there are fewer than two values or the variance is at most 1e-12 (the
  release's running statistics).

Quality is computed here for every input path: from ``descriptors.parquet`` and from the release's
raw shards (:mod:`gdo.selection.descriptors_io` calls :func:`quality_score`), so selection never
computes it itself. Missing values (NaN) stay NaN in z; each formula says how it treats them.
"""

from __future__ import annotations

import math
import random

import numpy as np

#: The release's reservoir size for the quality statistics (merge_metrics.py --stats-sample-size)
#: and the seed offsets of its per-column reservoirs (vds, ppl, amm, frame diversity).
RELEASE_STATS_SAMPLE = 800_000
_RELEASE_SEED_OFFSET = {"vds": 11, "ppl": 13, "amm": 17, "frame_diversity": 19}


def z_stats(x: np.ndarray, kind: str) -> tuple[float, float, int]:
    """Centre and scale of finite values of ``x`` for ``kind`` ("robust" or "meanstd").

    Returns:
        (centre, scale, n_finite); scale 0 means "every z is 0".
    """
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 0.0, 0
    if kind == "meanstd":
        # the release's RunningStats: sample std (ddof 1), replaced by 1.0 when n <= 1 or var <= 1e-12
        if v.size < 2:
            return float(v.mean()), 1.0, int(v.size)
        var = float(v.var(ddof=1))
        return float(v.mean()), (math.sqrt(var) if var > 1e-12 else 1.0), int(v.size)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    scale = (q3 - q1) / 1.349
    if not scale > 0:
        scale = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(med), float(scale), int(v.size)


def apply_z(x: np.ndarray, centre: float, scale: float) -> np.ndarray:
    """z = (x - centre)/scale; NaN stays NaN; scale 0 gives 0 for finite x."""
    x = np.asarray(x, dtype=np.float64)
    if scale > 0:
        return (x - centre) / scale
    return np.where(np.isfinite(x), 0.0, np.nan)


def zscore(x: np.ndarray, kind: str = "robust") -> np.ndarray:
    """z-score of ``x`` against its own finite values (see the module docstring)."""
    c, s, _ = z_stats(x, kind)
    return apply_z(x, c, s)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float64."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -500.0, 500.0)))


# ----------------------------------------------------------------------------- quality (section 4)
def quality_score(cols: dict[str, np.ndarray], *, stat_rows: np.ndarray | None = None,
                  mode: str = "default", seed: int = 42) -> np.ndarray:
    """Shared quality score (GDO_METHOD.md section 4).

    ``mode="paper"``: :func:`release_quality` (the release's merge step, bit for bit on its inputs);
    ``stat_rows`` is then ignored (the release's own reservoir decides).

    quality = 0.28*sigmoid(z(VDS)+z(FD)) + 0.18*SC + 0.14*exp(-|z(PPL)|) + 0.12*exp(-|z(AMM)|)
              + 0.12*TNC + 0.10*cluster_rep + 0.06*cluster_hard,
    with robust z over the rows (or over ``stat_rows``, an index array, e.g. a reservoir sample).
    Missing SC: sigmoid(0.6*z(VDS) - 0.2*|z(PPL)|). Missing VDS = loss_blind - loss_video when both
    losses exist; missing PPL = exp(clamp(loss_video, -30, 30)). Any other missing z counts as 0
    (the pool median); missing TNC (judge, else lexical ``tnc``), cluster_rep, cluster_hard count as 0.

    Args:
        cols: float64 arrays of equal length M: ``vds``, ``frame_diversity``, ``sc``, ``ppl``, ``amm``,
            ``tnc``, ``tnc_judge``, ``cluster_rep``, ``cluster_hard``, ``loss_video``, ``loss_blind``
            (absent keys mean all missing).

    Returns:
        float64 array (M,).
    """
    if mode == "paper":
        return release_quality(cols, seed=seed)
    m = len(next(iter(cols.values()))) if cols else 0

    def col(k):
        v = cols.get(k)
        return np.full(m, np.nan) if v is None else np.asarray(v, dtype=np.float64)

    lv, lb = col("loss_video"), col("loss_blind")
    vds = col("vds")
    vds = np.where(np.isnan(vds), lb - lv, vds)
    ppl = col("ppl")
    ppl = np.where(np.isnan(ppl), np.exp(np.clip(lv, -30, 30)), ppl)

    def z(x):
        c, s, _ = z_stats(x if stat_rows is None else x[stat_rows], "robust")
        return apply_z(x, c, s)

    z_vds, z_fd, z_ppl, z_amm = z(vds), z(col("frame_diversity")), z(ppl), z(col("amm"))
    z0 = lambda a: np.nan_to_num(a, nan=0.0)  # noqa: E731
    sc = col("sc")
    sc = np.where(np.isnan(sc), sigmoid(0.6 * z0(z_vds) - 0.2 * np.abs(z0(z_ppl))), sc)
    tnc = col("tnc_judge")
    tnc = np.where(np.isnan(tnc), col("tnc"), tnc)
    return (0.28 * sigmoid(z0(z_vds) + z0(z_fd)) + 0.18 * sc + 0.14 * np.exp(-np.abs(z0(z_ppl)))
            + 0.12 * np.exp(-np.abs(z0(z_amm))) + 0.12 * z0(tnc) + 0.10 * z0(col("cluster_rep"))
            + 0.06 * z0(col("cluster_hard")))


def _reservoir_rows(n: int, cap: int, seed: int) -> np.ndarray:
    """Row indices the release's ReservoirSampler(cap, seed) holds after n values (slot order)."""
    if n <= cap:
        return np.arange(n)
    rng = random.Random(seed)
    ri = rng.randint
    buf = list(range(cap))
    for i in range(cap, n):
        j = ri(1, i + 1)
        if j <= cap:
            buf[j - 1] = i
    return np.asarray(buf, dtype=np.int64)


def _release_centre_scale(v: np.ndarray) -> tuple[float, float]:
    # the release: float32 sample, numpy quantiles, IQR floored at 1e-6
    if v.size == 0:
        return 0.0, 1.0
    a = v.astype(np.float32)
    q50 = float(np.quantile(a, 0.5))
    q25 = float(np.quantile(a, 0.25))
    q75 = float(np.quantile(a, 0.75))
    return q50, max(q75 - q25, 1e-6) / 1.349


def _release_sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def release_quality(cols: dict[str, np.ndarray], *, seed: int = 42,
                    sample: int = RELEASE_STATS_SAMPLE) -> np.ndarray:
    """Quality as the release's merge step computes it (paper mode), float64 (M,).

    Rows in the release's file order. Missing ``vds``, ``ppl``, ``amm``, ``frame_diversity``,
    ``tnc`` count 0 (the release reads them with a default of 0); robust centre/scale of vds, ppl,
    amm and frame diversity from a reservoir sample of at most ``sample`` rows per column
    (``random.Random(seed + 11 / 13 / 17 / 19)``, all rows when fewer), as float32, scale =
    max(IQR, 1e-6) / 1.349 and z = (x - centre) / max(scale, 1e-6); ``sc`` missing or negative:
    sigmoid(0.6 z(vds) - 0.2 |z(ppl)|); ``cluster_rep`` missing counts 0.
    """
    m = len(next(iter(cols.values()))) if cols else 0

    def col0(k):
        v = cols.get(k)
        if v is None:
            return np.zeros(m)
        v = np.asarray(v, dtype=np.float64)
        return np.where(np.isfinite(v), v, 0.0)

    vals = {k: col0(k) for k in ("vds", "ppl", "amm", "frame_diversity", "tnc", "cluster_rep")}
    st = {}
    for k, off in _RELEASE_SEED_OFFSET.items():
        rows = _reservoir_rows(m, sample, seed + off)
        st[k] = _release_centre_scale(vals[k][rows])

    def z(k):
        c, s = st[k]
        return (vals[k] - c) / max(s, 1e-6)

    sc = cols.get("sc")
    sc = np.full(m, np.nan) if sc is None else np.asarray(sc, dtype=np.float64)
    sc = np.where(np.isfinite(sc) & (sc >= 0), sc, _release_sigmoid(0.6 * z("vds") - 0.2 * np.abs(z("ppl"))))
    rep = vals["cluster_rep"]
    return (0.28 * _release_sigmoid(z("vds") + z("frame_diversity")) + 0.18 * sc
            + 0.14 * np.exp(-np.abs(z("ppl"))) + 0.12 * np.exp(-np.abs(z("amm"))) + 0.12 * vals["tnc"]
            + 0.10 * rep + 0.06 * (1.0 - rep))
