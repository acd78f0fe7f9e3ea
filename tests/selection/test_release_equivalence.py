"""Paper mode against the authors' release, on recorded release output (issue 12).

``tests/data/release/expected.json`` holds what the release's own ``gdo/build_pair.py`` (github
rujiewu/GDO) chose on the pool that ``benchmarks/release_fixture.py`` generates: the GDO subset
and the Uni-Nx baseline (``qa_uid`` lists) and the budget, for every preset at ``auto`` and at a
fixed budget, the ablations, and goals that reach the budget arithmetic the presets cannot reach on
a small pool. The pool has several raw ``data_source`` values per source group, questions starting
``A.``/``A)``, whitespace-variant duplicate answers, empty-question first turns, multi-image rows,
non-ASCII text, one-frame videos and videos with more than 8 QA pairs. The test regenerates the
pool (deterministic), runs ``select(mode="paper")`` and compares with the recording: the sets must
be identical, not close.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from gdo.selection.presets import get_preset
from gdo.selection.select import select

REPO = Path(__file__).resolve().parents[2]
EXPECTED = json.loads((REPO / "tests" / "data" / "release" / "expected.json").read_text(encoding="utf-8"))


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location("release_fixture", REPO / "benchmarks" / "release_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["release_fixture"] = mod
    spec.loader.exec_module(mod)
    return mod


RF = _load_fixture_module()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from gdo.pool.ingest import ingest

    out = tmp_path_factory.mktemp("release_pool")
    info = RF.generate(out)
    assert info == {k: EXPECTED["generator"][k] for k in ("candidates", "metrics_rows")}
    res = ingest([str(out / RF.IMAGE_FILE), str(out / RF.VIDEO_FILE)], probe_media=False)
    # issue 12 item 3: a turn whose question is empty after stripping media tokens is no candidate
    # and does not advance the turn number (the release's rule); ingest rejects exactly those pairs.
    rejects = res.rejects if isinstance(res.rejects, list) else res.rejects.to_pylist()
    assert rejects and {(r["level"], r["reason"]) for r in rejects} == {("candidate", "empty_question")}
    cand = res.candidates
    assert not pc.any(pc.equal(pc.utf8_trim_whitespace(pc.fill_null(cand["question"], "")), "")).as_py()
    return cand, out / RF.METRICS_FILE


def _goal(case: dict):
    upd = {}
    for k, v in case["env"].items():
        field = RF.ENV_TO_GOAL[k]
        if field == "temporal_categories":
            upd[field] = tuple(x.strip() for x in v.split(",") if x.strip())
        elif field in ("min_count", "max_count", "source_floor_topk"):
            upd[field] = int(v)
        else:
            upd[field] = float(v)
    return get_preset(case["preset"]).model_copy(update=upd)


def test_pool_has_the_release_candidate_count(pool):
    cand, _ = pool
    totals = {c["total_pairs"] for c in EXPECTED["cases"].values()}
    assert totals == {cand.num_rows}


@pytest.mark.parametrize("name", sorted(EXPECTED["cases"]))
def test_paper_mode_picks_the_release_subset(pool, name):
    case = EXPECTED["cases"][name]
    cand, metrics = pool
    flags = set(case["flags"])
    res = select(cand, str(metrics), _goal(case), mode="paper", seed=42,
                 budget="auto" if case["budget"] == "auto" else int(case["budget"]),
                 baseline_mult=float(case.get("mult", 10.0)),
                 no_vds="--disable-score-vds" in flags, no_ppl="--disable-score-ppl" in flags,
                 no_sc="--disable-score-sc" in flags, no_vds_budget="--disable-vds3-budget" in flags)
    assert res.report["budget"]["n"] == case["n"]
    gdo = res.gdo_uids()
    assert len(gdo) == len(case["gdo"])
    assert set(gdo) == set(case["gdo"])
    base = res.baseline_uids()
    assert len(base) == len(case["baseline"])
    assert set(base) == set(case["baseline"])


def test_presets_are_the_release_configs():
    """gdo's presets carry the values of the release's configs/*.env (recorded with the outputs)."""
    for p in RF.PRESETS:
        case = EXPECTED["cases"][f"{p}_auto"]
        assert not case["overrides"]
        g = get_preset(p)
        for k, v in case["env"].items():
            field = RF.ENV_TO_GOAL[k]
            if field == "temporal_categories":
                assert set(g.temporal_set("paper")) == set(v.split(","))
            else:
                assert getattr(g, field) == pytest.approx(float(v), rel=0, abs=0), (p, field)


def test_the_recording_exercises_what_it_claims():
    """The recorded cases reach the arithmetic they are named after (so a passing test means it)."""
    c = EXPECTED["cases"]
    assert c["vds_budget_acts"]["n"] > c["temp_plus_auto_no_vds_budget"]["n"]  # VDS adjustment raised n
    assert c["temp_plus_auto_no_vds"]["n"] == c["vds_budget_acts"]["n"]  # --no-vds keeps the budget rule
    total = c["max_ratio_floor_zero"]["total_pairs"]
    assert int(total * float(c["max_ratio_floor_zero"]["env"]["AUTO_MAX_RATIO"])) == 0
    assert c["max_ratio_floor_zero"]["n"] == 300  # max_count decides, not floor(N * max_ratio) = 0


def test_raw_shards_in_paper_mode_are_the_release_merge(tmp_path):
    """From the release's raw shards, paper mode computes the release merge step's cluster score
    (k = min(4096, N), streaming MiniBatchKMeans, exp(-distance)) and quality, and then selects
    the release's subset and baseline (recorded: benchmarks/release_fixture.py --merge-record)."""
    import numpy as np

    from gdo.pool.ingest import ingest
    from gdo.selection.descriptors_io import read_descriptors

    rec = np.load(REPO / "tests" / "data" / "release" / "merged_6000.npz")
    pool = RF.generate_merge_pool(tmp_path / "merge_pool")
    D = read_descriptors(pool / "shards", mode="paper")
    assert D.computed == ["cluster", "quality"] and D.info["cluster"]["k"] == 4096
    assert D.table["uid"].to_pylist() == rec["uid"].tolist()
    rep = D.table["cluster_rep"].to_numpy()
    assert np.abs(rep - rec["cluster_score"]).max() < 1e-12
    assert (rep < 0.999).sum() > 1000  # rows past the first k are not their own centres
    assert np.abs(D.table["quality_score"].to_numpy() - rec["quality_score"]).max() < 1e-12
    cand = ingest([str(pool / "llava_onevision.jsonl"), str(pool / "llava_video.jsonl")], probe_media=False).candidates
    for budget, key in (("auto", "auto"), (RF.FIXED_BUDGET, "fixed")):
        res = select(cand, D, get_preset("temp_plus"), mode="paper", budget=budget)
        assert res.report["budget"]["n"] == int(rec[f"{key}_n"])
        assert set(res.gdo_uids()) == set(rec[f"{key}_gdo"].tolist())
        assert set(res.baseline_uids()) == set(rec[f"{key}_baseline"].tolist())
