"""Issue 8, item 3: the same inputs and seed give byte-identical subset.jsonl, baseline.jsonl,
selection.jsonl and report.json — across separate processes (different PYTHONHASHSEED) and with
1 and with 2 workers — and those files hold no timestamps or timings (those go to timings.json).

The commands run as subprocesses on the mixed pool of good rows on real media and the bad-input
corpus (tests/_gdo_cli.py). `gdo run` is run with --workers 1 and --workers 2; `gdo profile` with
1 and 2 workers gives equal descriptor values; `gdo select` (which has no worker option: it never
opens media) is run twice on each profile's descriptors and gives identical bytes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from _gdo_cli import gdo, shared_run, work_dir

OUTPUTS = ("subset.jsonl", "baseline.jsonl", "selection.jsonl", "report.json")
_TIME_WORDS = {"time", "times", "timing", "timings", "elapsed", "seconds", "secs", "date", "timestamp", "created",
               "started", "finished", "wall", "host", "hostname", "pid", "clock"}
_TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _assert_same_bytes(a: Path, b: Path, names=OUTPUTS) -> None:
    for f in names:
        x, y = (a / f).read_bytes(), (b / f).read_bytes()
        assert x, f"{a / f} is empty"
        if x != y:
            i = next(i for i, (p, q) in enumerate(zip(x, y)) if p != q) if len(x) == len(y) else min(len(x), len(y))
            pytest.fail(f"{f} differs at byte {i}: {x[max(0, i - 80):i + 80]!r} vs {y[max(0, i - 80):i + 80]!r}")


def _keys(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}", k
            yield from _keys(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _keys(v, f"{path}[{i}]")


def _assert_no_clock(out: Path) -> None:
    """No timestamp-looking value in the deterministic files and no timing key in report.json."""
    for f in OUTPUTS:
        m = _TIMESTAMP.search((out / f).read_bytes())
        assert m is None, f"{f} holds a timestamp-like value {m.group(0)!r}"
    rep = json.loads((out / "report.json").read_text())
    bad = [p for p, k in _keys(rep) if _TIME_WORDS & set(re.split(r"[_\W]+", k.lower()))]
    assert bad == [], f"report.json holds timing keys {bad}"
    for line in (out / "selection.jsonl").read_text().splitlines():
        assert set(json.loads(line)) <= {"uid", "set", "score", "stage"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data):
    a, _ = shared_run(tmp_path_factory, real_data, "w1", hashseed=1)
    b, _ = shared_run(tmp_path_factory, real_data, "w2", "--workers", "2", hashseed=2)
    return a, b


def test_run_with_1_and_2_workers_is_byte_identical(runs):
    a, b = runs
    _assert_same_bytes(a, b)
    sel = [json.loads(x) for x in (a / "selection.jsonl").read_text().splitlines()]
    assert sum(s["set"] == "gdo" for s in sel) == 5  # a real selection, not two empty files
    # the stages before select agree too: candidates, rejects, descriptor values
    assert (a / "rejects.jsonl").read_bytes() == (b / "rejects.jsonl").read_bytes()
    assert pq.read_table(a / "candidates.parquet").equals(pq.read_table(b / "candidates.parquet"))
    assert pq.read_table(a / "descriptors.parquet").equals(pq.read_table(b / "descriptors.parquet"))


def test_outputs_hold_no_timestamps_or_timings(runs):
    a, _ = runs
    _assert_no_clock(a)
    t = json.loads((a / "timings.json").read_text())  # timings live in their own file
    assert isinstance(t, dict) and t


@pytest.fixture(scope="module")
def profiles(tmp_path_factory, real_data):
    w, _ = work_dir(tmp_path_factory, real_data)
    outs = []
    for n, seed in ((1, 3), (2, 4)):
        gdo("profile", "pool/pool.jsonl", "pool/unknown.csv", "--out", f"prof_w{n}", "--workers", str(n),
            "--text-encoder", "hashing", "--no-progress", cwd=w, hashseed=seed)
        outs.append(w / f"prof_w{n}")
    return w, outs


def test_profile_with_1_and_2_workers_gives_equal_descriptors(profiles):
    _, (a, b) = profiles
    ta, tb = pq.read_table(a / "descriptors.parquet"), pq.read_table(b / "descriptors.parquet")
    assert ta.num_rows > 0 and ta.column_names == tb.column_names
    for c in ta.column_names:
        assert ta.column(c).to_pylist() == tb.column(c).to_pylist(), c
    # media-derived values are really there (the workers computed them)
    assert sum(v is not None for v in ta.column("amm").to_pylist()) >= 3
    assert len(set(ta.column("cluster_id").to_pylist())) >= 2
    ma, mb = (json.loads((d / "descriptors.meta.json").read_text()) for d in (a, b))
    assert ma == mb  # config, config hash, cluster fit: nothing depends on the worker count
    assert _TIMESTAMP.search((a / "descriptors.meta.json").read_bytes()) is None


def test_select_twice_on_each_profile_is_byte_identical(profiles):
    """select reads the descriptors from one fixed path, so report.json's recorded path is the same."""
    w, (a, b) = profiles
    outs = []
    for src in (a, b, a):
        shutil.copy(src / "descriptors.parquet", w / "desc_in.parquet")
        if (w / "sel_out").exists():
            shutil.rmtree(w / "sel_out")
        gdo("select", "pool/pool.jsonl", "pool/unknown.csv", "-d", "desc_in.parquet", "--preset", "temp_plus",
            "--budget", "6", "--seed", "11", "--out", "sel_out", cwd=w, hashseed=len(outs) + 5)
        dst = w / f"sel_{len(outs)}"
        (w / "sel_out").rename(dst)
        outs.append(dst)
    _assert_same_bytes(outs[0], outs[1])
    _assert_same_bytes(outs[0], outs[2])
    _assert_no_clock(outs[0])
    rep = json.loads((outs[0] / "report.json").read_text())
    assert rep["accounting"]["selected"] == 6 and rep["seed"] == 11


def test_select_paper_mode_twice_is_byte_identical(profiles):
    """Paper mode always allows the random fill and draws ties at random: still one result per seed."""
    w, (a, _) = profiles
    outs = []
    for i in range(2):
        if (w / "paper_out").exists():
            shutil.rmtree(w / "paper_out")
        gdo("select", "pool/pool.jsonl", "-d", str(a / "descriptors.parquet"), "--preset", "minloss",
            "--mode", "paper", "--budget", "12", "--seed", "5", "--out", "paper_out", cwd=w, hashseed=20 + i)
        (w / "paper_out").rename(w / f"paper_{i}")
        outs.append(w / f"paper_{i}")
    _assert_same_bytes(outs[0], outs[1])
    rep = json.loads((outs[0] / "report.json").read_text())
    acc = rep["accounting"]
    assert rep["mode"] == "paper" and acc["selected"] == 12 - acc["short_of_budget"] > 0


def test_select_seed_changes_the_baseline(profiles):
    """Guard against a test that cannot fail: another seed draws another Uni-Nx baseline."""
    w, (a, _) = profiles
    outs = []
    for seed in ("11", "12"):
        out = f"sel_seed{seed}"
        gdo("select", "pool/pool.jsonl", "-d", str(a / "descriptors.parquet"), "--preset", "temp_plus",
            "--budget", "3", "--baseline-mult", "2", "--seed", seed, "--out", out, cwd=w)
        outs.append([json.loads(x)["uid"] for x in (w / out / "selection.jsonl").read_text().splitlines()
                     if json.loads(x)["set"] == "baseline"])
    assert len(outs[0]) == len(outs[1]) == 6
    assert outs[0] != outs[1]
