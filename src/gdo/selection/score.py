"""Normalisation, quality score, stratum fields and the candidate score.

GDO_METHOD.md section 4 (z-scores, quality) and section 5 (strata, candidate score). Everything is
a numpy/pyarrow column operation over the whole pool.

z conventions:

* ``robust`` (section 4, and default mode everywhere): ``(x - median) / (IQR / 1.349)``; when the
  IQR is 0 the sample standard deviation is used instead, and when that is 0 too every z is 0.
* ``meanstd`` (paper mode, descriptor terms of the candidate score): ``(x - mean) / std`` with
  ddof 1 over every row of the descriptor file (image rows included).

Missing values (NaN) stay NaN in z; each formula says how it treats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo.descriptors import fields as F
from gdo.schema import SHORT_VIDEO
from gdo.text import Tokens, tokenize

FIELD_NAMES = ("bucket", "duration", "temporal", "question_form", "q_len", "a_len", "source_group")
"""The seven stratum fields, in stratum-tuple order (GDO_METHOD.md section 5)."""

TEMPORAL_BONUS = {"Temporal": 1.0, "Mixed": 0.2, "Static": -0.5}


# z-scores, sigmoid and quality live in gdo.descriptors.quality (one owner); re-exported here for
# the candidate score
from gdo.descriptors.quality import apply_z, quality_score, sigmoid, z_stats, zscore  # noqa: E402,F401


# ----------------------------------------------------------------------------- fields (section 5)
@dataclass
class Fields:
    """Stratum fields of N candidates.

    ``codes[name]``: int32 (N,) codes in first-seen pool order; ``labels[name]``: label of each code;
    ``stratum``: int64 (N,) stratum id in first-seen order; ``stratum_fields``: int32 (S, 7) codes of
    each stratum; ``q_words``/``a_words``/``a_distinct``: token counts.
    """

    codes: dict[str, np.ndarray]
    labels: dict[str, list[str]]
    stratum: np.ndarray
    stratum_fields: np.ndarray
    q_words: np.ndarray
    a_words: np.ndarray
    a_distinct: np.ndarray
    extra: dict = field(default_factory=dict)

    def stratum_label(self, s: int) -> str:
        """Human-readable stratum key: the seven labels joined by "|"."""
        return "|".join(self.labels[f][int(c)] for f, c in zip(FIELD_NAMES, self.stratum_fields[s]))

    def field_labels(self, name: str) -> np.ndarray:
        """Object array (N,) of the field's label per candidate."""
        return np.asarray(self.labels[name], dtype=object)[self.codes[name]]


def first_seen_codes(values) -> tuple[np.ndarray, list]:
    """Encode ``values`` (strings or ints, length N) as int32 codes numbered in first-seen order."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        u, first, inv = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        remap = np.empty(len(u), dtype=np.int32)
        remap[order] = np.arange(len(u), dtype=np.int32)
        return remap[inv.reshape(-1)], [u[i].item() for i in order]
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    d = pc.dictionary_encode(pc.fill_null(arr, ""))
    return np.asarray(d.indices, dtype=np.int32), d.dictionary.to_pylist()


def _bucket_idx(counts: np.ndarray, edges: tuple) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), counts, side="left")


def compute_fields(cand: pa.Table, mode: str, *, tnc_judge: np.ndarray | None = None,
                   native_frames: np.ndarray | None = None, frames: int = 32,
                   q_tok: Tokens | None = None, a_tok: Tokens | None = None) -> Fields:
    """The seven stratum fields (GDO_METHOD.md section 5) for the candidates in ``cand`` (pool order).

    Paper mode: duration from frames after the cut to ``frames`` (T; ``unknown`` for a video whose
    frame count is not known), lexical temporal category, whitespace-collapsing MCQ test. Default mode: duration from native frame counts (descriptor
    ``native_frames``, else the candidate's, else the length of a frame list; ``unknown`` when none is
    known), images always ``image``; temporal category from the TNC judge (>= 0.5) where it ran, else
    lexical; proper MCQ detection.

    Args:
        cand: candidates table (CANDIDATE_SCHEMA columns ``bucket``, ``question``, ``answer``,
            ``data_source``, ``n_frames``, ``native_frames``, ``media_kind``, ``media``).
        tnc_judge / native_frames: float64 (N,) from the descriptors, NaN where missing.
    """
    n = cand.num_rows
    bucket = pc.fill_null(cand["bucket"], "")
    is_video = np.asarray(pc.equal(bucket, SHORT_VIDEO), dtype=bool)
    q = cand["question"]
    a = cand["answer"]
    paper = mode == "paper"
    if q_tok is None:
        q_tok = tokenize(q, ascii_words=paper)
    if a_tok is None or a_tok.distinct is None:
        a_tok = tokenize(a, distinct=True, need_below=0.55, ascii_words=paper)
    a_distinct = a_tok.distinct

    def numcol(name):
        if name not in cand.column_names:
            return np.full(n, np.nan)
        return np.asarray(pc.fill_null(pc.cast(cand[name], pa.float64()), np.nan), dtype=np.float64)

    n_frames = numcol("n_frames")
    nat = numcol("native_frames")
    if "media_len" in cand.column_names or "media" in cand.column_names:
        media_len = (np.asarray(pc.fill_null(cand["media_len"], 0), dtype=np.float64) if "media_len" in cand.column_names
                     else np.asarray(pc.fill_null(pc.list_value_length(cand["media"]), 0), dtype=np.float64))
        kind = np.asarray(pc.fill_null(cand["media_kind"], ""), dtype=object) if "media_kind" in cand.column_names \
            else np.full(n, "", dtype=object)
        is_frames = kind == "frames"
    else:
        media_len = np.full(n, np.nan)
        is_frames = np.zeros(n, dtype=bool)
    if native_frames is not None:
        nat = np.where(np.isnan(native_frames), nat, native_frames)
    # a frame list's length is its native frame count; an unprobed frame folder (one path, or no
    # media column in lean ingest) stays unknown
    nat = np.where(np.isnan(nat) & is_frames & (media_len > 1), media_len, nat)
    dur_names = np.asarray(F.DURATION_NAMES + ("unknown",), dtype=object)
    if mode == "paper":
        fr = np.where(np.isnan(n_frames), np.minimum(nat, frames), np.minimum(n_frames, frames))
        didx = _bucket_idx(np.nan_to_num(fr, nan=0.0), F.DURATION_EDGES)
        didx = np.where(is_video & np.isnan(fr), len(F.DURATION_NAMES), didx)  # frame count unknown
        didx = np.where(is_video, didx, 0)  # image rows are "image", however many images (item 5)
    else:
        didx = _bucket_idx(np.nan_to_num(nat, nan=0.0), F.DURATION_EDGES)
        didx = np.where(is_video & np.isnan(nat), len(F.DURATION_NAMES), didx)
        didx = np.where(is_video, didx, 0)
    codes: dict[str, np.ndarray] = {}
    labels: dict[str, list] = {}
    codes["bucket"], labels["bucket"] = first_seen_codes(bucket)
    c, lab = first_seen_codes(didx.astype(np.int64))
    codes["duration"], labels["duration"] = c, [str(dur_names[i]) for i in lab]
    # temporal category (same rule as fields.temporal_category, on integer codes): 0 Static, 1 Temporal, 2 Mixed
    # the lexical rule is only needed for video questions (without a judge value)
    need = is_video.copy()
    temporal = np.zeros(n, dtype=bool)
    if mode != "paper" and tnc_judge is not None:
        j = np.asarray(tnc_judge, dtype=np.float64)
        judged = ~np.isnan(j)
        temporal[judged] = j[judged] >= 0.5
        need &= ~judged
    if need.any():
        qv = q.filter(pa.array(need)) if isinstance(q, (pa.Array, pa.ChunkedArray)) else \
            np.asarray(q, dtype=object)[need].tolist()
        temporal[need] = F.lexical_tnc(qv) > 0.5
    tcode = np.where(is_video, np.where(temporal, 1, 2), 0).astype(np.int64)
    c, lab = first_seen_codes(tcode)
    codes["temporal"], labels["temporal"] = c, [("Static", "Temporal", "Mixed")[i] for i in lab]
    mcq = F.mcq_mask(q, mode="paper" if mode == "paper" else "default").astype(np.int64)
    c, lab = first_seen_codes(mcq)
    codes["question_form"], labels["question_form"] = c, [("Open", "MCQ")[i] for i in lab]
    c, lab = first_seen_codes(_bucket_idx(q_tok.counts, F.Q_LEN_EDGES).astype(np.int64))
    codes["q_len"], labels["q_len"] = c, [F.Q_LEN_NAMES[i] for i in lab]
    c, lab = first_seen_codes(_bucket_idx(a_tok.counts, F.A_LEN_EDGES).astype(np.int64))
    codes["a_len"], labels["a_len"] = c, [F.A_LEN_NAMES[i] for i in lab]
    ds = cand["data_source"] if "data_source" in cand.column_names else pa.array([""] * n)
    extra = {"is_video": is_video}
    if paper:
        # the release reads data_source whitespace-collapsed, groups it and counts it raw
        from gdo.text import dedup_text

        ds = dedup_text(ds, "paper")
        extra["source_raw"] = first_seen_codes(ds)[0].astype(np.int64)
    codes["source_group"], labels["source_group"] = first_seen_codes(F.source_group(ds))
    # stratum = tuple of the seven codes, numbered in first-seen order
    key = np.zeros(n, dtype=np.int64)
    for f in FIELD_NAMES:
        key = key * (len(labels[f]) + 1) + codes[f]
    strat, _ = first_seen_codes(key) if n else (np.zeros(0, np.int32), [])
    strat = strat.astype(np.int64)
    S = int(strat.max()) + 1 if n else 0
    first = np.full(S, n, dtype=np.int64)
    np.minimum.at(first, strat, np.arange(n)) if n else None
    sf = np.stack([codes[f][first] for f in FIELD_NAMES], axis=1) if S else np.zeros((0, 7), np.int32)
    return Fields(codes, labels, strat, sf, q_tok.counts, a_tok.counts, a_distinct, extra=extra)


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
