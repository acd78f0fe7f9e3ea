"""Budget math (GDO_METHOD.md section 5) against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdo.selection.budget import auto_budget, largest_remainder
from gdo.selection.goalfile import goal_from_dict
from gdo.selection.presets import get_preset

OPEN = dict(min_count=0, max_count=10**9, min_ratio=0.0, max_ratio=1.0, effective_strata_mult=22,
            coverage_mass=0.95, tail_target=16, vds3_target_positive=0, vds3_threshold=0, vds3_max_mult=1.0,
            min_video_ratio=0.0, max_video_ratio=1.0, min_temporal_in_video_ratio=0.0, oversample=1.0,
            video_oversample=1.0, temporal_oversample=1.0, source_floor_topk=0, min_source_group_ratio=0.0,
            source_floor_frac_of_expected=0.0)


def goal(**kw):
    d = dict(OPEN)
    d.update(kw)
    return goal_from_dict(d)


def test_entropy_effective_strata_and_tail():
    # p = (0.5, 0.3, 0.2): H = -(0.5 ln 0.5 + 0.3 ln 0.3 + 0.2 ln 0.2) = 1.0296530140645737
    b = auto_budget([50, 30, 20], goal(), "default")
    assert b["entropy"] == pytest.approx(1.0296530140645737, abs=1e-12)
    assert b["effective_strata"] == pytest.approx(2.8000940728538315, abs=1e-12)
    assert b["n_eff"] == 62                       # ceil(2.80009 * 22) = ceil(61.602)
    assert b["coverage"]["strata_covered"] == 3   # cum 0.5, 0.8, 1.0 >= 0.95
    assert b["coverage"]["p_tail"] == pytest.approx(0.2)
    assert b["n_tail"] == 80                      # ceil(16 / 0.2)
    assert b["n_lower"] == 80 and b["n"] == 80
    # a uniform pool of 4 strata: E = 4 exactly
    b = auto_budget([25, 25, 25, 25], goal(effective_strata_mult=10, tail_target=1), "default")
    assert b["effective_strata"] == pytest.approx(4.0) and b["n_eff"] == 40
    assert b["coverage"]["strata_covered"] == 4 and b["n_tail"] == 4 and b["n"] == 40


def test_coverage_stops_at_mass():
    # sorted p: 0.6, 0.35, 0.05; mass 0.95 is reached exactly at the second stratum
    b = auto_budget([5, 60, 35], goal(tail_target=7), "default")
    assert b["coverage"]["strata_covered"] == 2 and b["coverage"]["tail_count"] == 35
    assert b["n_tail"] == 20                      # ceil(7 / 0.35)
    assert b["n_eff"] == math.ceil(math.exp(-(0.05 * math.log(0.05) + 0.6 * math.log(0.6) + 0.35 * math.log(0.35))) * 22)


def test_bounds_and_float_vs_exact_arithmetic():
    counts = [50_000, 30_000, 20_000]
    g = get_preset("temp_plus")
    assert auto_budget(counts, g, "paper")["n"] == 1799      # floor(100000*0.018) in doubles
    assert auto_budget(counts, g, "default")["n"] == 1800    # exact decimal
    # ceil(100*0.07): 8 in doubles (7.000000000000001), 7 exactly
    b_p = auto_budget([60, 40], goal(min_ratio=0.07, effective_strata_mult=0, tail_target=0), "paper")
    b_d = auto_budget([60, 40], goal(min_ratio=0.07, effective_strata_mult=0, tail_target=0), "default")
    assert (b_p["n_min_ratio"], b_d["n_min_ratio"]) == (8, 7)
    # the upper bounds: max_count, floor(N*max_ratio), N
    b = auto_budget([500, 500], goal(min_count=600, max_count=700, effective_strata_mult=1000), "default")
    assert b["n_lower"] == 2000 and b["n"] == 700
    b = auto_budget([500, 500], goal(min_count=900, max_ratio=0.5), "default")
    assert b["n"] == 500
    b = auto_budget([5, 5], goal(min_count=900), "default")
    assert b["n"] == 10


def test_vds_adjustment_and_cap():
    # n before VDS = 80 (tail); r = 10/100 -> need ceil(30/0.1) = 300
    g = goal(vds3_target_positive=30, vds3_max_mult=1.5)
    b = auto_budget([50, 30, 20], g, "default", vds_positive=10, vds_total=100)
    assert b["n_before_vds"] == 80
    assert b["vds"]["need"] == 300
    assert b["vds"]["cap"] == 100                 # min(N=100, max_count, ceil(80*1.5)=120, floor(100*1.0))
    assert b["n"] == 100 and b["vds"]["applied"] and b["vds"]["changed"]
    g = goal(vds3_target_positive=30, vds3_max_mult=1.1)
    b = auto_budget([50, 30, 20], g, "default", vds_positive=10, vds_total=100)
    assert b["vds"]["cap"] == 88 and b["n"] == 88  # ceil(80*1.1) = 88
    # need below n: the adjustment never lowers n
    b = auto_budget([50, 30, 20], goal(vds3_target_positive=2, vds3_max_mult=2), "default", vds_positive=50,
                    vds_total=100)
    assert b["vds"]["need"] == 4 and b["n"] == 80 and not b["vds"]["changed"]
    # max_ratio caps the adjustment (the paper's usual case)
    b = auto_budget([50, 30, 20], goal(vds3_target_positive=30, vds3_max_mult=3, max_ratio=0.9), "default",
                    vds_positive=10, vds_total=100)
    assert b["vds"]["cap"] == 90 and b["n"] == 90
    # no positives / no values: skipped with a reason
    b = auto_budget([50, 30, 20], g, "default", vds_positive=0, vds_total=100)
    assert not b["vds"]["applied"] and b["n"] == 80 and "threshold" in b["vds"]["reason"]
    b = auto_budget([50, 30, 20], g, "default")
    assert not b["vds"]["applied"] and b["vds"]["reason"]


def test_fixed_budget_and_empty_pool():
    assert auto_budget([3, 4], get_preset("temp"), budget=5)["n"] == 5
    assert auto_budget([3, 4], get_preset("temp"), budget=50)["n"] == 7
    assert auto_budget([], get_preset("temp"))["n"] == 0


def test_largest_remainder_ties_and_modes():
    assert largest_remainder([1, 1, 1], 2).tolist() == [1, 1, 0]          # ties to the first key
    assert largest_remainder([5, 3, 2], 7).tolist() == [4, 2, 1]          # 3.5, 2.1, 1.4
    assert largest_remainder([2, 5, 3], 7).tolist() == [1, 4, 2]          # 1.4, 3.5, 2.1
    for mode in ("default", "paper"):
        r = largest_remainder([7, 11, 13, 0, 19], 23, mode)
        assert r.sum() == 23 and r[3] == 0
    assert largest_remainder([0, 0], 5).tolist() == [0, 0]
    # exact remainders: 3 keys of 1/3 each, total 1 -> the first key
    assert largest_remainder([10**6, 10**6, 10**6], 1).tolist() == [1, 0, 0]
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = rng.integers(0, 1000, size=rng.integers(1, 30))
        t = int(rng.integers(0, 5000))
        r = largest_remainder(c, t)
        if c.sum():
            assert r.sum() == t
            q = t * c / c.sum()
            assert np.all(r >= np.floor(q)) and np.all(r <= np.floor(q) + 1)


def test_largest_remainder_priority_breaks_ties_only():
    from gdo.selection.budget import largest_remainder

    # equal remainders: the unit goes to the highest priority, not the first key
    assert largest_remainder([1, 1, 1], 1, priority=[0.2, 0.9, 0.5]).tolist() == [0, 1, 0]
    assert largest_remainder([1, 1, 1], 2, priority=[0.2, 0.9, 0.5]).tolist() == [0, 1, 1]
    # a larger remainder still wins over a higher priority
    assert largest_remainder([3, 1, 1], 1, priority=[0.0, 1.0, 1.0]).tolist() == [1, 0, 0]
    assert largest_remainder([1, 1, 1], 1).tolist() == [1, 0, 0]
