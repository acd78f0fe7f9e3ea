"""embeddings.parquet written from row chunks is byte-identical to one array per column (issue 17)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gdo.descriptors.embedding_store as E


def _whole(path, uids, text, row_group):
    """The reference: every column one contiguous array, as before the chunked write."""
    d = text.shape[1]
    cols = {"uid": pa.array(uids, pa.string()),
            "text_emb": pa.FixedSizeListArray.from_arrays(pa.array(text.reshape(-1), pa.float32()), d),
            "visual_emb": pa.nulls(len(uids), pa.list_(pa.float32(), 1)),
            "model_emb": pa.nulls(len(uids), pa.list_(pa.float32(), 1))}
    pq.write_table(pa.table(cols), path, compression="zstd", row_group_size=row_group)


@pytest.mark.parametrize("values", ["random", "few", "constant"])
@pytest.mark.parametrize("d", [160, 256, 384, 1024, 1500])
def test_chunked_write_same_bytes(tmp_path, monkeypatch, values, d):
    rng = np.random.default_rng(d)
    n = max(3000, 9_000_000 // d)  # 36 MB: pages cut by size in every row group, whatever the values
    text = {"random": lambda: rng.standard_normal((n, d)),
            "few": lambda: rng.integers(0, 5, (n, d)) / 4.0,
            "constant": lambda: np.full((n, d), 0.5)}[values]().astype(np.float32)
    uids = [f"u{i:05d}" for i in range(n)]
    monkeypatch.setattr(E, "_CHUNK_ROWS", 1000)
    monkeypatch.setattr(E, "_ROW_GROUP", -(-n // 3) + 1)  # 3 row groups: the chunks restart in each
    col = E._fixed(text, None, n)
    assert isinstance(col, pa.ChunkedArray) and col.num_chunks > 3
    E.write_embeddings(tmp_path / "a", uids, text)
    _whole(tmp_path / "b.parquet", uids, text, E._ROW_GROUP)
    assert pq.ParquetFile(tmp_path / "a" / E.EMBEDDINGS_FILE).metadata.num_row_groups == 3
    assert (tmp_path / "a" / E.EMBEDDINGS_FILE).read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_chunked_write_same_bytes_at_the_page_row_limit(tmp_path, monkeypatch):
    """Constant rows of a small size (the handcrafted visual feature's 160): pages end at the
    writer's 20,000-row page limit, not its byte limit."""
    n, d = 45000, 160
    text = np.full((n, d), 0.25, np.float32)
    uids = [f"u{i:05d}" for i in range(n)]
    monkeypatch.setattr(E, "_CHUNK_ROWS", 5000)
    E.write_embeddings(tmp_path / "a", uids, text)
    _whole(tmp_path / "b.parquet", uids, text, E._ROW_GROUP)
    assert (tmp_path / "a" / E.EMBEDDINGS_FILE).read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_write_chunks_cover_rows_in_row_groups(monkeypatch):
    monkeypatch.setattr(E, "_ROW_GROUP", 1000)
    monkeypatch.setattr(E, "_CHUNK_ROWS", 100)
    r = E._write_chunks(2100, 384)  # k = 3 rows per batch: steps of 99
    assert r[0] == (0, 99) and (990, 1000) in r and (1000, 1099) in r and r[-1][1] == 2100
    assert all(a[1] == b[0] for a, b in zip(r, r[1:]))
    assert all((s % 1000) % 3 == 0 for s, _ in r)


@pytest.mark.parametrize("d,null_share", [(160, 0.3), (8, 0.3), (8, 0.0)])
def test_chunked_write_with_null_rows_keeps_values_and_nulls(tmp_path, monkeypatch, d, null_share):
    """A visual column with null rows (candidates without media), or of a small size, is written
    in chunks too (its bytes are then not always those of one array); read back, every value and
    every null is the input's, and two writes give the same bytes."""
    rng = np.random.default_rng(7)
    n = 12000
    text = rng.standard_normal((n, 384)).astype(np.float32)
    vis = rng.standard_normal((n, d)).astype(np.float32)
    mask = rng.random(n) >= null_share
    vis[~mask] = 0.0
    uids = [f"u{i:05d}" for i in range(n)]
    monkeypatch.setattr(E, "_CHUNK_ROWS", 1000)
    col = E._fixed(vis, mask, n)
    assert isinstance(col, pa.ChunkedArray) and col.num_chunks > 10
    for out in ("a", "b"):
        E.write_embeddings(tmp_path / out, uids, text, visual_emb=vis, visual_mask=mask)
    t = pq.read_table(tmp_path / "a" / E.EMBEDDINGS_FILE)
    got = t.column("visual_emb")
    assert np.array_equal(np.asarray(got.is_valid()), mask)
    back = np.asarray(got.filter(got.is_valid()).combine_chunks().flatten(), np.float32).reshape(-1, d)
    assert np.array_equal(back, vis[mask])
    assert (tmp_path / "a" / E.EMBEDDINGS_FILE).read_bytes() == (tmp_path / "b" / E.EMBEDDINGS_FILE).read_bytes()
