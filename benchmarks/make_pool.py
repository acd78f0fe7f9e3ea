#!/usr/bin/env python
"""Generate a LLaVA-OneVision + LLaVA-Video shaped candidate pool with matching descriptors.

The pool is written in the two JSONL layouts the GDO release consumes (GDO_METHOD.md section 2):

* ``llava_onevision.jsonl``: image QA rows
  ``{"id", "images": [path], "messages": [{"role", "content"}, ...], "data_source"}``,
  1-8 user/assistant turns per row (most rows single-turn).
* ``llava_video.jsonl``: video QA rows
  ``{"id", "video_id", "images": [32..180 frame paths], "messages": [...], "data_source"}``;
  each video holds 1-8 QA pairs spread over 1-3 rows that share ``video_id`` and the frame list.

About 60% of the candidates (one per question/answer turn pair) are image QA and 40% video QA.
About 30 ``data_source`` names follow a Zipf-like law (names with "(" and names with many "_"
parts, so source grouping is exercised); some questions are multiple choice ("\\nA." option
lines, with or without the word "choices"), some carry temporal wording (before/after/then...),
question and answer lengths span every length bucket, and about 2.5% of the candidates repeat a
common (question, answer) text. Frame and image paths do not exist (``gdo select`` never opens media).

Descriptor files, one per accepted form (``--forms``), agree on every value for the same uid:

* ``parquet``: ``descriptors.parquet`` with the columns of ``gdo.schema.DESCRIPTOR_COLUMNS``.
* ``merged``: ``sixd_metrics_merged.jsonl``, the release's merged metrics (one line per candidate,
  written in shard order like the release's merge step, with ``quality_score`` computed by the
  release formula, GDO_METHOD.md section 4, from exact pool medians/IQRs).
* ``raw``: ``shards/sixd_metrics_rank0000.jsonl`` ... ``rank0007``: the release's per-rank raw
  descriptor records (candidate ``i`` of the pool goes to rank ``i % 8``), each
  ``{"qa_uid", "video_uid", "bucket", "data_quality_metrics": {loss_video, loss_blind, vds, ppl,
  amm, frame_diversity, tnc_score, self_consistency, text_feat[16], vis_feat[6], n_frames,
  question_len, answer_len, error}}`` plus the release's ``.stat.json`` side files.

Unlike the release, ``text_feat`` hashes tokens with a stable hash (never Python's ``hash()``).

Memory is bounded: rows are produced and written in chunks of ``CHUNK`` candidates, each from its
own random stream seeded by (seed, chunk index), so ``--workers`` processes can generate chunks in
parallel and the files are identical for any worker count; the merged form is derived from a
temporary columnar spill file. ``pool.json`` records what was generated.

CLI::

    python benchmarks/make_pool.py --n 100000 --out DIR [--seed 0] [--forms parquet,merged,raw] [--workers 2]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 2
CHUNK = 25_000
N_SHARDS = 8
IMAGE_SHARE = 0.6
MAX_FRAMES = 32
ALL_FORMS = ("parquet", "merged", "raw")

IMAGE_FILE = "llava_onevision.jsonl"
VIDEO_FILE = "llava_video.jsonl"
PARQUET_FILE = "descriptors.parquet"
MERGED_FILE = "sixd_metrics_merged.jsonl"
SHARD_DIR = "shards"
MANIFEST = "pool.json"

#: Image sources (LLaVA-OneVision style), most frequent first; weights follow rank^-1.1.
IMAGE_SOURCES = (
    "sharegpt4v(coco)", "VisualWebInstruct(filtered)", "CLEVR-Math(MathV360K)",
    "ai2d(cauldron,llava_format)", "image_textualization(filtered)", "ureader_qa",
    "geo170k(qa)", "chart2text(cauldron)", "vision_flan(filtered)", "allava_instruct_vflan4v",
    "textocr(gpt4v)", "ureader_kg", "scienceqa(nona_context)", "infographic_vqa",
    "tallyqa(cauldron,llava_format)", "ai2d(gpt4v)", "magpie_pro(l3_80b_st)", "mathqa",
    "sroie", "llava_wilder_zh",
)
#: Video sources (LLaVA-Video-178K style): duration family, then task kind.
VIDEO_SOURCES = (
    "0_30_s_academic_v0_1_oe", "0_30_s_youtube_v0_1_mc", "30_60_s_academic_v0_1_cap",
    "1_2_m_youtube_v0_1_oe", "0_30_s_activitynetqa_oe", "30_60_s_youtube_v0_1_mc",
    "2_3_m_academic_v0_1_cap", "1_2_m_nextqa_mc", "llava_hound(0_30_s)", "2_3_m_youtube_v0_1_oe",
)
#: Native frame-count range of each video source's duration family (frames at about 1 fps).
_FRAME_RANGE = {"0_30_s": (32, 45), "30_60_s": (40, 75), "1_2_m": (70, 140), "2_3_m": (120, 180),
                "llava_hound": (32, 64)}

# Words never produced by the corpus (they are injected only by templates): temporal words of
# GDO_METHOD.md 3.4, the MCQ cue words and the option letters.
_RESERVED = {"before", "after", "then", "while", "during", "first", "next", "finally", "sequence",
             "later", "earlier", "transition", "happen", "choice", "choices", "a", "b", "c", "d"}
_COMMON = (
    "the of and in on is to with that it are there this at man woman person people car red blue "
    "green white black small large left right top bottom side front back image picture video scene "
    "table chair dog cat tree road building sign text number water room window door light hand shirt "
    "two three four many some one other near behind above below inside outside holding wearing "
    "standing sitting walking looking playing street field sky grass wall floor book phone screen "
    "chart graph value total area angle line shape circle triangle color yellow orange brown group "
    "child boy girl player ball game food plate cup bottle box bag kitchen street city house"
).split()
_SYLL = ("ka lo mi ren ta po su vel an dor is ul ex tri ma ne ko ra si te va zo ber gan lin mor "
         "pel qui sar tol ur wen yo ash bri cor del fen gor hal").split()

_CAPTION_Q_IMAGE = ("Describe the image in detail.", "Write a short caption for the image.",
                    "What is shown in this picture?", "Provide a detailed description of the image.",
                    "Please describe this image.")
_CAPTION_Q_VIDEO = ("Describe the video in detail.", "Please provide a detailed description of the video.",
                    "What is happening in this video?", "Summarize the content of the video.",
                    "Give a thorough description of the events in the video.")
_OPEN = ("What is the {x}?", "How many {x} are there?", "Where is the {x}?", "Which {x} is shown?",
         "Why is the {x} here?", "What color is the {x}?", "Is there a {x}?", "What does the {x} show?",
         "Who is near the {x}?", "What kind of {x} is this?", "Can you explain the {x}?")
_TEMPORAL = ("What happens after the {x}?", "What does the {x} do before the {y}?",
             "What did the {x} do first?", "Which event happens during the {x}?",
             "What is the sequence of {x}?", "Then what does the {x} do?",
             "How does the {x} change later in the video?", "What finally happens to the {x}?",
             "What happens next to the {x}?", "What was the {x} doing while the {y} moved?")
_MCQ_TAIL = "\nAnswer with the option's letter from the given choices directly."
_LETTERS = ("A", "B", "C", "D")
_ERRORS = ("CUDA out of memory. Tried to allocate 2.31 GiB", "RuntimeError: image features and image tokens do not match",
           "ValueError: empty answer tokens after truncation")

# Candidate kinds (drive question/answer shape and descriptor distributions).
K_SHORT, K_MEDIUM, K_LONG, K_CAPTION, K_MCQ, K_DOC = range(6)


def _zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / w.sum()


def _stable_bin(word: str, bins: int) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") % bins


class _Corpus:
    """Pseudo-text: words with Zipf frequencies; texts are slices of whole words (O(1) per text)."""

    def __init__(self, n_words: int = 1 << 19, vocab_size: int = 6000, bins: int = 16) -> None:
        rng = np.random.default_rng(12345)  # fixed: the corpus is the same for every seed
        vocab = [w for w in _COMMON if w not in _RESERVED]
        seen = set(vocab) | _RESERVED
        while len(vocab) < vocab_size:
            k = int(rng.integers(1, 4))
            w = "".join(_SYLL[i] for i in rng.integers(0, len(_SYLL), k))
            if w not in seen:
                seen.add(w)
                vocab.append(w)
        self.vocab = vocab
        ids = rng.choice(len(vocab), size=n_words, p=_zipf_weights(len(vocab), 1.0))
        words = [vocab[i] for i in ids]
        self.text = " ".join(words) + " "
        lens = np.fromiter((len(w) + 1 for w in words), dtype=np.int64, count=n_words)
        self.starts = np.concatenate([[0], np.cumsum(lens)])  # starts[i] = char offset of word i
        self.n = n_words
        wbins = np.array([_stable_bin(w, bins) for w in vocab], dtype=np.int64)
        onehot = np.zeros((n_words + 1, bins), dtype=np.int32)
        onehot[np.arange(1, n_words + 1), wbins[ids]] = 1
        self.cum = np.cumsum(onehot, axis=0, dtype=np.int32)  # cum[i] = bin counts of words < i
        self.bins = bins

    def take(self, start: int, length: int) -> str:
        return self.text[self.starts[start]:self.starts[start + length] - 1]

    def feat(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Hashed bag-of-words counts of the slices (shape (M, bins), float64)."""
        return (self.cum[starts + lengths] - self.cum[starts]).astype(np.float64)


_CORPUS: _Corpus | None = None


def _corpus() -> _Corpus:
    global _CORPUS
    if _CORPUS is None:
        _CORPUS = _Corpus()
    return _CORPUS


class _Chunk:
    """Per-candidate arrays of one chunk (pool order) plus the rows to write."""

    def __init__(self) -> None:
        self.uid: list[str] = []
        self.video_uid: list[str] = []
        self.question: list[str] = []   # media tokens stripped (as ingest stores it)
        self.answer: list[str] = []
        self.source: list[str] = []
        self.kind: list[int] = []
        self.temporal: list[bool] = []  # template injected temporal wording
        self.video: list[int] = []      # index into the chunk's video table, -1 for images
        self.dup: list[int] = []        # index of the common (q, a) pair, -1 if none
        self.feat_start: list[int] = []
        self.feat_len: list[int] = []
        self.q_words: list[int] = []   # \w+ token counts
        self.a_words: list[int] = []
        self.rows: list[bytes] = []


_WORD_RE = re.compile(r"\w+")


def _nwords(text: str) -> int:
    return len(_WORD_RE.findall(text))


class _Rand:
    """Fast scalar draws served from pre-drawn numpy blocks (deterministic for a seed)."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16) -> None:
        self.rng = rng
        self.block = block
        self.buf: list[float] = []
        self.pos = 0

    def u(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi)."""
        return lo + int(self.u() * (hi - lo))

    def pick(self, cdf: list[float]) -> int:
        """Index drawn from a cumulative distribution (last entry 1.0)."""
        return min(bisect.bisect_right(cdf, self.u()), len(cdf) - 1)

    def geometric(self, p: float) -> int:
        return 1 + int(math.log(1.0 - self.u()) / math.log(1.0 - p))

    def normal(self, mu: float, sigma: float) -> float:
        u1 = max(self.u(), 1e-12)
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self.u())


def _cdf(p) -> list[float]:
    c = np.cumsum(np.asarray(p, dtype=np.float64))
    return (c / c[-1]).tolist()


_TURNS_IMAGE = ((1, 2, 3, 4, 5, 6, 8), _cdf([0.72, 0.12, 0.06, 0.04, 0.03, 0.02, 0.01]))
_QA_PER_VIDEO = _cdf([0.10, 0.12, 0.14, 0.16, 0.16, 0.14, 0.10, 0.08])  # 1..8
_IMAGE_KINDS = ((K_SHORT, K_MEDIUM, K_LONG, K_CAPTION, K_MCQ, K_DOC), _cdf([0.34, 0.30, 0.12, 0.06, 0.14, 0.04]))
_VIDEO_KINDS = ((K_SHORT, K_MEDIUM, K_LONG, K_MCQ), _cdf([0.25, 0.50, 0.15, 0.10]))
_T_WORDS = {t: _nwords(t.format(x="", y="")) for t in _OPEN + _TEMPORAL}
_TAIL_WORDS = _nwords(_MCQ_TAIL)
_DOC_PREFIX = "Read the text in the image: "
_DOC_WORDS = _nwords(_DOC_PREFIX)


class PoolGenerator:
    """Streaming generator; all randomness comes from one seeded ``numpy`` Generator."""

    def __init__(self, n: int, seed: int = 0) -> None:
        if n < 10:
            raise ValueError(f"--n must be at least 10, got {n}")
        self.n = int(n)
        self.n_image = int(round(self.n * IMAGE_SHARE))
        self.n_video = self.n - self.n_image
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.r = _Rand(self.rng)
        self.c = _corpus()
        self.img_cdf = _cdf(_zipf_weights(len(IMAGE_SOURCES)))
        self.vid_cdf = _cdf(_zipf_weights(len(VIDEO_SOURCES)))
        self.frame_suffix = [f"/{i:05d}.jpg" for i in range(1, 181)]
        self.row_no = [0, 0]  # image rows, videos generated in the current chunk
        self.chunk_index = 0
        drng = np.random.default_rng(777)
        self.common = []  # (question, answer, q words, a words) repeated across the pool
        for j in range(300):
            q = _OPEN[j % len(_OPEN)].format(x=self.c.take(int(drng.integers(0, self.c.n - 10)), 1 + j % 3))
            a = ("Yes.", "No.", "Two.", "Red.", "The " + self.c.take(int(drng.integers(0, self.c.n - 10)), 2) + ".")[j % 5]
            self.common.append((q, a, _nwords(q), _nwords(a)))

    # ---- text -------------------------------------------------------------------------
    def _slice(self, length: int) -> tuple[str, int, int]:
        length = max(1, min(int(length), 400))
        s = self.r.int(0, self.c.n - length - 1)
        return self.c.take(s, length), s, length

    def _qa(self, kind: int, is_video: bool, temporal: bool) -> tuple:
        """Return (question, answer, q words, a words, feat_start, feat_len).

        Word counts are exact (``\\w+`` tokens): corpus words are pure letters, template words are
        pre-counted. The text-feature slice is the answer body.
        """
        r = self.r
        if kind == K_CAPTION:
            q = (_CAPTION_Q_VIDEO if is_video else _CAPTION_Q_IMAGE)[r.int(0, 5)]
            body, s, ln = self._slice(r.int(40, 260) if is_video else r.int(30, 200))
            return q, body.capitalize() + ".", _nwords(q), ln, s, ln
        if temporal:
            tmpl = _TEMPORAL[r.int(0, len(_TEMPORAL))]
            x, _, lx = self._slice(r.int(1, 6))
            y, _, ly = self._slice(r.int(1, 4))
            stem = tmpl.format(x=x, y=y)
            qn = _T_WORDS[tmpl] + lx + (ly if "{y}" in tmpl else 0)
        else:
            tmpl = _OPEN[r.int(0, len(_OPEN))]
            qlen = r.geometric(0.12) if kind != K_DOC else r.int(45, 130)
            x, _, lx = self._slice(min(qlen, 140))
            stem = tmpl.format(x=x)
            qn = _T_WORDS[tmpl] + lx
            if kind == K_DOC:
                tmpl2 = _OPEN[r.int(0, len(_OPEN))]
                x2, _, lx2 = self._slice(2)
                stem = _DOC_PREFIX + x + ". " + tmpl2.format(x=x2)
                qn = _DOC_WORDS + lx + _T_WORDS[tmpl2] + lx2
        if kind == K_MCQ:
            opts = [self._slice(r.int(1, 7)) for _ in range(4)]
            if r.u() < 0.15:
                lines = "".join(f"\n({L}) {o[0]}" for L, o in zip(_LETTERS, opts))
            else:
                lines = "".join(f"\n{L}. {o[0]}" for L, o in zip(_LETTERS, opts))
            qn += 4 + sum(o[2] for o in opts)
            if r.u() < 0.6:
                lines += _MCQ_TAIL
                qn += _TAIL_WORDS
            k = r.int(0, 4)
            style = r.int(0, 3)
            a = (_LETTERS[k], _LETTERS[k] + ".", f"{_LETTERS[k]}. {opts[k][0]}")[style]
            return stem + lines, a, qn, 1 + (opts[k][2] if style == 2 else 0), 0, 0
        if kind == K_SHORT:
            u = r.u()
            if u < 0.35:
                return stem, ("Yes", "No", "Yes.", "No.")[r.int(0, 4)], qn, 1, 0, 0
            if u < 0.5:
                return stem, str(r.int(0, 30)), qn, 1, 0, 0
            body, s, ln = self._slice(r.int(1, 3))
            return stem, body.capitalize() + ".", qn, ln, s, ln
        lo, hi = {K_MEDIUM: (3, 25), K_LONG: (25, 110), K_DOC: (2, 20)}[kind]
        body, s, ln = self._slice(r.int(lo, hi))
        return stem, body.capitalize() + ".", qn, ln, s, ln

    # ---- rows -------------------------------------------------------------------------
    def _image_chunk(self, count: int) -> _Chunk:
        r = self.r
        ch = _Chunk()
        left = count
        while left > 0:
            turns = min(_TURNS_IMAGE[0][r.pick(_TURNS_IMAGE[1])], left)
            left -= turns
            src = IMAGE_SOURCES[r.pick(self.img_cdf)]
            stem = src.split("(")[0]
            rid = f"{stem}_{self.chunk_index:04d}{self.row_no[0]:05d}"
            self.row_no[0] += 1
            msgs: list = []
            caption_src = src.startswith(("sharegpt4v", "image_textualization", "allava"))
            mcq_src = src.startswith(("ai2d", "scienceqa", "mathqa"))
            doc_src = src.startswith(("textocr", "ureader", "sroie", "infographic"))
            for t in range(turns):
                u = r.u()
                if caption_src and t == 0 and u < 0.7:
                    kind = K_CAPTION
                elif mcq_src and u < 0.6:
                    kind = K_MCQ
                elif doc_src and u < 0.4:
                    kind = K_DOC
                else:
                    kind = _IMAGE_KINDS[0][r.pick(_IMAGE_KINDS[1])]
                temporal = r.u() < 0.01
                self._add_candidate(ch, msgs, f"ov::{rid}::t{t}", "", src, kind, temporal, False, -1, t == 0)
            ch.rows.append(orjson.dumps({"id": rid, "images": [f"ov_images/{stem}/{rid}.jpg"],
                                         "messages": msgs, "data_source": src}))
        return ch

    def _video_chunk(self, count: int) -> tuple[_Chunk, dict]:
        r = self.r
        ch = _Chunk()
        vt: dict = {"native": [], "amm": [], "fd": [], "vis": []}
        left = count
        while left > 0:
            n_qa = min(1 + r.pick(_QA_PER_VIDEO), left)
            left -= n_qa
            src = VIDEO_SOURCES[r.pick(self.vid_cdf)]
            fam = next(f for f in _FRAME_RANGE if src.startswith(f))
            lo, hi = _FRAME_RANGE[fam]
            native = r.int(lo, hi + 1)
            vid = f"v_{self.chunk_index:04d}{self.row_no[1]:05d}"
            self.row_no[1] += 1
            prefix = f"vv_frames/{vid}"
            frames_json = orjson.dumps([prefix + s for s in self.frame_suffix[:native]])  # once per video
            amm = math.exp(r.normal(-0.35, 0.8))
            fd = min(max(0.04 + 0.16 * math.sqrt(amm) * math.exp(r.normal(0.0, 0.35)), 0.005), 0.95)
            vis = [round(r.u() * 0.6 + 0.15, 4) for _ in range(3)] + [round(r.u() * 0.27 + 0.08, 4) for _ in range(3)]
            vi = len(vt["native"])
            vt["native"].append(native)
            vt["amm"].append(amm)
            vt["fd"].append(fd)
            vt["vis"].append(vis)
            n_rows = min(n_qa, r.int(1, 4))
            bounds = [0, *sorted({r.int(1, n_qa) for _ in range(n_rows - 1)}), n_qa] if n_qa > 1 else [0, 1]
            for ri in range(len(bounds) - 1):
                rid = f"{vid}_{ri}"
                msgs: list = []
                for t in range(bounds[ri + 1] - bounds[ri]):
                    u = r.u()
                    if src.endswith("_cap") and ri == 0 and t == 0:
                        kind = K_CAPTION
                    elif src.endswith("_mc") and u < 0.75:
                        kind = K_MCQ
                    elif src.startswith("llava_hound") and u < 0.5:
                        kind = K_CAPTION
                    else:
                        kind = _VIDEO_KINDS[0][r.pick(_VIDEO_KINDS[1])]
                    temporal = kind != K_CAPTION and r.u() < 0.32
                    self._add_candidate(ch, msgs, f"vv::{rid}::t{t}", vid, src, kind, temporal, True, vi, t == 0)
                ch.rows.append(b'{"id":' + orjson.dumps(rid) + b',"video_id":' + orjson.dumps(vid)
                               + b',"images":' + frames_json + b',"messages":' + orjson.dumps(msgs)
                               + b',"data_source":' + orjson.dumps(src) + b"}")
        return ch, vt

    def _add_candidate(self, ch: _Chunk, msgs: list, uid: str, video_uid: str, src: str, kind: int,
                       temporal: bool, is_video: bool, vi: int, first: bool) -> None:
        dup = -1
        if kind != K_CAPTION and self.r.u() < 0.025:
            dup = int(len(self.common) * self.r.u() ** 3)  # a few pairs are very common
            q, a, qn, an = self.common[dup]
            kind, temporal, fs, fl = K_SHORT, False, 0, 0
        else:
            q, a, qn, an, fs, fl = self._qa(kind, is_video, temporal)
        token = "<image>\n"  # LLaVA-Video also writes <image> for its frame list
        msgs.append({"role": "user", "content": (token + q) if first else q})
        msgs.append({"role": "assistant", "content": a})
        ch.uid.append(uid)
        ch.video_uid.append(video_uid)
        ch.question.append(q)
        ch.answer.append(a)
        ch.q_words.append(qn)
        ch.a_words.append(an)
        ch.source.append(src)
        ch.kind.append(kind)
        ch.temporal.append(temporal)
        ch.video.append(vi)
        ch.dup.append(dup)
        ch.feat_start.append(fs)
        ch.feat_len.append(fl)

    # ---- descriptors ------------------------------------------------------------------
    def _descriptors(self, ch: _Chunk, vt: dict | None, start_idx: int) -> dict:
        """Plausible, correlated descriptor values for the chunk (arrays of length M).

        Stratum fields use ``gdo.descriptors.fields`` (default mode) except the length buckets,
        which bucketise the exact word counts tracked during generation with the same edges.
        """
        from gdo.descriptors import fields

        r = self.rng
        m = len(ch.uid)
        kind = np.asarray(ch.kind)
        is_video = np.asarray(ch.video) >= 0
        vi = np.maximum(np.asarray(ch.video), 0)
        q_arr = pa.array(ch.question, pa.string())
        lex = fields.lexical_tnc(q_arr)
        if vt is not None and vt["native"]:
            native = np.where(is_video, np.asarray(vt["native"])[vi], 1)
            amm = np.where(is_video, np.asarray(vt["amm"])[vi], 0.0)
            fd = np.where(is_video, np.asarray(vt["fd"])[vi], 0.0)
        else:
            native = np.ones(m, dtype=np.int64)
            amm = np.zeros(m)
            fd = np.zeros(m)
        n_frames = np.where(is_video, np.minimum(native, MAX_FRAMES), 1)
        duration_s = np.where(is_video, native * 1.0, np.nan)
        qn = np.asarray(ch.q_words, dtype=np.int64)
        an = np.asarray(ch.a_words, dtype=np.int64)

        base = np.select([kind == K_MCQ, kind == K_SHORT, kind == K_CAPTION, kind == K_LONG],
                         [0.35, 1.1, 1.45, 1.3], 0.95)
        loss_video = base * np.exp(r.normal(0.0, 0.45, m)) * np.where(is_video, 1.1, 1.0)
        vds = np.where(is_video,
                       r.normal(0.05, 0.22, m) + 0.25 * lex + 0.9 * fd + 0.05 * np.log1p(amm),
                       r.normal(0.12, 0.18, m)) + np.where(kind == K_MCQ, 0.15, 0.0)
        loss_blind = np.maximum(loss_video + vds, 0.005)
        vds = loss_blind - loss_video
        ppl = np.exp(np.clip(loss_video, -30, 30))
        sc = 1.0 / (1.0 + np.exp(-(1.6 - 1.4 * loss_video + 0.9 * (kind == K_MCQ) + r.normal(0, 0.5, m))))
        sc = np.round(sc * 10.0) / 10.0  # mean pairwise Jaccard of 5 samples is coarse
        sc_missing = r.random(m) < 0.03
        u = r.random(m)
        judge = np.where(is_video,
                         np.where(lex > 0.5, np.where(u < 0.86, 1.0, np.where(u < 0.97, 0.0, 0.5)),
                                  np.where(u < 0.22, 1.0, np.where(u < 0.97, 0.0, 0.5))),
                         np.where(u < 0.01, 0.5, np.where(u < 0.03, 1.0, 0.0)))
        err = r.random(m) < 0.004
        err_txt = np.asarray(_ERRORS, dtype=object)[r.integers(0, len(_ERRORS), m)]
        nan = np.nan
        loss_video = np.where(err, nan, loss_video)
        loss_blind = np.where(err, nan, loss_blind)
        vds = np.where(err, nan, vds)
        ppl = np.where(err, nan, ppl)
        sc = np.where(err | sc_missing, nan, sc)
        judge = np.where(err, nan, judge)
        tnc = np.where(np.isnan(judge), lex, judge)

        src_codes, src_inv = np.unique(np.asarray(ch.source, dtype=object), return_inverse=True)
        groups = fields.source_group(pa.array(src_codes.tolist(), pa.string()))[src_inv]
        src_len = np.asarray([len(s) for s in src_codes.tolist()], dtype=np.int64)[src_inv]
        cluster_id = ((src_len * 131 + kind * 17 + r.zipf(1.3, m) * 7 + r.integers(0, 512, m)) % 4096).astype(np.int64)
        dist = r.gamma(2.0, 0.35, m)
        rep = np.exp(-dist)
        dup = np.asarray(ch.dup, dtype=np.int64)
        bucket = np.where(is_video, "short_video", "image_qa").astype(object)
        return {
            "idx": np.arange(start_idx, start_idx + m, dtype=np.int64),
            "uid": ch.uid, "video_uid": ch.video_uid, "bucket": bucket,
            "amm": amm, "frame_diversity": fd, "tnc": tnc,
            "question_form": fields.question_form(q_arr),
            "q_len_bucket": fields._bucketize(qn, fields.Q_LEN_EDGES, fields.Q_LEN_NAMES),
            "a_len_bucket": fields._bucketize(an, fields.A_LEN_EDGES, fields.A_LEN_NAMES),
            "duration_bucket": fields.duration_bucket(native),
            "temporal_category": fields.temporal_category(pa.array(bucket, pa.string()), q_arr, judge),
            "source_group": groups,
            "cluster_id": cluster_id, "cluster_rep": rep, "cluster_hard": 1.0 - rep, "cluster_dist": dist,
            "dup_group": np.where(dup >= 0, dup, -1),
            "native_frames": native.astype(np.int64), "n_frames": n_frames.astype(np.int64),
            "duration_s": duration_s,
            "loss_video": loss_video, "loss_blind": loss_blind, "vds": vds, "ppl": ppl, "sc": sc,
            "tnc_judge": judge, "model_error": np.where(err, err_txt, None),
            "question_len": qn, "answer_len": an,  # ASCII text: [A-Za-z0-9_]+ == \w+
            "lexical_tnc": lex,
            "text_feat": self._text_feat(ch),
            "vis_feat": self._vis_feat(ch, vt, is_video, vi),
        }

    def _text_feat(self, ch: _Chunk) -> np.ndarray:
        f = self.c.feat(np.asarray(ch.feat_start, dtype=np.int64), np.asarray(ch.feat_len, dtype=np.int64))
        f[:, 0] += 1.0  # template words
        f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-6
        return np.round(f, 4)

    def _vis_feat(self, ch: _Chunk, vt: dict | None, is_video: np.ndarray, vi: np.ndarray) -> np.ndarray:
        m = len(ch.uid)
        img = np.round(np.concatenate([self.rng.uniform(0.1, 0.8, (m, 3)), self.rng.uniform(0.05, 0.4, (m, 3))], axis=1), 4)
        if vt is not None and vt["vis"]:
            img[is_video] = np.asarray(vt["vis"])[vi[is_video]]
        return img

    def plan(self) -> list[tuple[int, bool, int, int]]:
        """Chunks in pool order (image file first, then video file): (index, is_video, count, first idx)."""
        out = []
        idx = 0
        for total, is_video in ((self.n_image, False), (self.n_video, True)):
            done = 0
            while done < total:
                cnt = min(CHUNK, total - done)
                out.append((len(out), is_video, cnt, idx))
                done += cnt
                idx += cnt
        return out

    def chunk(self, index: int, is_video: bool, count: int, start_idx: int) -> tuple[_Chunk, dict, int]:
        """Generate one chunk from its own random stream (seed, index): chunks are independent, so
        the output does not depend on how many processes generate them. Returns (chunk,
        descriptor arrays, videos generated)."""
        self.rng = np.random.default_rng([self.seed, index])
        self.r = _Rand(self.rng)
        self.chunk_index = index
        self.row_no = [0, 0]
        if is_video:
            ch, vt = self._video_chunk(count)
        else:
            ch, vt = self._image_chunk(count), None
        return ch, self._descriptors(ch, vt, start_idx), self.row_no[1]


# ---- writers --------------------------------------------------------------------------------
def _descriptor_schema() -> pa.Schema:
    from gdo.schema import DESCRIPTOR_COLUMNS

    types = {"uid": pa.string(), "question_form": pa.string(), "q_len_bucket": pa.string(),
             "a_len_bucket": pa.string(), "duration_bucket": pa.string(), "temporal_category": pa.string(),
             "source_group": pa.string(), "cluster_id": pa.int64(), "dup_group": pa.int64(),
             "native_frames": pa.int64(), "n_frames": pa.int64(), "model_error": pa.string()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in DESCRIPTOR_COLUMNS])


def _descriptor_table(d: dict, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        v = d[f.name]
        if f.name == "dup_group":
            arr = pa.array(v, pa.int64(), mask=np.asarray(v) < 0)
        elif f.name == "duration_s":
            arr = pa.array(v, pa.float64(), from_pandas=True)
        elif pa.types.is_floating(f.type):
            arr = pa.array(np.asarray(v, dtype=np.float64), pa.float64(), from_pandas=True)  # NaN -> null
        else:
            arr = pa.array(v, f.type)
        cols.append(arr)
    return pa.Table.from_arrays(cols, schema=schema)


def _none(x: float):
    return None if x != x else float(x)


def _raw_records(d: dict) -> list[bytes]:
    """The release's raw shard records for a chunk (one JSON line each, no newline)."""
    out = []
    tf = d["text_feat"].tolist()
    vf = d["vis_feat"].tolist()
    lv, lb, vds, ppl, sc = (d[k].tolist() for k in ("loss_video", "loss_blind", "vds", "ppl", "sc"))
    amm, fd, tnc = d["amm"].tolist(), d["frame_diversity"].tolist(), d["tnc"].tolist()
    nf, ql, al = d["n_frames"].tolist(), d["question_len"].tolist(), d["answer_len"].tolist()
    errs = d["model_error"]
    for i, uid in enumerate(d["uid"]):
        e = errs[i]
        s = sc[i]
        out.append(orjson.dumps({
            "qa_uid": uid, "video_uid": d["video_uid"][i], "bucket": d["bucket"][i],
            "data_quality_metrics": {
                "loss_video": _none(lv[i]), "loss_blind": _none(lb[i]), "vds": _none(vds[i]), "ppl": _none(ppl[i]),
                "amm": amm[i], "frame_diversity": fd[i], "tnc_score": tnc[i],
                "self_consistency": -1.0 if s != s else s,
                "text_feat": tf[i], "vis_feat": vf[i], "n_frames": nf[i],
                "question_len": ql[i], "answer_len": al[i], "error": e if e is not None else "",
            }}))
    return out


_STAGE_SCHEMA = pa.schema([
    ("idx", pa.int64()), ("uid", pa.string()), ("video_uid", pa.string()),
    ("loss_video", pa.float64()), ("loss_blind", pa.float64()), ("vds", pa.float64()), ("ppl", pa.float64()),
    ("amm", pa.float64()), ("frame_diversity", pa.float64()), ("tnc", pa.float64()), ("sc", pa.float64()),
    ("cluster_id", pa.int64()), ("cluster_rep", pa.float64()), ("cluster_dist", pa.float64()),
])


def _robust(v: np.ndarray) -> tuple[float, float]:
    if v.size == 0:
        return 0.0, 1.0
    q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return float(q50), max(float(q75 - q25), 1e-6) / 1.349


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _write_merged(stage_path: Path, out_path: Path) -> dict:
    """Release merge (GDO_METHOD.md section 4) from the spill file: stats pass, then shard-order write."""
    pf = pq.ParquetFile(stage_path)

    def col(name: str) -> np.ndarray:
        return pf.read(columns=[name]).column(0).to_numpy(zero_copy_only=False).astype(np.float64)

    # The release fills missing vds/ppl with 0.0 and only samples sc >= 0.
    stats = {}
    for name in ("vds", "ppl", "amm", "frame_diversity"):
        stats[name] = _robust(np.nan_to_num(col(name), nan=0.0))
    sc_all = col("sc")
    sc_ok = sc_all[~np.isnan(sc_all)]
    stats["sc"] = _robust(sc_ok) if sc_ok.size else (0.5, 0.2)
    del sc_all, sc_ok

    def z(v, name):
        c, s = stats[name]
        return (v - c) / max(s, 1e-6)

    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "wb") as fout:
        for rank in range(N_SHARDS):
            for batch in pf.iter_batches(batch_size=CHUNK):
                idx = batch.column("idx").to_numpy()
                sel = np.nonzero(idx % N_SHARDS == rank)[0]
                if sel.size == 0:
                    continue
                b = batch.take(pa.array(sel))
                g = {n: b.column(n).to_numpy(zero_copy_only=False) for n in b.schema.names}
                fl = {n: np.asarray(g[n], dtype=np.float64) for n in
                      ("loss_video", "loss_blind", "vds", "ppl", "amm", "frame_diversity", "tnc", "sc",
                       "cluster_rep", "cluster_dist")}
                vds0 = np.nan_to_num(fl["vds"], nan=0.0)
                ppl0 = np.nan_to_num(fl["ppl"], nan=0.0)
                sc = np.where(np.isnan(fl["sc"]),
                              _sigmoid(0.6 * z(vds0, "vds") - 0.2 * np.abs(z(ppl0, "ppl"))), fl["sc"])
                vds3 = z(vds0, "vds") + z(fl["frame_diversity"], "frame_diversity")
                quality = (0.28 * _sigmoid(vds3) + 0.18 * sc + 0.14 * np.exp(-np.abs(z(ppl0, "ppl")))
                           + 0.12 * np.exp(-np.abs(z(fl["amm"], "amm"))) + 0.12 * fl["tnc"]
                           + 0.10 * fl["cluster_rep"] + 0.06 * (1.0 - fl["cluster_rep"]))
                lv, lb = fl["loss_video"].tolist(), fl["loss_blind"].tolist()
                cols = [x.tolist() for x in (vds0, ppl0, fl["amm"], fl["frame_diversity"], fl["tnc"], sc,
                                             quality, fl["cluster_rep"], fl["cluster_dist"])]
                cid = g["cluster_id"].tolist()
                lines = []
                for i, uid in enumerate(g["uid"].tolist()):
                    v, p, a, f, t, s, q, rep, dist = (c[i] for c in cols)
                    m = {"loss_video": _none(lv[i]), "loss_blind": _none(lb[i]), "frame_diversity": f, "vds": v,
                         "quality_score": q, "ppl": p, "amm": a, "tnc_score": t, "self_consistency": s,
                         "cluster_score": rep, "cluster_hardness": 1.0 - rep}
                    rec = {"qa_uid": uid, "video_uid": g["video_uid"][i], **m,
                           "data_quality_metrics": {**m, "cluster_id": cid[i], "cluster_dist": dist}}
                    lines.append(orjson.dumps(rec))
                fout.write(b"\n".join(lines) + b"\n")
    os.replace(tmp, out_path)
    return {k: {"center": c, "scale": s} for k, (c, s) in stats.items()}


_WORKER: dict = {}


def _build_chunk(args: tuple) -> dict:
    """Worker: generate chunk ``args`` and serialise everything the writers need."""
    n, seed, forms, index, is_video, count, start_idx = args
    gen = _WORKER.get((n, seed))
    if gen is None:
        gen = _WORKER[(n, seed)] = PoolGenerator(n, seed)
    ch, d, videos = gen.chunk(index, is_video, count, start_idx)
    res = {
        "kind": "video" if is_video else "image", "rows": b"\n".join(ch.rows) + b"\n", "n_rows": len(ch.rows),
        "n_cands": len(ch.uid), "videos": videos, "last_idx": int(d["idx"][-1]),
        "sources": {s: int(c) for s, c in zip(*np.unique(np.asarray(ch.source, dtype=object), return_counts=True))},
        "mcq": int(np.sum(d["question_form"] == "MCQ")), "temporal_lexical": int(d["lexical_tnc"].sum()),
        "dup_candidates": int(np.sum(d["dup_group"] >= 0)),
        "model_errors": int(np.sum(d["model_error"] != None)),  # noqa: E711
        "parquet": _descriptor_table(d, _descriptor_schema()) if "parquet" in forms else None,
        "stage": pa.Table.from_arrays([pa.array(d[f.name], f.type, from_pandas=True) for f in _STAGE_SCHEMA],
                                      schema=_STAGE_SCHEMA) if "merged" in forms else None,
        "raw": None,
    }
    if "raw" in forms:
        recs = _raw_records(d)
        res["raw"] = [b"\n".join(recs[(r - start_idx) % N_SHARDS::N_SHARDS]) for r in range(N_SHARDS)]
    return res


def generate(n: int, out: str | os.PathLike, seed: int = 0, forms=ALL_FORMS, quiet: bool = True,
             workers: int | None = None) -> dict:
    """Write a pool of ``n`` candidates and its descriptor files under ``out``.

    Args:
        n: number of candidates (question/answer turn pairs), >= 10; about 60% image, 40% video.
        out: output folder (created).
        seed: seed of every random draw; the same (n, seed) gives byte-identical files.
        forms: subset of ("parquet", "merged", "raw").
        workers: processes generating chunks (default: the CPU count, at most 4); the files are
            identical for any value.

    Returns:
        The manifest written to ``out/pool.json`` (counts, files, seconds).

    Raises:
        ValueError: unknown form or n < 10.
    """
    forms = tuple(forms)
    bad = [f for f in forms if f not in ALL_FORMS]
    if bad:
        raise ValueError(f"unknown descriptor form(s) {bad}; choose from {ALL_FORMS}")
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = PoolGenerator(n, seed)
    files = {"image": out / IMAGE_FILE, "video": out / VIDEO_FILE}
    fh = {k: open(p.with_name(p.name + ".tmp"), "wb") for k, p in files.items()}
    pq_writer = None
    pq_tmp = out / (PARQUET_FILE + ".tmp")
    schema = _descriptor_schema()
    if "parquet" in forms:
        pq_writer = pq.ParquetWriter(pq_tmp, schema, compression="zstd")
    stage_path = out / "_merged_stage.parquet"
    stage_writer = pq.ParquetWriter(stage_path, _STAGE_SCHEMA) if "merged" in forms else None
    shard_dir = out / SHARD_DIR
    shard_fh = []
    if "raw" in forms:
        shard_dir.mkdir(exist_ok=True)
        shard_fh = [open(shard_dir / f"sixd_metrics_rank{r:04d}.jsonl.tmp", "wb") for r in range(N_SHARDS)]
    counts = {"rows": {"image": 0, "video": 0}, "candidates": {"image": 0, "video": 0}, "videos": 0,
              "sources": {}, "mcq": 0, "temporal_lexical": 0, "dup_candidates": 0, "model_errors": 0}
    plan = [(n, seed, forms, *c) for c in gen.plan()]
    if workers is None:
        workers = min(os.cpu_count() or 1, 4)
    workers = max(1, min(int(workers), len(plan)))
    pool = None
    if workers > 1:
        import multiprocessing as mproc

        _corpus()  # built once, inherited by forked workers
        ctx = mproc.get_context("fork" if "fork" in mproc.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers)
        results = pool.imap(_build_chunk, plan)
    else:
        results = map(_build_chunk, plan)
    try:
        for res in results:
            kind = res["kind"]
            fh[kind].write(res["rows"])
            counts["rows"][kind] += res["n_rows"]
            counts["candidates"][kind] += res["n_cands"]
            counts["videos"] += res["videos"]
            for s_, c in res["sources"].items():
                counts["sources"][s_] = counts["sources"].get(s_, 0) + c
            for k in ("mcq", "temporal_lexical", "dup_candidates", "model_errors"):
                counts[k] += res[k]
            if pq_writer is not None:
                pq_writer.write_table(res["parquet"], row_group_size=CHUNK)
            if stage_writer is not None:
                stage_writer.write_table(res["stage"])
            if shard_fh:
                for r in range(N_SHARDS):
                    if res["raw"][r]:
                        shard_fh[r].write(res["raw"][r] + b"\n")
            if not quiet:
                print(f"[make_pool] {res['last_idx'] + 1}/{n} candidates  {time.perf_counter() - t0:.1f}s",
                      file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.terminate()
    for k, f in fh.items():
        f.close()
        os.replace(files[k].with_name(files[k].name + ".tmp"), files[k])
    written = {"image_pool": IMAGE_FILE, "video_pool": VIDEO_FILE}
    if pq_writer is not None:
        pq_writer.close()
        os.replace(pq_tmp, out / PARQUET_FILE)
        written["parquet"] = PARQUET_FILE
    if shard_fh:
        for r, f in enumerate(shard_fh):
            f.close()
            final = shard_dir / f"sixd_metrics_rank{r:04d}.jsonl"
            os.replace(f.name, final)
            rows = (n - r + N_SHARDS - 1) // N_SHARDS if r < n else 0
            (shard_dir / f"sixd_metrics_rank{r:04d}.stat.json").write_bytes(orjson.dumps(
                {"rank": r, "world_size": N_SHARDS, "written_total": rows, "shard_path": str(final)},
                option=orjson.OPT_INDENT_2))
        written["raw"] = SHARD_DIR
    merged_stats = None
    if stage_writer is not None:
        stage_writer.close()
        merged_stats = _write_merged(stage_path, out / MERGED_FILE)
        stage_path.unlink()
        written["merged"] = MERGED_FILE
    manifest = {
        "generator_version": GENERATOR_VERSION, "n": n, "seed": seed, "forms": sorted(forms),
        "files": written, "counts": counts, "n_shards": N_SHARDS, "merged_stats": merged_stats,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, required=True, help="number of candidates (QA turn pairs)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forms", default=",".join(ALL_FORMS), help="comma list of parquet,merged,raw")
    ap.add_argument("--workers", type=int, default=None, help="generator processes (default: CPUs, at most 4)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    forms = [f for f in a.forms.split(",") if f]
    m = generate(a.n, a.out, seed=a.seed, forms=forms, quiet=a.quiet, workers=a.workers)
    print(json.dumps({k: m[k] for k in ("n", "seed", "forms", "seconds")} | {"counts": m["counts"]["candidates"]}))


if __name__ == "__main__":
    main()
