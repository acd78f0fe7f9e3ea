"""Cluster descriptor (GDO_METHOD.md 3.6): scaling, k rule, small pools, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from gdo.descriptors.cluster import build_features, cluster, default_k


def test_default_k_rule():
    assert default_k(0) == 0
    assert default_k(1) == 1
    assert default_k(2) == 2
    assert default_k(3) == 2
    assert default_k(200) == 10
    assert default_k(10**9) == 4096


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
    _, rep_paper, _, info_p = cluster(feats, seed=42, mode="paper")
    d = -np.log(rep_paper)  # paper: exp(-raw distance); default: exp(-distance / median distance)
    assert info_p["scale"] == 1.0
    assert np.allclose(rep, np.exp(-d / info["scale"]))
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
