"""The benchmark pool generator (benchmarks/make_pool.py): shape, statistics, agreement of forms."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from gdo.descriptors import fields
from gdo.schema import DESCRIPTOR_COLUMNS

REPO = Path(__file__).resolve().parents[2]
N = 4000


def _load_make_pool():
    spec = importlib.util.spec_from_file_location("make_pool", REPO / "benchmarks" / "make_pool.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_pool"] = mod  # worker processes pickle its functions by module name
    spec.loader.exec_module(mod)
    return mod


mp = _load_make_pool()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    manifest = mp.generate(N, out, seed=3)
    return out, manifest


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _candidates(out: Path):
    """(uid, question, answer, data_source, row, is_video) in pool order, parsed independently."""
    cands = []
    for fname, prefix in ((mp.IMAGE_FILE, "ov"), (mp.VIDEO_FILE, "vv")):
        for row in _jsonl(out / fname):
            msgs = row["messages"]
            for k in range(len(msgs) // 2):
                u, a = msgs[2 * k], msgs[2 * k + 1]
                assert (u["role"], a["role"]) == ("user", "assistant")
                q = re.sub(r"<image>|<video>", "", u["content"]).strip()
                cands.append((f"{prefix}::{row['id']}::t{k}", q, a["content"], row["data_source"], row, prefix == "vv"))
    return cands


def test_pool_shape_and_statistics(pool):
    out, manifest = pool
    cands = _candidates(out)
    assert len(cands) == N == manifest["n"]
    n_video = sum(c[5] for c in cands)
    assert n_video == N - round(0.6 * N)
    uids = [c[0] for c in cands]
    assert len(set(uids)) == N
    # image rows: one image path; some multi-turn rows
    img_rows = _jsonl(out / mp.IMAGE_FILE)
    assert all(len(r["images"]) == 1 and set(r) == {"id", "images", "messages", "data_source"} for r in img_rows)
    assert 0.1 < sum(len(r["messages"]) > 2 for r in img_rows) / len(img_rows) < 0.5
    # video rows: 32-180 frames shared by all rows of a video, 1-8 QA per video over 1-3 rows
    vid_rows = _jsonl(out / mp.VIDEO_FILE)
    qa_per_video, frames_of, rows_of = Counter(), {}, Counter()
    for r in vid_rows:
        assert set(r) == {"id", "video_id", "images", "messages", "data_source"}
        assert 32 <= len(r["images"]) <= 180
        assert frames_of.setdefault(r["video_id"], r["images"]) == r["images"]
        qa_per_video[r["video_id"]] += len(r["messages"]) // 2
        rows_of[r["video_id"]] += 1
    per_video = np.array(list(qa_per_video.values()))
    assert per_video.min() >= 1 and per_video.max() == 8 and 3.0 < per_video.mean() < 6.0
    assert max(rows_of.values()) >= 2 and min(rows_of.values()) == 1
    n_frames = np.array([len(f) for f in frames_of.values()])
    assert (n_frames > 64).mean() > 0.2 and (n_frames > 160).any()  # medium, long and very_long durations
    # ~30 data sources with a Zipf-like law; grouping is exercised ("(" and many "_" parts)
    src = Counter(c[3] for c in cands)
    assert 25 <= len(src) <= 30
    ranked = sorted(src.values(), reverse=True)
    assert ranked[0] > 5 * ranked[-1]
    assert any("(" in s for s in src) and any(s.count("_") >= 4 for s in src)
    groups = set(fields.source_group(list(src)))
    assert len(groups) < len(src)  # e.g. ai2d(...) and ai2d(gpt4v) share a group
    # MCQ (with and without the word "choices"), temporal wording, duplicate (q, a) texts
    qs = [c[1] for c in cands]
    forms_default = fields.question_form(qs)
    forms_paper = fields.question_form(qs, mode="paper")
    assert 0.05 < np.mean(forms_default == "MCQ") < 0.4
    assert np.sum(forms_paper == "MCQ") < np.sum(forms_default == "MCQ")
    tnc = fields.lexical_tnc(qs)
    vid = np.array([c[5] for c in cands])
    assert 0.15 < tnc[vid].mean() < 0.5 and tnc[~vid].mean() < 0.05
    dup = Counter((c[1], c[2]) for c in cands)
    assert 0.01 < sum(v for v in dup.values() if v > 1) / N < 0.06
    # every length bucket occurs
    assert set(fields.q_len_bucket(qs)) == set(fields.Q_LEN_NAMES)
    assert set(fields.a_len_bucket([c[2] for c in cands])) == set(fields.A_LEN_NAMES)


def test_descriptors_parquet_matches_pool(pool):
    out, _ = pool
    cands = _candidates(out)
    t = pq.read_table(out / mp.PARQUET_FILE)
    assert t.column_names == DESCRIPTOR_COLUMNS
    d = t.to_pydict()
    assert d["uid"] == [c[0] for c in cands]
    qs = [c[1] for c in cands]
    # the generator's tracked word counts equal the project's \w+ counts
    assert d["q_len_bucket"] == list(fields.q_len_bucket(qs))
    assert d["a_len_bucket"] == list(fields.a_len_bucket([c[2] for c in cands]))
    assert d["question_form"] == list(fields.question_form(qs))
    assert d["source_group"] == list(fields.source_group([c[3] for c in cands]))
    vid = np.array([c[5] for c in cands])
    native = np.array(d["native_frames"])
    assert (native[vid] == [len(c[4]["images"]) for c in cands if c[5]]).all()
    assert (np.array(d["n_frames"])[vid] == np.minimum(native[vid], 32)).all()
    amm = np.array(d["amm"])
    assert (amm[~vid] == 0).all() and (amm[vid] > 0).all()
    # amm is a property of the video: identical for all its candidates
    by_video = {}
    for c, a in zip(cands, amm):
        if c[5]:
            assert by_video.setdefault(c[4]["video_id"], a) == a
    lv = np.array(d["loss_video"], dtype=float)
    lb = np.array(d["loss_blind"], dtype=float)
    err = np.array([e is not None for e in d["model_error"]])
    assert np.isnan(lv[err]).all() and not np.isnan(lv[~err]).any()
    np.testing.assert_allclose(np.array(d["vds"], dtype=float)[~err], (lb - lv)[~err], atol=1e-12)
    np.testing.assert_allclose(np.array(d["ppl"], dtype=float)[~err], np.exp(lv[~err]), rtol=1e-12)
    # correlations: video VDS above image VDS; temporal questions carry more VDS
    vds = np.array(d["vds"], dtype=float)
    assert np.nanmean(vds[vid]) > np.nanmean(vds[~vid])
    rep = np.array(d["cluster_rep"])
    assert ((rep > 0) & (rep <= 1)).all() and np.allclose(rep + np.array(d["cluster_hard"]), 1.0)


def test_three_forms_agree(pool):
    out, manifest = pool
    t = pq.read_table(out / mp.PARQUET_FILE).to_pydict()
    ours = {u: i for i, u in enumerate(t["uid"])}
    uids = t["uid"]
    raw_files = sorted((out / mp.SHARD_DIR).glob("sixd_metrics_rank*.jsonl"))
    assert [f.name for f in raw_files] == [f"sixd_metrics_rank{r:04d}.jsonl" for r in range(8)]
    raw = {}
    for r, f in enumerate(raw_files):
        recs = _jsonl(f)
        assert [x["qa_uid"] for x in recs] == uids[r::8]  # the release's round-robin split
        for x in recs:
            raw[x["qa_uid"]] = x
    merged_recs = _jsonl(out / mp.MERGED_FILE)
    assert [x["qa_uid"] for x in merged_recs] == [u for r in range(8) for u in uids[r::8]]
    merged = {x["qa_uid"]: x for x in merged_recs}
    assert len(raw) == len(merged) == N

    def same(a, b):
        return (a is None and b is None) or (a is not None and b is not None and a == b)

    for u, i in ours.items():
        m = raw[u]["data_quality_metrics"]
        g = merged[u]
        ok = t["model_error"][i] is None
        for ours_key, raw_key in (("loss_video", "loss_video"), ("loss_blind", "loss_blind"), ("vds", "vds"),
                                  ("ppl", "ppl"), ("amm", "amm"), ("frame_diversity", "frame_diversity"),
                                  ("tnc", "tnc_score")):
            assert same(t[ours_key][i], m[raw_key]), (u, ours_key)
            if ok or ours_key not in ("vds", "ppl"):
                assert same(t[ours_key][i], g[raw_key]), (u, ours_key)
        sc = t["sc"][i]
        assert m["self_consistency"] == (-1.0 if sc is None else sc)
        if sc is not None:
            assert g["self_consistency"] == sc
        assert m["error"] == (t["model_error"][i] or "")
        assert g["cluster_score"] == t["cluster_rep"][i]
        assert g["data_quality_metrics"]["cluster_id"] == t["cluster_id"][i]
        assert len(m["text_feat"]) == 16 and len(m["vis_feat"]) == 6
        assert m["n_frames"] == t["n_frames"][i]
        assert 0.0 <= g["quality_score"] <= 1.0
    # the merged quality follows the release formula: recompute one row
    st = manifest["merged_stats"]
    g = merged[uids[-1]]

    def z(v, k):
        return (v - st[k]["center"]) / max(st[k]["scale"], 1e-6)

    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    q = (0.28 * sig(z(g["vds"], "vds") + z(g["frame_diversity"], "frame_diversity")) + 0.18 * g["self_consistency"]
         + 0.14 * math.exp(-abs(z(g["ppl"], "ppl"))) + 0.12 * math.exp(-abs(z(g["amm"], "amm")))
         + 0.12 * g["tnc_score"] + 0.10 * g["cluster_score"] + 0.06 * g["cluster_hardness"])
    assert g["quality_score"] == pytest.approx(q, rel=1e-9)


def test_deterministic_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setattr(mp, "CHUNK", 100)  # several chunks, generated by one or two processes
    a = mp.generate(300, tmp_path / "a", seed=7, forms=["parquet", "raw"], workers=1)
    b = mp.generate(300, tmp_path / "b", seed=7, forms=["parquet", "raw"], workers=2)
    c = mp.generate(300, tmp_path / "c", seed=8, forms=["parquet"])
    assert a["counts"] == b["counts"]
    for f in (mp.IMAGE_FILE, mp.VIDEO_FILE, mp.PARQUET_FILE, "shards/sixd_metrics_rank0003.jsonl"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / mp.IMAGE_FILE).read_bytes() != (tmp_path / "c" / mp.IMAGE_FILE).read_bytes()
    assert not (tmp_path / "c" / mp.MERGED_FILE).exists() and not (tmp_path / "c" / mp.SHARD_DIR).exists()
    with pytest.raises(ValueError, match="unknown descriptor form"):
        mp.generate(300, tmp_path / "d", forms=["csv"])


def test_project_ingest_reads_the_pool(pool):
    ingest_mod = pytest.importorskip("gdo.pool.ingest")
    out, _ = pool
    res = ingest_mod.ingest([out / mp.IMAGE_FILE, out / mp.VIDEO_FILE], probe_media=False)
    cands = _candidates(out)
    assert res.candidates.column("uid").to_pylist() == [c[0] for c in cands]
    assert res.rejects == []
    assert res.candidates.column("question").to_pylist() == [c[1] for c in cands]
    buckets = Counter(res.candidates.column("bucket").to_pylist())
    assert buckets["short_video"] == N - round(0.6 * N)
