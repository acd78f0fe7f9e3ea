"""Bad-input corpus (issue 8 item 1): each bad row is a reject with its expected reason, good rows
still ingest, and the accounting invariant holds (rows_read == rows_with_candidates + rows_rejected)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from gdo.pool.ingest import ingest, read_candidates, write_ingest

CORPUS = Path(__file__).parents[1] / "data" / "bad_inputs"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((CORPUS / "manifest.json").read_text())


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res = ingest([CORPUS / "pool.jsonl", CORPUS / "unknown.csv"])
    out = tmp_path_factory.mktemp("bad_out")
    write_ingest(res, out)
    return res, out


def _check_accounting(stats: dict) -> None:
    for f, s in stats["files"].items():
        assert s["rows_read"] == s["rows_with_candidates"] + s["rows_rejected"], f
    t = stats["totals"]
    assert t["rows_read"] == t["rows_with_candidates"] + t["rows_rejected"]


def test_every_bad_line_has_its_expected_reason(result, manifest):
    res, _ = result
    expected = manifest["pool.jsonl"]
    pool = str((CORPUS / "pool.jsonl").resolve())
    row_rejects = {r["line"]: r["reason"] for r in res.rejects if r["file"] == pool and r["level"] == "row"}
    want_bad = {int(k): v for k, v in expected.items() if v != "ok"}
    assert row_rejects == want_bad
    good_lines = sorted(int(k) for k, v in expected.items() if v == "ok")
    cand_lines = sorted(set(res.candidates.column("line").to_pylist()))
    assert cand_lines == good_lines
    for r in res.rejects:
        assert r["file"] and r["reason"] and isinstance(r["detail"], str) and r["detail"]
        assert r["level"] in ("row", "candidate", "file")
        if r["level"] != "file":
            assert isinstance(r["line"], int) and r["line"] >= 1


def test_candidate_level_rejects_and_file_reject(result, manifest):
    res, _ = result
    cand = {str(r["line"]): r["reason"] for r in res.rejects if r["level"] == "candidate"}
    assert cand == manifest["candidate_rejects"]
    files = [r for r in res.rejects if r["level"] == "file"]
    assert [(Path(r["file"]).name, r["reason"]) for r in files] == [("unknown.csv", manifest["unknown.csv"]["file"])]
    st = res.stats["files"][str((CORPUS / "unknown.csv").resolve())]
    assert st["rows_read"] == 0 and st["file_reject"] == "unknown_format"


def test_accounting_and_counts(result, manifest):
    res, out = result
    _check_accounting(res.stats)
    n_lines = len(manifest["pool.jsonl"])
    pool_st = res.stats["files"][str((CORPUS / "pool.jsonl").resolve())]
    assert pool_st["rows_read"] == n_lines
    n_bad = sum(1 for v in manifest["pool.jsonl"].values() if v != "ok")
    assert pool_st["rows_rejected"] == n_bad
    assert res.stats["uid_collisions"] == manifest["uid_collisions"]
    # written files agree with the in-memory result
    st = json.loads((out / "ingest.json").read_text())
    assert st["totals"]["rows_rejected"] == res.stats["totals"]["rows_rejected"]
    lines = (out / "rejects.jsonl").read_bytes().splitlines()
    assert len(lines) == len(res.rejects)
    assert {orjson.loads(l)["reason"] for l in lines} == {r["reason"] for r in res.rejects}
    assert read_candidates(out).num_rows == res.candidates.num_rows


def test_media_edge_cases(result):
    res, _ = result
    rows = {r["uid"]: r for r in res.candidates.to_pylist()}
    # duplicate id: made unique deterministically
    assert "ov::good1::t0" in rows and "ov::good1::t0#2" in rows
    assert rows["ov::good1::t0"]["line"] == 1 and rows["ov::good1::t0#2"]["line"] == 16
    gif = rows["vv::gif::t0"]
    assert gif["bucket"] == "short_video" and gif["native_frames"] == 5 and gif["n_frames"] == 5
    one = rows["vv::one-frame::t0"]
    assert one["native_frames"] == 1 and one["n_frames"] == 1
    k4 = rows["ov::4k::t0"]
    assert k4["media_kind"] == "image" and k4["bucket"] == "image_qa"
    clip = [rows["vv::clip::t0"], rows["vv::clip::t1"]]
    assert [c["native_frames"] for c in clip] == [16, 16] and clip[0]["video_key"] == clip[1]["video_key"]
    assert clip[0]["duration_s"] == pytest.approx(2.0)
    # empty second answer: t0 kept, the empty pair rejected and does not advance k
    assert "ov::empty-ans::t0" in rows and "ov::empty-ans::t1" not in rows


def test_4k_frame_and_gif_decode():
    from gdo.media import load_frames

    img = load_frames("image", [str(CORPUS / "media" / "frame_4k.jpg")])
    assert img.shape == (1, 2160, 3840, 3) and img.dtype.name == "uint8"
    gif = load_frames("video", [str(CORPUS / "media" / "anim.gif")], frames=32)
    assert gif.shape[0] == 5
    assert gif[0].mean() < gif[-1].mean()  # frames get brighter


def test_ten_megabyte_line(tmp_path):
    pool = tmp_path / "big.jsonl"
    big = {"id": "big", "messages": [{"role": "user", "content": "x" * (10 << 20)},
                                     {"role": "assistant", "content": "y"}]}
    good = {"id": "small", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    pool.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(big) + b"\n" + orjson.dumps(good | {"id": "s2"}) + b"\n")
    res = ingest([pool], probe_media=False)
    assert [(r["line"], r["reason"]) for r in res.rejects] == [(2, "line_too_long")]
    assert res.candidates.column("uid").to_pylist() == ["ov::small::t0", "ov::s2::t0"]
    _check_accounting(res.stats)


def test_same_result_with_workers_and_without_probe(result, tmp_path):
    res, _ = result
    # byte-range splitting needs >1 MiB: repeat the corpus lines (minus the truncated tail)
    body = (CORPUS / "pool.jsonl").read_bytes().rsplit(b"\n", 1)[0] + b"\n"
    d = tmp_path / "c"
    shutil.copytree(CORPUS / "media", d / "media")
    (d / "pool.jsonl").write_bytes(body * 800)
    r1 = ingest([d / "pool.jsonl"], workers=1, probe_media=False)
    r2 = ingest([d / "pool.jsonl"], workers=2, probe_media=False)
    assert r1.candidates.equals(r2.candidates)
    assert r1.rejects == r2.rejects and r1.stats == r2.stats
    assert r1.stats["uid_collisions"] > 0
    _check_accounting(r1.stats)


def test_media_facts_of_the_corpus(result, manifest):
    """Issue 13 items 2-4 and 8: the facts recorded per candidate match the manifest (written from
    how make_corpus.py built each file, never from gdo)."""
    res, _ = result
    rows = {}
    for c in res.candidates.to_pylist():
        rows.setdefault(c["row_id"], c)
    for rid, facts in manifest["media_facts"].items():
        for k, v in facts.items():
            assert rows[rid][k] == (pytest.approx(v) if isinstance(v, float) else v), (rid, k)
    # partial: the header's frame count is kept beside the real one, and sampling stays inside it
    cut = rows["cut-payload"]
    assert cut["native_frames"] < cut["header_frames"] and cut["n_frames"] == min(cut["native_frames"], 32)
    assert len(cut["sample_times"]) == cut["n_frames"]
    # images carry no video facts; unprobed ingest leaves every media fact null
    assert rows["tiny"]["rotation"] is None and rows["tiny"]["sample_times"] is None
    lean = ingest([CORPUS / "pool.jsonl"], probe_media=False)
    for c in lean.candidates.to_pylist():
        assert [c[k] for k in ("header_frames", "width", "rotation", "sample_times", "media_flags")] == [None] * 5
