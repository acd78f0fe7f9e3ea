"""The seven stratum fields and the lexical temporal rule (GDO_METHOD.md sections 3.4 and 5).

All functions are vectorised over pyarrow arrays (RE2 regexes through ``pyarrow.compute``)
so they run on millions of candidates in seconds.

Word tokens are maximal runs of ``\\w`` characters (``[0-9A-Za-z_]`` plus Unicode letters),
counted on the text as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Words of the lexical temporal rule (GDO_METHOD.md 3.4), matched as whole words, any case.
TEMPORAL_WORDS = (
    "before", "after", "then", "while", "during", "first", "next", "finally",
    "sequence", "later", "earlier", "transition", "happen",
)
#: A word token (Unicode letters, digits and "_"; RE2's own \w would be ASCII-only).
from gdo.schema import SHORT_VIDEO  # noqa: E402
from gdo.text import WORD_REGEX, Tokens, dedup_text, tokenize  # noqa: E402,F401  (the one tokenizer)
TEMPORAL_REGEX = r"(?i)\b(?:" + "|".join(TEMPORAL_WORDS) + r")\b"
_CHOICE_REGEX = r"(?i)\bchoices?\b"
_OPTION_LINE_REGEX = r"(?m)^\s*A[.)]"
#: The release tests ``choices?`` | ``\nA.`` | ``\nA)`` on whitespace-collapsed text, where no "\n"
#: is left: only the word ``choice``/``choices`` marks MCQ there (issue 12 item 2).
_PAPER_MCQ_REGEX = r"(?i)\bchoices?\b"
# Default mode also recognises "(A) ..." option lines and inline "A. x B. y" lists.
_OPTION_DEFAULT_REGEX = r"(?m)^\s*\(?A[.):]\s*\S|(?s)\bA[.)]\s+\S.*\bB[.)]\s+\S"

Q_LEN_EDGES = (6, 14, 30, 60)
Q_LEN_NAMES = ("tiny", "short", "medium", "long", "very_long")
A_LEN_EDGES = (2, 8, 24, 64)
A_LEN_NAMES = ("a<=2", "a<=8", "a<=24", "a<=64", "a>64")
DURATION_EDGES = (1, 8, 24, 64, 160)
DURATION_NAMES = ("image", "very_short", "short", "medium", "long", "very_long")


def _strings(values) -> pa.Array:
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.string())
    return pc.fill_null(arr, "")


def word_counts(texts) -> np.ndarray:
    """Number of word tokens per text.

    Args:
        texts: sequence or pyarrow array of N strings (nulls count as empty).

    Returns:
        int64 array of shape (N,).
    """
    return tokenize(_strings(texts)).counts  # gdo.text: the one tokenizer


def lexical_tnc(questions) -> np.ndarray:
    """Lexical temporal necessity (GDO_METHOD.md 3.4): 1.0 if a temporal word occurs, else 0.0.

    Returns:
        float64 array of shape (N,) with values in {0.0, 1.0}.
    """
    hit = pc.match_substring_regex(_strings(questions), TEMPORAL_REGEX)
    return np.asarray(hit, dtype=bool).astype(np.float64)


def question_form(questions, mode: str = "default") -> np.ndarray:
    """Question form ``MCQ`` or ``Open`` (GDO_METHOD.md section 5).

    ``paper`` mode reproduces the release: whitespace is collapsed first, so its
    ``\nA.`` / ``\nA)`` option-line patterns never fire and only the word ``choice(s)`` marks MCQ
    (a question starting ``A.`` is Open).
    ``default`` mode tests the text as written and also recognises ``(A)`` option lines.

    Returns:
        object array of shape (N,) with "MCQ" or "Open".
    """
    return np.where(mcq_mask(questions, mode), "MCQ", "Open").astype(object)


def mcq_mask(questions, mode: str = "default") -> np.ndarray:
    """Boolean array (N,): True where :func:`question_form` says ``MCQ``."""
    q = _strings(questions)
    if mode == "paper":
        # Collapsing whitespace changes no word boundary, and removes every "\n" the option-line
        # patterns need: the word test alone is the release's test, without rewriting questions.
        hit = pc.match_substring_regex(q, _PAPER_MCQ_REGEX)
    else:
        hit = pc.or_(pc.match_substring_regex(q, _CHOICE_REGEX),
                     pc.match_substring_regex(q, _OPTION_DEFAULT_REGEX))
    return np.asarray(hit, dtype=bool)


def _bucketize(values: np.ndarray, edges: tuple, names: tuple) -> np.ndarray:
    idx = np.searchsorted(np.asarray(edges), np.asarray(values), side="left")
    return np.asarray(names, dtype=object)[idx]


def q_len_bucket(questions) -> np.ndarray:
    """Question length bucket by word tokens: <=6 tiny, <=14 short, <=30 medium, <=60 long, else very_long."""
    return _bucketize(word_counts(questions), Q_LEN_EDGES, Q_LEN_NAMES)


def a_len_bucket(answers) -> np.ndarray:
    """Answer length bucket by word tokens: <=2, <=8, <=24, <=64, else (names ``a<=2`` ... ``a>64``)."""
    return _bucketize(word_counts(answers), A_LEN_EDGES, A_LEN_NAMES)


def duration_bucket(n_frames) -> np.ndarray:
    """Duration bucket from a frame count (GDO_METHOD.md section 5).

    <=1 image, <=8 very_short, <=24 short, <=64 medium, <=160 long, else very_long.
    Default mode passes native frame counts; paper mode passes frames after cutting to 32
    (so ``long`` and ``very_long`` never occur, as in the release). Missing counts (NaN or
    negative) are treated as 0 (image).
    """
    n = np.nan_to_num(np.asarray(n_frames, dtype=np.float64), nan=0.0)
    return _bucketize(n, DURATION_EDGES, DURATION_NAMES)


def temporal_category(buckets, questions, tnc_judge=None) -> np.ndarray:
    """Temporal category: images ``Static``; videos ``Temporal`` or ``Mixed``.

    Without a judge (paper mode, or the judge did not run) a video question is Temporal when
    the lexical rule fires, else Mixed. With ``tnc_judge`` (float array, NaN where missing)
    a video question with judge >= 0.5 is Temporal, < 0.5 Mixed; NaN falls back to the lexical rule.
    """
    b = np.asarray(pc.fill_null(_strings(buckets), ""), dtype=object)
    temporal = lexical_tnc(questions) > 0.5
    if tnc_judge is not None:
        j = np.asarray(tnc_judge, dtype=np.float64)
        temporal = np.where(np.isnan(j), temporal, j >= 0.5)
    out = np.where(temporal, "Temporal", "Mixed").astype(object)
    out[b != "short_video"] = "Static"
    return out


def source_group(data_sources) -> np.ndarray:
    """Source group: the data_source up to the first "(" (trimmed) if it has one, else its first
    four "_"-separated parts (GDO_METHOD.md section 5). Missing sources give ""."""
    s = _strings(data_sources)
    if isinstance(s, pa.ChunkedArray):
        s = s.combine_chunks()
    if len(s) > 64:  # few distinct sources: compute on the dictionary, then expand
        d = pc.dictionary_encode(s)
        return source_group(d.dictionary)[np.asarray(d.indices)]
    has_paren = np.asarray(pc.match_substring(s, "("), dtype=bool)
    before_paren = pc.utf8_trim_whitespace(pc.replace_substring_regex(s, r"\(.*$", ""))
    first4 = pc.replace_substring_regex(s, r"^((?:[^_]*_){3}[^_]*)_.*$", r"\1")
    return np.where(has_paren, np.asarray(before_paren, dtype=object), np.asarray(first4, dtype=object))


# ----------------------------------------------------------------------------- stratum fields of a pool
FIELD_NAMES = ("bucket", "duration", "temporal", "question_form", "q_len", "a_len", "source_group")
"""The seven stratum fields, in stratum-tuple order (GDO_METHOD.md section 5)."""


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
    dur_names = np.asarray(DURATION_NAMES + ("unknown",), dtype=object)
    if mode == "paper":
        fr = np.where(np.isnan(n_frames), np.minimum(nat, frames), np.minimum(n_frames, frames))
        didx = _bucket_idx(np.nan_to_num(fr, nan=0.0), DURATION_EDGES)
        didx = np.where(is_video & np.isnan(fr), len(DURATION_NAMES), didx)  # frame count unknown
        didx = np.where(is_video, didx, 0)  # image rows are "image", however many images (item 5)
    else:
        didx = _bucket_idx(np.nan_to_num(nat, nan=0.0), DURATION_EDGES)
        didx = np.where(is_video & np.isnan(nat), len(DURATION_NAMES), didx)
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
        temporal[need] = lexical_tnc(qv) > 0.5
    tcode = np.where(is_video, np.where(temporal, 1, 2), 0).astype(np.int64)
    c, lab = first_seen_codes(tcode)
    codes["temporal"], labels["temporal"] = c, [("Static", "Temporal", "Mixed")[i] for i in lab]
    mcq = mcq_mask(q, mode="paper" if mode == "paper" else "default").astype(np.int64)
    c, lab = first_seen_codes(mcq)
    codes["question_form"], labels["question_form"] = c, [("Open", "MCQ")[i] for i in lab]
    c, lab = first_seen_codes(_bucket_idx(q_tok.counts, Q_LEN_EDGES).astype(np.int64))
    codes["q_len"], labels["q_len"] = c, [Q_LEN_NAMES[i] for i in lab]
    c, lab = first_seen_codes(_bucket_idx(a_tok.counts, A_LEN_EDGES).astype(np.int64))
    codes["a_len"], labels["a_len"] = c, [A_LEN_NAMES[i] for i in lab]
    ds = cand["data_source"] if "data_source" in cand.column_names else pa.array([""] * n)
    extra = {"is_video": is_video}
    if paper:
        # the release reads data_source whitespace-collapsed, groups it and counts it raw
        ds = dedup_text(ds, "paper")
        extra["source_raw"] = first_seen_codes(ds)[0].astype(np.int64)
    codes["source_group"], labels["source_group"] = first_seen_codes(source_group(ds))
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
