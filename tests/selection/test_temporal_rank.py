"""``temporal_rank = "vds_quantile"``: the temporal minimum ranked by VDS quantile within each stratum
(issue 16: a reference model that prefers a single-frame shortcut gives multi-frame questions a low
VDS in absolute terms, clean or not; a pool-wide ranking then starves those strata)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gdo.selection.goal import GoalError
from gdo.selection.goalfile import goal_from_dict
from gdo.selection.select import SelectionError, select, vds_quantile_order


def test_quantile_order_interleaves_strata_by_rank_not_by_value():
    # stratum 0: VDS 3.0, 2.5, 2.0, 1.5 (high in absolute terms); stratum 1: 0.4, 0.3, 0.2, -0.5
    vds = np.array([3.0, 2.5, 2.0, 1.5, 0.4, 0.3, 0.2, -0.5])
    strat = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    grank = np.arange(8)  # score order = index order
    got = vds_quantile_order(np.arange(8), vds, strat, grank)
    # quantiles 0, .25, .5, .75 in each stratum; ties (same quantile) by score order
    assert got.tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    # a pool-wide ranking by value would take all of stratum 0 first
    assert np.argsort(-vds, kind="stable").tolist()[:4] == [0, 1, 2, 3]


def test_quantile_order_within_stratum_ranks_by_vds_and_puts_missing_last():
    vds = np.array([0.1, np.nan, 1.2, -0.8, 0.5, np.nan])
    strat = np.zeros(6, dtype=np.int64)
    grank = np.array([5, 0, 4, 3, 2, 1])  # the score order prefers index 1, then 5, 4, 3, 2, 0
    got = vds_quantile_order(np.array([0, 1, 2, 3, 4, 5]), vds, strat, grank)
    assert got.tolist() == [2, 4, 0, 3, 1, 5]
    # unequal strata: 2 candidates (quantiles 0, .5) and 4 (0, .25, .5, .75)
    vds2 = np.array([1.0, 0.0, 9.0, 8.0, 7.0, 6.0])
    strat2 = np.array([1, 1, 0, 0, 0, 0])
    got2 = vds_quantile_order(np.arange(6), vds2, strat2, np.arange(6))
    assert got2.tolist() == [0, 2, 3, 1, 4, 5]
    assert vds_quantile_order(np.zeros(0, np.int64), vds2, strat2, np.arange(6)).tolist() == []


def _pool():
    """40 video candidates: 20 temporal in source A (VDS 2.0..3.9), 20 temporal in source B
    (VDS -1.0..0.9), plus 40 static images; descriptors without judge (lexical TNC)."""
    rows = []
    for src, base in (("srcA", 2.0), ("srcB", -1.0)):
        for i in range(20):
            rows.append((f"vv::{src}{i}::t0", "short_video", f"What happens after the door opens {src} {i}?",
                         f"it closes {i}", src, f"v{src}{i}", base + 0.1 * i))
    for i in range(40):
        rows.append((f"ov::img{i}::t0", "image_qa", f"What colour is object {i}?", f"red {i}", "imgs", None, 0.5))
    n = len(rows)
    cand = pa.table({"uid": [r[0] for r in rows], "bucket": [r[1] for r in rows], "question": [r[2] for r in rows],
                     "answer": [r[3] for r in rows], "data_source": [r[4] for r in rows],
                     "video_key": [r[5] for r in rows],
                     "n_frames": pa.array([8 if r[1] == "short_video" else 1 for r in rows], pa.int32()),
                     "native_frames": pa.array([8 if r[1] == "short_video" else 1 for r in rows], pa.int32()),
                     "media_kind": ["frames" if r[1] == "short_video" else "image" for r in rows],
                     "pool_pos": pa.array(range(n), pa.int64())})
    vds = np.array([r[6] for r in rows])
    lv = np.full(n, 1.0)
    desc = pa.table({"uid": cand["uid"], "loss_video": lv, "loss_blind": lv + vds, "vds": vds,
                     "ppl": np.exp(lv), "frame_diversity": np.full(n, 0.1)})
    return cand, desc


def _goal(rank):
    return goal_from_dict({"base": "temp_plus", "min_video_ratio": 0.5, "max_video_ratio": 0.5,
                           "min_temporal_in_video_ratio": 0.5, "temporal_oversample": 20.0,
                           "source_floor_topk": 0, "temporal_rank": rank})


def test_select_vds_quantile_takes_the_top_share_of_each_temporal_stratum():
    cand, desc = _pool()
    res_q = select(cand, desc, _goal("vds_quantile"), budget=20, seed=1)
    # n=20: min video 10, min temporal ceil(0.5 * 10) = 5 from the temporal strata
    tq = [u for u, s in zip(res_q.gdo_uids(), [res_q.gdo_stage[i] for i in range(len(res_q.gdo_stage))])
          if s == "temporal_min"]
    assert len(tq) == 5
    # quantile order: A's best (VDS 3.9), B's best (0.9), A's 2nd, B's 2nd, A's 3rd
    assert sorted(tq) == sorted(["vv::srcA19::t0", "vv::srcB19::t0", "vv::srcA18::t0", "vv::srcB18::t0",
                                 "vv::srcA17::t0"])
    res_s = select(cand, desc, _goal("score"), budget=20, seed=1)
    ts = [u for u, s in zip(res_s.gdo_uids(), res_s.gdo_stage) if s == "temporal_min"]
    assert len(ts) == 5 and all("srcA" in u for u in ts)  # the pool-wide score takes stratum A only
    assert res_q.report["preset"]["params"]["temporal_rank"] == "vds_quantile"


def test_temporal_rank_is_validated_and_default_mode_only():
    with pytest.raises(GoalError, match="temporal_rank"):
        goal_from_dict({"base": "temp_plus", "temporal_rank": "loss"})
    cand, desc = _pool()
    with pytest.raises(SelectionError, match="paper mode"):
        select(cand, desc, _goal("vds_quantile"), budget=20, seed=1, mode="paper")
    # the default stays the release's order (paper mode unchanged)
    assert goal_from_dict({"base": "temp_plus"}).temporal_rank == "score"


def test_vds_quantile_minimum_does_not_depend_on_the_score_shortlist():
    """The temporal minimum under ``vds_quantile`` ranks every temporal candidate at once: the size
    of the score shortlist (``temporal_oversample``) must not change which ones it takes. The picks
    are the head of :func:`vds_quantile_order` over all temporal candidates, as an independent
    reading of the descriptor table says (per source stratum, by descending VDS)."""
    cand, desc = _pool()
    picks = {}
    for over in (1.0, 20.0):
        g = goal_from_dict({"base": "temp_plus", "min_video_ratio": 0.8, "max_video_ratio": 0.8,
                            "min_temporal_in_video_ratio": 1.0, "temporal_oversample": over, "oversample": 1.0,
                            "video_oversample": 1.0, "source_floor_topk": 0, "temporal_rank": "vds_quantile"})
        res = select(cand, desc, g, budget=20, seed=1)
        picks[over] = sorted(u for u, s in zip(res.gdo_uids(), res.gdo_stage) if s == "temporal_min")
    assert picks[1.0] == picks[20.0]
    # n = 20: min video 16, all temporal: 8 per source stratum, the 8 best VDS of each (index 12..19)
    assert len(picks[1.0]) == 16
    assert picks[1.0] == sorted(f"vv::{s}{i}::t0" for s in ("srcA", "srcB") for i in range(12, 20))
