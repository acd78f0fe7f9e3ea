"""The seven stratum fields and the lexical temporal rule (GDO_METHOD.md sections 3.4 and 5).

All functions are vectorised over pyarrow arrays (RE2 regexes through ``pyarrow.compute``)
so they run on millions of candidates in seconds.

Word tokens are maximal runs of ``\\w`` characters (``[0-9A-Za-z_]`` plus Unicode letters),
counted on the text as written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Words of the lexical temporal rule (GDO_METHOD.md 3.4), matched as whole words, any case.
TEMPORAL_WORDS = (
    "before", "after", "then", "while", "during", "first", "next", "finally",
    "sequence", "later", "earlier", "transition", "happen",
)
#: A word token (Unicode letters, digits and "_"; RE2's own \w would be ASCII-only).
from gdo.text import WORD_REGEX, tokenize  # noqa: E402  (the one tokenizer)
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
