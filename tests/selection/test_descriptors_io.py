"""Descriptor inputs: our Parquet, the release's merged JSONL and raw shard folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gdo.schema import DESCRIPTOR_COLUMNS
from gdo.descriptors.cluster import default_k
from gdo.selection.descriptors_io import DescriptorError, compute_clusters, detect_form, read_descriptors
from _synthetic_pool import make_candidates, make_descriptors


def _write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


@pytest.fixture(scope="module")
def pool():
    c = make_candidates(400, seed=3)
    return c, make_descriptors(c, seed=3)


def test_parquet_form_computes_quality(tmp_path, pool):
    c, d = pool
    full = {k: d[k] if k in d.column_names else pa.nulls(d.num_rows, pa.float64() if k not in (
        "question_form", "q_len_bucket", "a_len_bucket", "duration_bucket", "temporal_category", "source_group",
        "model_error") else pa.string()) for k in DESCRIPTOR_COLUMNS}
    for k in ("cluster_id", "dup_group", "native_frames", "n_frames"):
        full[k] = pa.nulls(d.num_rows, pa.int64())
    p = tmp_path / "descriptors.parquet"
    pq.write_table(pa.table(full), p)
    assert detect_form(p) == "parquet" and detect_form(tmp_path) == "parquet"
    D = read_descriptors(p, candidates=c)
    assert D.form == "parquet" and D.computed == ["quality"] and D.table.num_rows == d.num_rows
    q = D.table["quality_score"].to_numpy()
    assert np.all(np.isfinite(q)) and 0.0 < q.min() and q.max() < 1.0
    assert D.table["uid"].to_pylist() == d["uid"].to_pylist()


def test_merged_jsonl_uses_given_quality(tmp_path, pool):
    c, _ = pool
    d = make_descriptors(c, seed=3, release_names=True)
    rows = d.to_pylist()
    rows[0]["extra_field"] = "ignored"
    p = tmp_path / "merged.jsonl"
    _write_jsonl(p, rows)
    assert detect_form(p) == "merged_jsonl"
    D = read_descriptors(p, candidates=c)
    assert D.form == "merged_jsonl" and D.computed == []
    assert D.table["uid"].to_pylist() == d["qa_uid"].to_pylist()
    assert np.allclose(D.table["quality_score"].to_numpy(), d["quality_score"].to_numpy())
    assert np.allclose(D.table["loss_blind"].to_numpy(), d["loss_blind"].to_numpy())


def test_merged_jsonl_nan_literals_and_errors(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"qa_uid": "ov::a::t0", "vds": NaN, "quality_score": 0.5}\n{"qa_uid": "ov::b::t0", "vds": 1, "quality_score": 0.4}\n')
    D = read_descriptors(p)
    assert math.isnan(D.table["vds"][0].as_py()) and D.table["vds"][1].as_py() == 1.0
    p.write_text('{"qa_uid": "ov::a::t0", "vds": "high", "quality_score": 0.5}\n')
    with pytest.raises(DescriptorError, match=r"m.jsonl:1: field 'vds' must be a number"):
        read_descriptors(p)
    p.write_text('{"qa_uid": "ov::a::t0", "vds": 1}\n{"qa_uid": "ov::b::t0", "vds": \n')
    with pytest.raises(DescriptorError, match=r"m.jsonl:2: malformed JSON"):
        read_descriptors(p)
    p.write_text('{"name": "x", "vds": 1}\n')
    with pytest.raises(DescriptorError, match="no uid column"):
        read_descriptors(p)
    with pytest.raises(DescriptorError, match="not found"):
        read_descriptors(tmp_path / "missing.jsonl")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DescriptorError, match="no sixd_metrics_rank"):
        read_descriptors(tmp_path / "empty_dir")


def test_raw_shards_compute_cluster_and_quality(tmp_path, pool):
    c, _ = pool
    d = make_descriptors(c, seed=3, release_names=True, raw=True)
    rows = d.to_pylist()
    shard_dir = tmp_path / "shards"
    shard_dir.mkdir()
    half = len(rows) // 2
    _write_jsonl(shard_dir / "sixd_metrics_rank1.jsonl", rows[half:])
    _write_jsonl(shard_dir / "sixd_metrics_rank0.jsonl", rows[:half])
    assert detect_form(shard_dir) == "raw_shards"
    D = read_descriptors(shard_dir, candidates=c)
    assert D.form == "raw_shards" and D.computed == ["cluster", "quality"]
    assert D.info["shards"] == ["sixd_metrics_rank0.jsonl", "sixd_metrics_rank1.jsonl"]
    assert D.table["uid"].to_pylist() == d["qa_uid"].to_pylist()      # rank order
    rep = D.table["cluster_rep"].to_numpy()
    hard = D.table["cluster_hard"].to_numpy()
    assert np.all((rep > 0) & (rep <= 1)) and np.allclose(rep + hard, 1.0)
    assert D.info["cluster"]["k"] == default_k(len(rows))   # default mode's k rule (descriptors/cluster.py)
    D2 = read_descriptors(shard_dir, candidates=c)
    assert np.array_equal(D2.table["cluster_rep"].to_numpy(), rep)     # deterministic
    Dp = read_descriptors(shard_dir, candidates=c, mode="paper")
    assert not Dp.info["cluster"]["scaled"]
    # the release's k = min(4096, N): on a pool of at most 4096 rows every row is its own centre
    assert len(rows) <= 4096 and Dp.info["cluster"]["k"] == len(rows)
    assert np.all(Dp.table["cluster_rep"].to_numpy() == 1.0)


def test_compute_clusters_identical_rows_have_rep_one():
    t = pa.table({"uid": [f"u{i}" for i in range(40)], **{k: pa.array(np.ones(40)) for k in
                  ("tnc", "tnc_judge", "amm", "frame_diversity", "ppl", "vds", "loss_video", "loss_blind")}})
    rep, hard, info = compute_clusters(t, None, k=3)
    # default mode caps k at the number of distinct feature rows: one cluster, every row on its centre
    assert np.allclose(rep, 1.0) and np.allclose(hard, 0.0) and info["k"] == 1


def test_table_input_with_release_names(pool):
    c, _ = pool
    d = make_descriptors(c, seed=3, release_names=True)
    D = read_descriptors(d, candidates=c)
    assert D.form == "table" and D.table.column_names[0] == "uid"
    assert D.info["duplicate_uids"] == 0


def test_candidates_file_given_as_descriptors_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gdo.selection.descriptors_io import DescriptorError, read_descriptors

    p = tmp_path / "candidates.parquet"
    pq.write_table(pa.table({"uid": ["a", "b"], "question": ["q", "r"], "n_frames": [8, None],
                             "native_frames": [10, None]}), p)
    with pytest.raises(DescriptorError, match="no descriptor column.*candidates.parquet"):
        read_descriptors(p)
