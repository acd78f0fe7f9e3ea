"""Cluster descriptor (GDO_METHOD.md 3.6): scaling, k rule, small pools, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from gdo.descriptors.cluster import build_features, cluster, cluster_descriptors, cluster_k, default_k


def test_k_rule_of_each_mode_by_hand():
    """Hand-computed values of the documented rules (not a release comparison: that is
    tests/selection/test_release_equivalence.py::test_raw_shards_in_paper_mode_are_the_release_merge)."""
    assert [default_k(n) for n in (0, 1, 2, 3, 200, 100_000, 10**9)] == [0, 1, 2, 2, 10, 224, 4096]
    assert [cluster_k(n, "default") for n in (0, 200, 100_000)] == [0, 10, 224]
    # paper: the release's min(max(2, 4096), N)
    assert [cluster_k(n, "paper") for n in (0, 1, 2, 3000, 4096, 6000, 10**9)] == [0, 1, 2, 3000, 4096, 4096, 4096]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_tiny_pools(n):
    x = np.arange(n * 3, dtype=float).reshape(n, 3) ** 1.5
    cid, rep, hard, info = cluster(build_features([x]), seed=42)
    assert cid.shape == (n,) and rep.shape == (n,)
    assert np.all((rep > 0) & (rep <= 1)) and np.allclose(rep + hard, 1.0)
    assert info["k"] <= n
    if n == 1:
        assert rep[0] == pytest.approx(1.0)


def test_identical_rows_single_cluster():
    cid, rep, hard, info = cluster(build_features([np.ones((6, 4))]), k=3)
    assert info["k"] == 1 and set(cid) == {0} and np.allclose(rep, 1.0)


def test_blocks_scaled_so_none_dominates():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 30)
    centres = rng.normal(size=(3, 64)) * 3
    text = centres[groups] + rng.normal(size=(90, 64))
    ppl = rng.lognormal(mean=8, sigma=3, size=(90, 1))  # huge raw scale, unrelated to groups
    feats = build_features([text, ppl])
    # each block has expected squared norm 1 per row
    assert feats.dtype == np.float32
    assert np.mean((feats[:, :64] ** 2).sum(1)) == pytest.approx(1.0, rel=1e-4)
    assert np.mean(feats[:, 64] ** 2) == pytest.approx(1.0, rel=1e-4)
    cid, rep, hard, info = cluster(feats, k=3, seed=42)
    # the text structure is recovered despite the raw-scale ppl column
    for gidx in range(3):
        assert len(set(cid[groups == gidx])) == 1
    assert len(set(cid)) == 3


def test_rep_discriminates_default_vs_paper():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(200, 32)), rng.normal(size=(5, 32)) * 6])  # 5 outliers
    feats = build_features([x])
    _, rep, _, info = cluster(feats, seed=42)
    assert info["scale"] > 0
    assert np.median(rep) == pytest.approx(np.exp(-1), abs=0.02)  # median distance -> exp(-1)
    assert rep[200:].mean() < rep[:200].mean()
    assert rep.std() > 0.05
    # paper: the release's k = min(4096, N): each of these 205 rows is its own centre
    _, rep_paper, _, info_p = cluster(build_features([x], mode="paper"), seed=42, mode="paper")
    assert info_p["k"] == 205 and info_p["scale"] == 1.0 and np.all(rep_paper == 1.0)
    # with fewer clusters, paper's rep is exp(-raw distance): far rows (outliers) get ~0
    cid_p, rep_p, _, _ = cluster(build_features([x], mode="paper"), k=10, seed=42, mode="paper")
    assert rep_p[200:].max() < 1e-3 < np.median(rep_p[:200])
    with pytest.raises(ValueError):
        cluster(feats, mode="nope")


def test_deterministic_and_seeded():
    rng = np.random.default_rng(5)
    feats = build_features([rng.normal(size=(300, 16))])
    a = cluster(feats, k=7, seed=42)
    b = cluster(feats, k=7, seed=42)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_nan_filled_with_median_and_bad_blocks():
    x = np.array([[1.0], [np.nan], [3.0]])
    f = build_features([x])
    assert np.isfinite(f).all() and f[1, 0] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        build_features([np.zeros((3, 2)), np.zeros((4, 2))])
    with pytest.raises(ValueError):
        build_features([None])


@pytest.mark.parametrize("mode", ["default", "paper"])
def test_same_clusters_from_parquet_and_from_release_shards(tmp_path, mode):
    """Issue 11: one clustering code path. The same pool's descriptors, as a descriptors.parquet whose
    cluster columns ``gdo profile``'s entry point computed (cluster_descriptors on the text and
    visual features) and as the release's raw shards (read by the selection-side adapter), give
    the same cluster_rep in both modes."""
    import importlib.util
    import sys
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from gdo.selection.descriptors_io import _list_matrix, read_descriptors

    repo = Path(__file__).resolve().parents[2]
    mp = sys.modules.get("make_pool")  # one module object (its functions are pickled by name)
    if mp is None:
        spec = importlib.util.spec_from_file_location("make_pool", repo / "benchmarks" / "make_pool.py")
        mp = importlib.util.module_from_spec(spec)
        sys.modules["make_pool"] = mp
        spec.loader.exec_module(mp)
    mp.generate(600, tmp_path, seed=1, forms=("raw",), workers=1)
    shards = tmp_path / mp.SHARD_DIR
    from_shards = read_descriptors(shards, mode=mode)
    t = from_shards.table

    def f(c):
        return np.asarray(t[c].to_numpy(zero_copy_only=False), dtype=np.float64)

    # the profile side: its entry point on the same features (profile passes its embeddings)
    cid, rep, hard, info = cluster_descriptors(_list_matrix(t["text_feat"]), _list_matrix(t["vis_feat"]),
                                               f("tnc"), f("amm"), f("frame_diversity"), f("ppl"), f("vds"),
                                               seed=42, mode=mode)
    cols = {"uid": t["uid"], "cluster_id": pa.array(cid), "cluster_rep": pa.array(rep), "cluster_hard": pa.array(hard)}
    for c in ("tnc", "amm", "frame_diversity", "ppl", "vds", "loss_video", "loss_blind", "sc"):
        cols[c] = t[c]
    pq.write_table(pa.table(cols), tmp_path / "descriptors.parquet")
    from_parquet = read_descriptors(tmp_path / "descriptors.parquet", mode=mode)
    a = from_shards.table["cluster_rep"].to_numpy()
    b = from_parquet.table["cluster_rep"].to_numpy()
    assert from_shards.info["cluster"]["k"] == info["k"] == cluster_k(600, mode)
    assert np.array_equal(a, b)
    assert 0 < a.min() <= a.max() <= 1.0


def test_distinct_rows_counts_like_a_byte_comparison():
    from gdo.descriptors.cluster import _distinct_rows

    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 40)).astype(np.float32)
    x[250:] = x[:250]  # every row twice
    x[0, 0] = np.nextafter(x[0, 0], np.float32(np.inf))  # one row differs in the last bit only
    z = np.zeros((3, 40), np.float32)
    z[1, 5] = -0.0
    z[2, 5] = np.float32(-0.0)
    got = _distinct_rows(np.concatenate([x, z]))
    want = len({r.tobytes() for r in np.concatenate([x, z])})
    assert got == want == 251 + 2


def test_feature_rows_match_build_features_bit_for_bit():
    """cluster_descriptors never builds the feature matrix (driver memory, issue 17): its row
    source (batched column statistics, a gathered visual block) gives exactly build_features'
    rows and the same clusters, NaN-holding and 1-column blocks included."""
    from gdo.descriptors.cluster import FeatureRows, Gathered, _column_stats, scalar_block

    rng = np.random.default_rng(7)
    n = 40_000
    text = rng.normal(size=(n, 24)).astype(np.float32) * rng.uniform(0.1, 5, 24).astype(np.float32)
    items = rng.normal(size=(900, 16)).astype(np.float32)
    ci = rng.integers(-1, 900, n)
    vis = np.zeros((n, 16), np.float32)
    vis[ci >= 0] = items[ci[ci >= 0]]
    amm = rng.random(n)
    amm[::11] = np.nan
    mu, sd = _column_stats(lambda sel: text[sel], n, 24)
    assert np.array_equal(mu, text.mean(axis=0, dtype=np.float64))
    assert np.array_equal(sd, text.std(axis=0, dtype=np.float64))
    for mode in ("default", "paper"):
        blocks = [text, vis, scalar_block(rng.random(n), amm, rng.random(n), mode=mode), rng.random(n)]
        want = build_features(blocks, mode=mode)
        src = FeatureRows([text, Gathered(items, ci), *blocks[2:]], mode=mode)
        assert np.array_equal(src.rows(0, n), want)
        idx = np.sort(rng.choice(n, 500, replace=False))
        assert np.array_equal(src.take(idx), want[idx])
        assert np.array_equal(src.mean(), want.mean(axis=0, keepdims=True, dtype=np.float64))
    tnc = rng.random(n)
    a = cluster_descriptors(text, vis, tnc, amm, amm, seed=1)
    b = cluster_descriptors(text, Gathered(items, ci), tnc, amm, amm, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]
    assert np.array_equal(cluster(build_features([text, vis, scalar_block(tnc, amm, amm)]), seed=1)[1], a[1])
