"""Property tests of selection (hypothesis): constraints, cap, dedup, determinism, budget bounds."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdo.schema import CANDIDATE_SCHEMA
from gdo.selection.goalfile import goal_from_dict
from gdo.selection.select import select

_Q = ["What is shown?", "What happens after the jump?", "Describe it.", "What color is the sky?\nA. blue\nB. red",
      "Which choice is right?", "Why does the man then leave the room quickly?"]
_A = ["Yes.", "A dog.", "He leaves the room and closes the door behind him.", "A", "blue blue blue"]
_SRC = ["coco_a_b_c_d", "vqa(x)", "nextqa_1_2_3_4_5", "ego(y)", ""]


@st.composite
def pools(draw):
    n_img = draw(st.integers(0, 60))
    n_vid = draw(st.integers(0, 12))
    per = [draw(st.integers(1, 14)) for _ in range(n_vid)]
    dup_rate = draw(st.sampled_from([0.0, 0.1, 0.5]))
    seed = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    rows = []

    def text(i):
        if rng.random() < dup_rate:
            j = int(rng.integers(0, 3))
            return _Q[j], _A[j]
        return f"{_Q[int(rng.integers(0, len(_Q)))]} #{i}", _A[int(rng.integers(0, len(_A)))]

    for i in range(n_img):
        q, a = text(i)
        rows.append(dict(uid=f"ov::i{i}::t0", row_id=f"i{i}", turn=0, bucket="image_qa", question=q, answer=a,
                         media_kind="image", video_key=None, n_frames=1, native_frames=1,
                         data_source=_SRC[int(rng.integers(0, len(_SRC)))]))
    k = 0
    for v, m in enumerate(per):
        nf = int(rng.integers(4, 300))
        src = _SRC[int(rng.integers(0, len(_SRC)))]
        for t in range(m):
            q, a = text(10_000 + k)
            k += 1
            rows.append(dict(uid=f"vv::v{v}::t{t}", row_id=f"v{v}", turn=t, bucket="short_video", question=q,
                             answer=a, media_kind="frames", video_key=f"video{v}", n_frames=min(nf, 32),
                             native_frames=nf, data_source=src))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    for i, r in enumerate(rows):
        r["pool_pos"] = i
    cols = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in CANDIDATE_SCHEMA}
    cand = pa.table(cols, schema=CANDIDATE_SCHEMA)
    # descriptors for most candidates, with a TNC judge on some videos
    keep = rng.random(len(rows)) < 0.9
    desc = pa.table({
        "uid": [r["uid"] for r in rows],
        "loss_video": rng.gamma(2, 0.5, len(rows)), "loss_blind": rng.gamma(2, 0.6, len(rows)),
        "frame_diversity": rng.random(len(rows)), "tnc_judge": np.where(rng.random(len(rows)) < 0.5, rng.random(len(rows)), np.nan),
        "sc": rng.random(len(rows)),
    }).filter(pa.array(keep))
    return cand, desc


@st.composite
def goals(draw):
    base = draw(st.sampled_from(["minloss", "diverse", "temp", "temp_plus"]))
    min_count = draw(st.integers(0, 40))
    return goal_from_dict({"base": base, "min_count": min_count, "max_count": min_count + draw(st.integers(0, 80)),
                           "max_ratio": draw(st.sampled_from([0.05, 0.2, 0.5, 1.0])),
                           "source_floor_topk": draw(st.integers(0, 5)),
                           "min_source_group_ratio": draw(st.sampled_from([0.0, 0.05, 0.1]))})


def _subset_invariants(cand, res, cap=8):
    idx = res.gdo_idx
    uids = cand["uid"].to_pylist()
    qs = cand["question"].to_pylist()
    ans = cand["answer"].to_pylist()
    vk = cand["video_key"].to_pylist()
    assert len({uids[i] for i in idx}) == len(idx)
    assert len({(qs[i], ans[i]) for i in idx}) == len(idx)
    per = {}
    for i in idx:
        if vk[i] is not None:
            per[vk[i]] = per.get(vk[i], 0) + 1
    assert max(per.values(), default=0) <= cap
    assert len(res.gdo_stage) == len(idx)
    b = res.baseline_idx
    assert len({uids[i] for i in b}) == len(b)
    if "uniform_relaxed" not in res.baseline_stage:
        assert len({(qs[i], ans[i]) for i in b}) == len(b)
        bper = {}
        for i in b:
            if vk[i] is not None:
                bper[vk[i]] = bper.get(vk[i], 0) + 1
        assert max(bper.values(), default=0) <= cap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pool=pools(), goal=goals(), mode=st.sampled_from(["default", "paper"]), fill=st.booleans(),
       budget=st.one_of(st.just("auto"), st.integers(0, 80)))
def test_selection_properties(pool, goal, mode, fill, budget):
    cand, desc = pool
    N = cand.num_rows
    res = select(cand, desc, goal, mode=mode, budget=budget, allow_random_fill=fill)
    r = res.report
    n = r["budget"]["n"]
    # budget within its bounds
    if budget == "auto":
        b = r["budget"]
        if N and "nonempty_rule" in b:  # default mode lifts an auto budget of 0 (issue 15)
            assert mode == "default" and b["n_before_nonempty_rule"] == 0
            assert n == min(N, max(1, math.ceil(Fraction(repr(goal.max_ratio)) * N))) >= 1
        elif N:
            upper = min(goal.max_count, b["n_max_ratio"], N)
            if mode == "paper":
                upper = max(1, upper)  # the release keeps at least one: n = max(1, min(n, N)) (docs/METHOD.md 8)
            assert 0 <= n <= upper
            assert n >= min(b["n_lower"], upper)
    else:
        assert n == min(budget, N)
    assert len(res.gdo_idx) <= n
    _subset_invariants(cand, res, goal.max_qa_per_video)
    cons = {c["name"]: c for c in r["constraints"] if c["name"] != "source_floor"}
    # the video bounds always hold (max_video is never exceeded by any step)
    assert cons["max_video"]["met"]
    # constraints the pool can satisfy hold (default mode reaches past the oversampled pools)
    if mode == "default":
        for name in ("min_video", "min_temporal_video"):
            if cons[name]["feasible"] and cons["max_video"]["feasible"]:
                assert cons[name]["met"], (name, cons[name])
        if fill and cons["budget"]["feasible"] and cons["max_video"]["feasible"]:
            assert cons["budget"]["met"], cons["budget"]
    else:
        if cons["budget"]["feasible"] and cons["max_video"]["feasible"]:
            assert cons["budget"]["met"], cons["budget"]   # paper mode fills at random
    if not (fill or mode == "paper"):
        assert "random_fill" not in r["stages"]["gdo"]
    # report accounting matches
    assert r["accounting"]["selected"] == len(res.gdo_idx)
    assert r["accounting"]["not_selected"] == N - len(res.gdo_idx)
    assert sum(r["stages"]["gdo"].values()) == len(res.gdo_idx)
    for c in r["constraints"]:
        assert c["met"] == (c["achieved"] <= c["required"] if c["kind"] == "max" else c["achieved"] >= c["required"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pool=pools(), goal=goals(), mode=st.sampled_from(["default", "paper"]), seed=st.integers(0, 2**31))
def test_same_seed_same_result(pool, goal, mode, seed):
    cand, desc = pool
    a = select(cand, desc, goal, mode=mode, seed=seed, budget=20)
    b = select(cand, desc, goal, mode=mode, seed=seed, budget=20)
    assert a.gdo_idx.tolist() == b.gdo_idx.tolist() and a.gdo_stage == b.gdo_stage
    assert a.baseline_idx.tolist() == b.baseline_idx.tolist()
    from gdo.utils.io import dumps_json

    assert dumps_json(a.report) == dumps_json(b.report)
