"""descriptors.parquet is byte-identical to the output recorded from the pre-registry code
(tests/data/profile_golden, written by tests/engine/record_golden.py with PYTHONPATH=<old>/src)
on the real clips: default and paper mode, hashing text encoder, and the tiny model."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _profile_pools import CASES

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "profile_golden"


@pytest.mark.parametrize("name", sorted(CASES))
def test_local_engine_matches_golden(name, real_data, tmp_path, request):
    from gdo.descriptors.profile import profile

    builder, kw = CASES[name]
    kw = dict(kw)
    if name.startswith("model"):
        kw["model"] = request.getfixturevalue("tiny_model")
    profile(builder(real_data), tmp_path / "o", workers=2 if name == "real_default" else 1, **kw)
    got = (tmp_path / "o" / "descriptors.parquet").read_bytes()
    want = (GOLDEN / f"{name}.parquet").read_bytes()
    meta = pq.read_metadata(GOLDEN / f"{name}.parquet")
    if pa.__version__ not in (meta.created_by or ""):
        # another pyarrow writes other bytes: compare the tables instead
        assert pq.read_table(tmp_path / "o" / "descriptors.parquet").equals(pq.read_table(GOLDEN / f"{name}.parquet"))
    else:
        assert got == want


def test_embeddings_store(real_data, tmp_path):
    """embeddings.parquet (interface for goal sets): uid, media_key, text_emb (unit norm, same as
    clustering), visual_emb (null without media), model_emb (null), + embeddings.meta.json."""
    import json

    import numpy as np

    from gdo.descriptors.profile import profile

    builder, kw = CASES["real_hashing_nocluster"]
    profile(builder(real_data), tmp_path / "o", **kw)
    e = pq.read_table(tmp_path / "o" / "embeddings.parquet")
    assert e.column_names == ["uid", "media_key", "text_emb", "visual_emb", "model_emb"]
    assert e.schema.field("text_emb").type == pa.list_(pa.float32(), 384)
    assert e.schema.field("visual_emb").type == pa.list_(pa.float32(), 160)
    t = np.stack(e.column("text_emb").to_pylist())
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    vis = e.column("visual_emb").to_pylist()
    assert vis[-1] is None and all(v is not None for v in vis[:-1])  # last candidate is text-only
    assert e.column("model_emb").null_count == e.num_rows
    media = pq.read_table(tmp_path / "o" / "media.parquet")
    row = media.column("media_key").to_pylist().index(e.column("media_key")[0].as_py())
    assert np.array_equal(np.asarray(vis[0], np.float32), np.asarray(media.column("visual")[row].as_py(), np.float32))
    meta = json.loads((tmp_path / "o" / "embeddings.meta.json").read_text())
    assert meta["text_dim"] == 384 and meta["text_encoder"] == "hashing"  # gdo.descriptors.embedding_store
    assert meta["visual_dim"] == 160 and meta["model_dim"] is None and meta["n"] == e.num_rows
