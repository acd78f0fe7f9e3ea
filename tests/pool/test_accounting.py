"""Issue 8, item 1 across commands: `gdo ingest`, `gdo profile`, `gdo select` and `gdo run`, run as
subprocesses on one pool that mixes good rows on real media with every broken row of the bad-input
corpus (plus a file in an unknown format), account for every row and every candidate:

* rows read = rows with candidates + rows rejected, per file and in total (ingest.json);
* each rejected row is exactly one reject in rejects.jsonl with file, line and its expected reason;
* select/run: every candidate is either selected or not (report.json ``accounting``), the picks in
  selection.jsonl are candidates, subset.jsonl/baseline.jsonl hold exactly the picks, and the ingest
  rejects are counted in report.json.

The expectations come from the corpus manifest and the rows the helper writes, never from gdo.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from _gdo_cli import (MEDIA_REASONS, check_ingest_outputs, gdo, read_jsonl, shared_run, work_dir)

BUDGET = 5
SEL_ARGS = ("--preset", "temp", "--budget", str(BUDGET), "--seed", "7")


@pytest.fixture(scope="module")
def work(tmp_path_factory, real_data):
    return work_dir(tmp_path_factory, real_data)


@pytest.fixture(scope="module")
def ingested(work):
    w, exp = work
    p = gdo("ingest", "pool/pool.jsonl", "pool/unknown.csv", "--out", "ing", cwd=w)
    return w / "ing", p


@pytest.fixture(scope="module")
def ingested_no_probe(work):
    w, _ = work
    gdo("ingest", "pool/pool.jsonl", "pool/unknown.csv", "--out", "ing_np", "--no-probe", cwd=w)
    return w / "ing_np"


@pytest.fixture(scope="module")
def profiled(work):
    w, _ = work
    gdo("profile", "pool/pool.jsonl", "pool/unknown.csv", "--out", "prof", "--text-encoder", "hashing",
        "--no-progress", cwd=w)
    return w / "prof"


def _qa(cands: list[dict]) -> dict[str, tuple[str, str]]:
    return {c["uid"]: (c["question"], c["answer"]) for c in cands}


def _reingest(path: Path) -> list[tuple[str, str]]:
    """(question, answer) of every candidate of a written subset/baseline file (media not opened)."""
    from gdo.pool.ingest import ingest

    res = ingest([str(path)], probe_media=False)
    assert not [r for r in res.rejects if r["level"] != "candidate"], res.rejects[:3]
    return sorted(zip(res.candidates.column("question").to_pylist(), res.candidates.column("answer").to_pylist()))


def check_selection(out: Path, cands: list[dict], n_rejects: int | None) -> dict:
    """Assert that every candidate is selected or not, the picks are candidates, the written
    subset/baseline hold exactly the picks, and the ingest rejects are counted. Returns report.json."""
    rep = json.loads((out / "report.json").read_text())
    acc = rep["accounting"]
    qa = _qa(cands)
    assert acc["candidates_in_pool"] == len(cands)
    assert acc["selected"] + acc["not_selected"] == acc["candidates_in_pool"]
    assert acc["ingest_rejects"] == n_rejects, "ingest rejects must be counted in report.json accounting"
    assert acc["budget"] == rep["budget"]["n"] == BUDGET
    assert acc["selected"] == BUDGET - acc["short_of_budget"]
    sel = read_jsonl(out / "selection.jsonl")
    assert {s["set"] for s in sel} <= {"gdo", "baseline"}
    picks = {k: [s["uid"] for s in sel if s["set"] == k] for k in ("gdo", "baseline")}
    for k, n in (("gdo", acc["selected"]), ("baseline", acc["baseline_selected"])):
        assert len(picks[k]) == len(set(picks[k])) == n, k
        assert set(picks[k]) <= set(qa), (k, sorted(set(picks[k]) - set(qa)))
        stages = rep["stages"]["gdo" if k == "gdo" else "baseline"]
        assert Counter(s["stage"] for s in sel if s["set"] == k) == Counter(stages), k
    assert acc["selected"] > 0 and acc["baseline_selected"] >= acc["selected"]
    # the written files hold exactly the chosen candidates (only the chosen turns)
    assert _reingest(out / "subset.jsonl") == sorted(qa[u] for u in picks["gdo"])
    assert _reingest(out / "baseline.jsonl") == sorted(qa[u] for u in picks["baseline"])
    return rep


# ----------------------------------------------------------------------------------- ingest
def test_ingest_accounts_for_every_row(ingested, work):
    out, p = ingested
    _, exp = work
    got = check_ingest_outputs(out, exp)
    t = got["stats"]["totals"]
    # the summary on stdout states the same totals
    assert f"total: {t['rows_read']} rows, {t['candidates']} candidates, {t['rows_rejected']} rows rejected" in p.stdout


def test_ingest_without_probe_rejects_the_same_rows_except_media_checks(ingested, ingested_no_probe, work):
    """`--no-probe` (what `gdo select` does on pool files) skips only the checks that open media: every
    other reject (malformed JSON, token mismatch, ...) is the same row with the same reason."""
    _, exp = work
    stats = json.loads((ingested_no_probe / "ingest.json").read_text())
    for s in stats["files"].values():
        assert s["rows_read"] == s["rows_with_candidates"] + s["rows_rejected"]
    rejects = read_jsonl(ingested_no_probe / "rejects.jsonl")
    want = {ln: r for ln, r in exp["row_rejects"].items() if r not in MEDIA_REASONS}
    assert {r["line"]: r["reason"] for r in rejects if r["level"] == "row"} == want
    cands = pq.read_table(ingested_no_probe / "candidates.parquet").to_pylist()
    media_lines = {ln for ln, r in exp["row_rejects"].items() if r in MEDIA_REASONS}
    assert sorted({c["line"] for c in cands}) == sorted(set(exp["good_lines"]) | media_lines)


# ----------------------------------------------------------------------------------- profile
def test_profile_accounts_for_every_row_and_describes_every_candidate(profiled, ingested, work):
    _, exp = work
    got = check_ingest_outputs(profiled, exp)
    ing, _ = ingested
    # profile's own ingest writes what `gdo ingest` writes
    assert (profiled / "rejects.jsonl").read_bytes() == (ing / "rejects.jsonl").read_bytes()
    assert json.loads((profiled / "ingest.json").read_text()) == json.loads((ing / "ingest.json").read_text())
    desc = pq.read_table(profiled / "descriptors.parquet").to_pylist()
    assert [d["uid"] for d in desc] == [c["uid"] for c in sorted(got["cands"], key=lambda c: c["pool_pos"])]
    # every kept candidate passed the media probe, so it decodes: no media_error
    assert [d["uid"] for d in desc if d["media_error"] is not None] == []
    assert all(d["bucket"] in ("image_qa", "short_video") for d in desc)


# ----------------------------------------------------------------------------------- select
def test_select_on_pool_files_accounts_for_every_candidate(work, profiled, ingested, ingested_no_probe):
    w, exp = work
    gdo("select", "pool/pool.jsonl", "pool/unknown.csv", "-d", "prof/descriptors.parquet", *SEL_ARGS,
        "--out", "sel_pool", cwd=w)
    # select never opens media: its candidates are those of `gdo ingest --no-probe`
    np_cands = pq.read_table(ingested_no_probe / "candidates.parquet").to_pylist()
    n_rejects = len(read_jsonl(ingested_no_probe / "rejects.jsonl"))
    rep = check_selection(w / "sel_pool", np_cands, n_rejects)
    # ... and the probed ingest's rejects for reasons needing no media are the same rows
    probed = read_jsonl(ingested[0] / "rejects.jsonl")
    assert n_rejects == sum(r["reason"] not in MEDIA_REASONS for r in probed)
    # candidates of rows whose media failed the probe have no descriptor row (profile never saw them)
    media_lines = {ln for ln, r in exp["row_rejects"].items() if r in MEDIA_REASONS}
    assert rep["accounting"]["without_descriptor_row"] == sum(c["line"] in media_lines for c in np_cands)
    assert rep["inputs"]["descriptors"]["matched"] == len(np_cands) - rep["accounting"]["without_descriptor_row"]


def test_select_on_ingest_folder_counts_its_rejects(work, profiled, ingested):
    """`gdo select DIR` with DIR/candidates.parquet from `gdo ingest`: the rejects in DIR/rejects.jsonl
    are the ingest rejects of this pool and must be counted."""
    w, _ = work
    ing, _ = ingested
    gdo("select", "ing", "-d", "prof/descriptors.parquet", *SEL_ARGS, "--out", "sel_dir", cwd=w)
    cands = pq.read_table(ing / "candidates.parquet").to_pylist()
    rep = check_selection(w / "sel_dir", cands, len(read_jsonl(ing / "rejects.jsonl")))
    assert rep["accounting"]["without_descriptor_row"] == 0


# ----------------------------------------------------------------------------------- run
def test_run_accounts_for_every_row_and_candidate(tmp_path_factory, real_data, ingested):
    out, exp = shared_run(tmp_path_factory, real_data, "w1")
    got = check_ingest_outputs(out, exp)
    assert (out / "rejects.jsonl").read_bytes() == (ingested[0] / "rejects.jsonl").read_bytes()
    rep = check_selection(out, got["cands"], len(got["rejects"]))
    assert rep["accounting"]["without_descriptor_row"] == 0
    desc = pq.read_table(out / "descriptors.parquet", columns=["uid", "media_error"]).to_pylist()
    assert sorted(d["uid"] for d in desc) == sorted(c["uid"] for c in got["cands"])
    # issue 13 item 8: report.json counts each media flag over the candidates; descriptors.parquet
    # holds each candidate's flags (ingest's probe joined with profile's decode)
    flags = pq.read_table(out / "descriptors.parquet", columns=["media_flags"]).column("media_flags").to_pylist()
    want = Counter(f for v in flags if v for f in v.split(","))
    assert rep["media_flags"] == dict(sorted(want.items()))
    for flag in ("rotated", "partial", "vfr", "upscaled", "animated"):  # corpus rows rot90, cut-payload, vfr, tiny, gif-img
        assert rep["media_flags"].get(flag, 0) >= 1, flag
    html = (out / "report.html").read_text()
    assert "<h2>Media flags</h2>" in html and "<code>partial</code>" in html


def test_run_with_model_accounts_for_every_candidate(tmp_path_factory, real_data, tiny_model):
    out, exp = shared_run(tmp_path_factory, real_data, "model", "--model", str(tiny_model), "--frames", "4")
    got = check_ingest_outputs(out, exp)
    rep = check_selection(out, got["cands"], len(got["rejects"]))
    desc = pq.read_table(out / "descriptors.parquet").to_pylist()
    assert sorted(d["uid"] for d in desc) == sorted(c["uid"] for c in got["cands"])
    # the model ran on every candidate: values, not nulls, and no error
    assert [d["uid"] for d in desc if d["model_error"] is not None] == []
    for col in ("loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge"):
        assert all(d[col] is not None for d in desc), col
    assert rep["inputs"]["descriptors"]["tnc_judge_rows"] == len(got["cands"])
