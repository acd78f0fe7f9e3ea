"""The candidate score (GDO_METHOD.md section 5, "Candidate score"): the only thing selection
computes itself from the descriptor table.

Stratum fields come from :mod:`gdo.descriptors.fields` and z-scores / quality from
:mod:`gdo.descriptors.quality` (one owner each). The descriptor terms use the ``meanstd`` z
convention in paper mode (mean / sample std over every row of the descriptor file, image rows
included, as the release) and ``robust`` in default mode. Missing values (NaN) stay NaN in z;
each formula says how it treats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gdo.descriptors.fields import FIELD_NAMES, Fields
from gdo.descriptors.quality import apply_z, z_stats

TEMPORAL_BONUS = {"Temporal": 1.0, "Mixed": 0.2, "Static": -0.5}


# ----------------------------------------------------------------------------- candidate score
DESCRIPTOR_TERMS = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality")


def descriptor_z_stats(cols: dict[str, np.ndarray], mode: str) -> dict[str, dict]:
    """z statistics of the descriptor terms over ``cols`` (mean/std ddof 1 in paper mode, robust otherwise).

    Returns:
        {name: {"centre", "scale", "n", "kind"}} for the names in ``DESCRIPTOR_TERMS``.
    """
    kind = "meanstd" if mode == "paper" else "robust"
    out = {}
    for name in DESCRIPTOR_TERMS:
        x = cols.get(name)
        if x is None:
            out[name] = {"centre": None, "scale": None, "n": 0, "kind": kind}
            continue
        c, s, k = z_stats(x, kind)
        out[name] = {"centre": c, "scale": s, "n": k, "kind": kind}
    return out


def descriptor_terms(cols: dict[str, np.ndarray], zs: dict[str, dict], n: int,
                     mode: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """vds3' and q' (GDO_METHOD.md section 5, "descriptor terms"), each clipped to [-4, 4].

    z of each term is clipped to [-4, 4]; vds3' = -z(loss_video) + z(loss_blind) + z(frame diversity)
    when both losses exist, else z(VDS) + 0.5*z(frame diversity) when both exist, else z(VDS), else 0
    (default mode: a missing frame diversity counts 0 in the first form; paper mode, as the release:
    the first form needs all three values, else the next form applies); q' = z(quality) (missing: 0).

    Returns:
        (vds3p, qp): float64 arrays (n,), before the division by 4 of the score.
    """
    def z(name):
        x = cols.get(name)
        st = zs.get(name) or {}
        if x is None or st.get("centre") is None:
            return np.full(n, np.nan)
        return np.clip(apply_z(x, st["centre"], st["scale"]), -4.0, 4.0)

    z_lv, z_lb, z_fd, z_vds, z_q = (z(k) for k in DESCRIPTOR_TERMS)
    fd0 = np.nan_to_num(z_fd, nan=0.0)
    full = ~np.isnan(z_lv) & ~np.isnan(z_lb)
    if mode == "paper":
        full &= ~np.isnan(z_fd)
    vds_fd = ~np.isnan(z_vds) & ~np.isnan(z_fd)
    vraw = np.where(full, -z_lv + z_lb + fd0,
                    np.where(vds_fd, z_vds + 0.5 * fd0, np.where(~np.isnan(z_vds), z_vds, 0.0)))
    vds3p = np.clip(np.nan_to_num(vraw, nan=0.0), -4.0, 4.0)
    qp = np.clip(np.nan_to_num(z_q, nan=0.0), -4.0, 4.0)
    return vds3p, qp


@dataclass
class ScoreParts:
    """Every term of the candidate score (float64 arrays of shape (N,)) plus the z statistics."""

    naturalness: np.ndarray
    difficulty: np.ndarray
    alignment: np.ndarray
    temporal_bonus: np.ndarray
    source_prior: np.ndarray
    base: np.ndarray
    base_norm: np.ndarray
    vds3p: np.ndarray
    qp: np.ndarray
    score: np.ndarray
    z_stats: dict


def candidate_scores(fl: Fields, desc: dict[str, np.ndarray], has_desc: np.ndarray, mode: str, *,
                     stat_desc: dict[str, np.ndarray] | None = None, no_vds: bool = False,
                     no_ppl: bool = False, no_sc: bool = False) -> ScoreParts:
    """Candidate score (GDO_METHOD.md section 5, "Candidate score").

    Args:
        fl: stratum fields of the N pool candidates.
        desc: per-candidate descriptor columns (float64 (N,), NaN where missing): ``loss_video``,
            ``loss_blind``, ``frame_diversity``, ``vds``, ``quality``.
        has_desc: bool (N,), True where the candidate has a descriptor row.
        mode: ``paper`` (z by mean/std, ddof 1, over ``stat_desc``: every row of the descriptor file)
            or ``default`` (robust z over the pool's descriptor rows).
        stat_desc: columns over which paper-mode statistics are taken (defaults to ``desc[has_desc]``).
        no_vds / no_ppl / no_sc: ablations dropping vds3', naturalness and q' respectively.
    """
    n = len(fl.stratum)
    qn = fl.q_words.astype(np.float64)
    an = fl.a_words.astype(np.float64)
    qn1 = np.maximum(qn, 1.0)
    an1 = np.maximum(an, 1.0)
    nat = (-np.abs(np.log(qn1) - math.log(14)) - 1.25 * np.abs(np.log(an1) - math.log(16))
           - 1.2 * np.maximum(0.0, 0.55 - fl.a_distinct / an1))
    diff = np.exp(-((np.log(np.maximum(1.0, qn + 0.5 * an)) - math.log(22)) ** 2) / (2.0 * 0.85 * 0.85))
    align = np.zeros(n)
    for f in FIELD_NAMES[1:]:
        cnt = np.bincount(fl.codes[f], minlength=len(fl.labels[f])).astype(np.float64)
        p = cnt / max(n, 1)
        align += np.log(np.maximum(p, 1e-9))[fl.codes[f]]
    align /= 6.0
    tl = np.asarray([TEMPORAL_BONUS.get(x, 0.0) for x in fl.labels["temporal"]])
    tbonus = tl[fl.codes["temporal"]]
    # source prior: count of the candidate's raw data_source in paper mode (the release, issue 12
    # item 1), of its source group in default mode (the unit the strata and floors use)
    pkey = "source_raw" if (mode == "paper" and "source_raw" in fl.extra) else None
    pcodes = fl.extra[pkey] if pkey else fl.codes["source_group"]
    gcnt = np.bincount(pcodes, minlength=int(pcodes.max()) + 1 if n else 0).astype(np.float64)
    prior = np.log((n + 1.0) / (gcnt + 1.0))[pcodes]
    is_video = fl.extra["is_video"]
    if no_ppl:
        nat = np.zeros(n)
    base = np.where(is_video, nat + 0.85 * diff + 0.9 * align + 0.55 * tbonus + 0.15 * prior,
                    1.1 * nat + 0.85 * diff + 0.9 * align + 0.15 * prior)
    base_norm = np.tanh(base / 3.0)

    zs = descriptor_z_stats(stat_desc if (stat_desc is not None and mode == "paper")
                            else {k: v[has_desc] for k, v in desc.items()}, mode)
    vds3p, qp = descriptor_terms(desc, zs, n, mode)
    vds3p = np.where(has_desc, vds3p, 0.0)
    qp = np.where(has_desc, qp, 0.0)
    vterm = np.zeros(n) if no_vds else vds3p
    qterm = np.zeros(n) if no_sc else qp
    # the release's operation order: weight * (term / 4)
    video = np.where(has_desc, 0.35 * base_norm + 0.95 * (vterm / 4.0) + 0.35 * (qterm / 4.0), 0.35 * base_norm - 0.15)
    image = 0.9 * base_norm + np.where(has_desc, 0.15 * (qterm / 4.0), 0.0)
    score = np.where(is_video, video, image)
    return ScoreParts(nat, diff, align, tbonus, prior, base, base_norm, vds3p, qp, score, zs)
