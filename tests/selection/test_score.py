"""Normalisation, quality (section 4), fields and candidate score (section 5)."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdo.descriptors.fields import FIELD_NAMES, compute_fields
from gdo.descriptors.quality import quality_score, z_stats, zscore
from gdo.selection.score import candidate_scores, descriptor_terms, descriptor_z_stats
from gdo.text import distinct_counts, hashed_bow, tokenize


def py_tokens(s):
    return re.findall(r"[^\W]+", s or "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("aAbZ_ 0.,!\n\té日ß’-")), max_size=40)),
                max_size=30))
def test_tokenize_matches_python_word_regex(texts):
    tok = tokenize(texts, hashes=True)
    want = [len(py_tokens(s)) for s in texts]
    assert tok.counts.tolist() == want
    assert tok.parent.size == sum(want)
    want_d = [len({t.lower() for t in py_tokens(s)}) for s in texts]
    assert distinct_counts(tok, len(texts)).tolist() == want_d
    assert tokenize(texts, distinct=True).distinct.tolist() == want_d


def release_tokens(s):
    """The release's word rule (build_pair.py: ``re.findall(r"[A-Za-z0-9_]+", text.lower())``)."""
    return re.findall(r"[A-Za-z0-9_]+", (s or "").lower())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("aAbZ_ 0.,!\n\té日ß’-İ\u212aK")),
                                             max_size=40)), max_size=30))
def test_ascii_words_match_the_release_word_rule(texts):
    tok = tokenize(texts, distinct=True, ascii_words=True)
    assert tok.counts.tolist() == [len(release_tokens(s)) for s in texts]
    assert tok.distinct.tolist() == [len(set(release_tokens(s))) for s in texts]


def test_distinct_counts_above_the_old_index_limit():
    """Issue 12 item 11: more than 2**17 non-ASCII texts in one call (the old packed key wrapped)."""
    n = 140_000
    texts = [f"café café café café w{i}" for i in range(n)]
    want_distinct = [len({t.lower() for t in py_tokens(s)}) for s in texts[:3]]
    assert want_distinct == [2, 2, 2]
    for need_below in (None, 0.55):
        tok = tokenize(texts, distinct=True, need_below=need_below)
        assert tok.counts.min() == tok.counts.max() == 5
        assert int((tok.distinct != 2).sum()) == 0
    tok = tokenize(texts, hashes=True)
    assert int((distinct_counts(tok, n) != 2).sum()) == 0


def test_token_hashes_stable_and_case_insensitive():
    a = tokenize(["Hello world", "HELLO there"], hashes=True)
    assert a.hashes[0] == a.hashes[2] and a.hashes[1] != a.hashes[3]
    b = tokenize(["x y", "Hello"], hashes=True)
    assert b.hashes[2] == a.hashes[0]
    bow = hashed_bow(a, 2, 16)
    assert bow.shape == (2, 16) and np.allclose(np.linalg.norm(bow, axis=1), 1.0)


def test_z_conventions():
    x = np.array([1, 2, 3, 4, 5, np.nan])
    z = zscore(x, "robust")  # median 3, IQR 2 -> scale 2/1.349
    assert z[4] == pytest.approx(2 * 1.349 / 2) and np.isnan(z[5])
    z = zscore(x, "meanstd")  # mean 3, sd 1.5811
    assert z[4] == pytest.approx(2 / math.sqrt(2.5))
    # IQR 0 -> std fallback; all equal -> zeros
    c, s, n = z_stats(np.array([0, 0, 0, 0, 0, 0, 0, 10.0]), "robust")
    assert c == 0 and s == pytest.approx(np.std([0] * 7 + [10], ddof=1)) and n == 8
    assert np.all(zscore(np.array([2.0, 2.0, 2.0])) == 0)


def test_quality_hand_computed():
    # all rows equal -> every z is 0: 0.28*0.5 + 0.18*sc + 0.14 + 0.12 + 0.12*tnc + 0.10*rep + 0.06*hard
    m = 4
    cols = {"vds": np.full(m, 0.3), "frame_diversity": np.full(m, 0.1), "ppl": np.full(m, 5.0), "amm": np.full(m, 2.0),
            "sc": np.full(m, 0.5), "tnc": np.ones(m), "cluster_rep": np.full(m, 0.3), "cluster_hard": np.full(m, 0.7)}
    q = quality_score(cols)
    assert np.allclose(q, 0.14 + 0.09 + 0.14 + 0.12 + 0.12 + 0.03 + 0.042)
    # missing SC -> sigmoid(0.6 z(VDS) - 0.2 |z(PPL)|) = 0.5 at z = 0; judge overrides lexical tnc
    cols2 = dict(cols, sc=np.full(m, np.nan), tnc_judge=np.zeros(m))
    q2 = quality_score(cols2)
    assert np.allclose(q2, 0.14 + 0.09 + 0.14 + 0.12 + 0.0 + 0.03 + 0.042)
    # VDS derived from the losses when missing; z(VDS) of the largest of 1..5 = 1.349
    lv = np.zeros(5)
    lb = np.arange(1.0, 6.0)
    q3 = quality_score({"loss_video": lv, "loss_blind": lb, "sc": np.zeros(5)})
    zv = (lb - 3) / (2 / 1.349)
    zp = 0.0  # ppl = exp(0) = 1 for all rows
    want = 0.28 / (1 + np.exp(-zv)) + 0.14 * math.exp(-zp) + 0.12
    assert np.allclose(q3, want)


def test_descriptor_terms_branches():
    n = 4
    cols = {"loss_video": np.array([1.0, np.nan, np.nan, np.nan]), "loss_blind": np.array([2.0, np.nan, np.nan, np.nan]),
            "frame_diversity": np.array([0.5, 0.5, np.nan, np.nan]), "vds": np.array([1.0, 1.0, 1.0, np.nan]),
            "quality": np.array([0.1, 9.0, np.nan, 0.2])}
    zs = {"loss_video": {"centre": 0.0, "scale": 1.0}, "loss_blind": {"centre": 0.0, "scale": 1.0},
          "frame_diversity": {"centre": 0.0, "scale": 0.5}, "vds": {"centre": 0.0, "scale": 0.5},
          "quality": {"centre": 0.0, "scale": 0.1}}
    v, q = descriptor_terms(cols, zs, n)
    # row0: -1 + 2 + 1; row1: z(vds)=2 + 0.5*1; row2: z(vds) = 2; row3: 0
    assert v.tolist() == [2.0, 2.5, 2.0, 0.0]
    # q' = z(quality) clipped to [-4, 4]; missing -> 0
    assert q.tolist() == pytest.approx([1.0, 4.0, 0.0, 2.0])
    s = descriptor_z_stats({"vds": np.array([1.0, 2.0, 3.0])}, "paper")
    assert s["vds"]["kind"] == "meanstd" and s["vds"]["scale"] == pytest.approx(1.0) and s["loss_video"]["n"] == 0


def _cands(rows):
    keys = ["uid", "bucket", "question", "answer", "data_source", "n_frames", "native_frames", "media_kind", "video_key"]
    return pa.table({k: [r.get(k) for r in rows] for k in keys},
                    schema=pa.schema([(k, pa.int32() if k in ("n_frames", "native_frames") else pa.string()) for k in keys]))


def test_fields_paper_vs_default():
    rows = [
        {"uid": "ov::a::t0", "bucket": "image_qa", "question": "What is it?", "answer": "A cat.", "data_source": "coco_a_b_c_d",
         "n_frames": 1, "native_frames": 1, "media_kind": "image"},
        {"uid": "vv::b::t0", "bucket": "short_video", "question": "What happens after the jump?\nA. x\nB. y",
         "answer": "B", "data_source": "nextqa(train)", "n_frames": 32, "native_frames": 120, "media_kind": "frames",
         "video_key": "b"},
        {"uid": "vv::c::t0", "bucket": "short_video", "question": "Describe the clip.", "answer": "A dog runs.",
         "data_source": "nextqa (val)", "n_frames": 32, "native_frames": 400, "media_kind": "frames", "video_key": "c"},
    ]
    c = _cands(rows)
    fp = compute_fields(c, "paper")
    assert fp.field_labels("duration").tolist() == ["image", "medium", "medium"]      # after the 32-frame cut
    assert fp.field_labels("temporal").tolist() == ["Static", "Temporal", "Mixed"]
    assert fp.field_labels("question_form").tolist() == ["Open", "Open", "Open"]      # collapsed whitespace
    assert fp.field_labels("source_group").tolist() == ["coco_a_b_c", "nextqa", "nextqa"]
    assert fp.field_labels("q_len").tolist() == ["tiny", "short", "tiny"]
    judge = np.array([np.nan, 0.2, 0.9])
    fd = compute_fields(c, "default", tnc_judge=judge)
    assert fd.field_labels("duration").tolist() == ["image", "long", "very_long"]      # native frames
    assert fd.field_labels("temporal").tolist() == ["Static", "Mixed", "Temporal"]    # the judge decides
    assert fd.field_labels("question_form").tolist() == ["Open", "MCQ", "Open"]
    assert fd.stratum.tolist() == [0, 1, 2] and fd.stratum_fields.shape == (3, len(FIELD_NAMES))
    assert fd.stratum_label(1).startswith("short_video|long|Mixed|MCQ")


def test_candidate_score_terms():
    rows = [{"uid": f"ov::{i}::t0", "bucket": "image_qa", "question": " ".join(["w"] * 14),
             "answer": " ".join(f"a{j}" for j in range(16)), "data_source": "s", "n_frames": 1, "native_frames": 1,
             "media_kind": "image"} for i in range(3)]
    rows.append({"uid": "vv::v::t0", "bucket": "short_video", "question": "q " * 3, "answer": "x x x x",
                 "data_source": "t", "n_frames": 32, "native_frames": 64, "media_kind": "frames", "video_key": "v"})
    c = _cands(rows)
    fl = compute_fields(c, "default")
    nan = np.full(4, np.nan)
    desc = {"loss_video": nan, "loss_blind": nan, "frame_diversity": nan, "vds": nan, "quality": nan}
    has = np.array([True, True, True, False])
    sp = candidate_scores(fl, desc, has, "default")
    # qn = 14, an = 16, all distinct -> naturalness 0; qn + an/2 = 22 -> difficulty 1
    assert sp.naturalness[0] == pytest.approx(0.0) and sp.difficulty[0] == pytest.approx(1.0)
    # video: qn 3, an 4, distinct 1/4 -> -|ln3-ln14| - 1.25|ln4-ln16| - 1.2*(0.55-0.25)
    want = -abs(math.log(3) - math.log(14)) - 1.25 * abs(math.log(4) - math.log(16)) - 1.2 * 0.30
    assert sp.naturalness[3] == pytest.approx(want)
    # alignment: images share five field values (p = 3/4) with each other, the video has p = 1/4 there;
    # the question form (Open) is shared by all four (p = 1)
    assert sp.alignment[0] == pytest.approx(5 * math.log(0.75) / 6)
    assert sp.alignment[3] == pytest.approx(5 * math.log(0.25) / 6)
    assert sp.source_prior[0] == pytest.approx(math.log(5 / 4)) and sp.source_prior[3] == pytest.approx(math.log(5 / 2))
    assert sp.temporal_bonus.tolist() == [-0.5, -0.5, -0.5, 0.2]
    base_img = 1.1 * 0 + 0.85 * 1 + 0.9 * 5 * math.log(0.75) / 6 + 0.15 * math.log(5 / 4)
    assert sp.score[0] == pytest.approx(0.9 * math.tanh(base_img / 3))
    vb = sp.naturalness[3] + 0.85 * sp.difficulty[3] + 0.9 * 5 * math.log(0.25) / 6 + 0.55 * 0.2 + 0.15 * math.log(2.5)
    assert sp.score[3] == pytest.approx(0.35 * math.tanh(vb / 3) - 0.15)     # no descriptor row
    no_ppl = candidate_scores(fl, desc, has, "default", no_ppl=True)
    assert np.all(no_ppl.naturalness == 0)


def test_vds_and_quality_terms_enter_the_score():
    rows = [{"uid": f"vv::{i}::t0", "bucket": "short_video", "question": "What happens next?", "answer": "He jumps.",
             "data_source": "s", "n_frames": 32, "native_frames": 40, "media_kind": "frames", "video_key": str(i)}
            for i in range(5)]
    fl = compute_fields(_cands(rows), "default")
    vds = np.arange(5.0)
    desc = {"loss_video": np.full(5, np.nan), "loss_blind": np.full(5, np.nan), "frame_diversity": np.full(5, np.nan),
            "vds": vds, "quality": np.full(5, 0.5)}
    has = np.ones(5, bool)
    sp = candidate_scores(fl, desc, has, "default")
    assert np.all(np.diff(sp.score) > 0)       # identical text terms, rising VDS
    zv = np.clip((vds - 2) / (2 / 1.349), -4, 4)
    assert np.allclose(sp.score - 0.35 * sp.base_norm, 0.95 * zv / 4)
    nv = candidate_scores(fl, desc, has, "default", no_vds=True)
    assert np.allclose(nv.score, 0.35 * nv.base_norm)
    paper = candidate_scores(fl, desc, has, "paper", stat_desc={"vds": np.array([0.0, 4.0])})
    assert paper.z_stats["vds"]["kind"] == "meanstd" and paper.z_stats["vds"]["centre"] == 2.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab c日é_1 \n")), max_size=60), max_size=25))
def test_distinct_with_threshold_gives_the_same_penalty(texts):
    exact = tokenize(texts, distinct=True)
    fast = tokenize(texts, distinct=True, need_below=0.55)
    an = np.maximum(exact.counts, 1)
    assert np.allclose(np.maximum(0, 0.55 - exact.distinct / an), np.maximum(0, 0.55 - fast.distinct / an))
    assert np.all(fast.distinct <= exact.distinct)


def test_long_tokens_and_chunks(monkeypatch):
    import gdo.text as T

    monkeypatch.setattr(T, "_CHUNK_STRINGS", 3)
    monkeypatch.setattr(T, "_CHUNK_BYTES", 16)
    texts = ["internationalization internationalisation Internationalization", "x" * 40 + " y", "", "a b a"] * 3
    tok = tokenize(texts, hashes=True, distinct=True)
    assert tok.counts.tolist() == [3, 2, 0, 3] * 3
    assert tok.distinct.tolist() == [2, 2, 0, 2] * 3
    assert np.all(np.diff(tok.parent) >= 0)
