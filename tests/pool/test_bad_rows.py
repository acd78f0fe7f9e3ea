"""Row kinds of the bad-input corpus (issue 13 item 7; tests/data/bad_inputs/rows, manifest beside it):
each line has its expected outcome, the accounting invariant holds, and the specific promises
(stable id for an empty id, listed duplicate ids, byte offsets, trailing blank lines, per-row
LLaVA-Video frame lists, no media token ever in a written answer) are checked against the files."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from gdo.pool.candidates import content_id
from gdo.pool.ingest import ingest, write_ingest
from gdo.pool.writer import write_rows

D = Path(__file__).parents[1] / "data" / "bad_inputs" / "rows"
FILES = ("pool.jsonl", "llava.json", "latin1.jsonl")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((D / "manifest.json").read_text())


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res = ingest([D / f for f in FILES], probe_media=False)
    out = tmp_path_factory.mktemp("rows_out")
    write_ingest(res, out)
    return res, out


def test_every_line_has_its_expected_outcome(result, manifest):
    res, _ = result
    for name in ("pool.jsonl", "llava.json"):
        path = str((D / name).resolve())
        exp = manifest[name]
        rejects = {r["line"]: r["reason"] for r in res.rejects if r["file"] == path and r["level"] == "row"}
        assert rejects == {int(k): v for k, v in exp.items() if v not in ("ok", "blank")}, name
        t = res.candidates.filter(pa_eq(res.candidates, "source_file", path))
        assert sorted(set(t.column("line").to_pylist())) == sorted(int(k) for k, v in exp.items() if v == "ok")
        st = res.stats["files"][path]
        assert st["rows_read"] == st["rows_with_candidates"] + st["rows_rejected"]
        assert st["rows_read"] == sum(1 for v in exp.values() if v != "blank")
        assert st["blank_lines"] == sum(1 for v in exp.values() if v == "blank")
    cand = {str(r["line"]): r["reason"] for r in res.rejects if r["level"] == "candidate"}
    assert cand == manifest["candidate_rejects"]
    t = res.stats["totals"]
    assert t["rows_read"] == t["rows_with_candidates"] + t["rows_rejected"]


def pa_eq(t, col, v):
    import pyarrow.compute as pc

    return pc.equal(t.column(col), v)


def test_reject_details_name_the_problem(result):
    res, _ = result
    by = {r["reason"]: r for r in res.rejects}
    line = {r["line"]: r["detail"] for r in res.rejects if r["level"] == "row" and Path(r["file"]).name == "pool.jsonl"}
    assert "'role' is 'user' but 'from' is 'gpt'" in by["role_conflict"]["detail"]
    assert line[2].startswith("messages[1]: an assistant message holds a media token <image>")
    assert line[11].startswith("messages[1]: an assistant message holds a media part")
    # not_utf8: the byte offset is the offset of the bad byte in the file (checked on the raw bytes)
    raw = (D / "pool.jsonl").read_bytes()
    off = raw.index(b"\xe9")
    assert f"byte offset {off} in the file" in line[12] and "0xe9" in line[12]
    # a file that is not UTF-8 at all: rejected during format detection, with where
    f = [r for r in res.rejects if r["level"] == "file"]
    lat = (D / "latin1.jsonl").read_bytes()
    bad = next(i for i, b in enumerate(lat) if b >= 0x80)
    assert [(Path(r["file"]).name, r["reason"]) for r in f] == [("latin1.jsonl", "not_utf8")]
    assert f[0]["detail"].startswith("line 1: ") and f"byte offset {bad} in the file" in f[0]["detail"]


def test_empty_id_duplicates_roles_and_empty_questions(result, manifest):
    res, out = result
    rows = {r["uid"]: r for r in res.candidates.to_pylist()}
    rec = orjson.loads((D / "pool.jsonl").read_bytes().splitlines()[4])
    assert rec["id"] == ""
    hid = content_id(rec)  # a stable internal id: the content hash of the row
    assert hid.startswith("h") and f"ov::{hid}::t0" in rows
    # duplicate ids: listed with every row holding them (not only counted)
    st = json.loads((out / "ingest.json").read_text())
    pool = str((D / "pool.jsonl").resolve())
    assert st["duplicate_ids"] == [{"row_id": k, "rows": [{"file": pool, "line": ln} for ln in v]}
                                   for k, v in manifest["duplicate_ids"].items()]
    assert st["uid_collisions"] == 1 and "ov::dup::t0#2" in rows
    # every listed role spelling is read
    assert [rows[f"ov::spellings::t{k}"]["answer"] for k in range(4)] == ["A1.", "A2.", "A3.", "A4."]
    # an empty question (only a media token) is skipped and not counted in k (as the release does)
    assert rows["ov::empty-q-first::t0"]["question"] == "What color?"
    assert "ov::empty-q-first::t1" not in rows


def test_frame_list_row_recognised_in_a_llava_file(result):
    res, _ = result
    rows = {r["uid"]: r for r in res.candidates.to_pylist()}
    st = res.stats["files"][str((D / "llava.json").resolve())]
    assert st["format"] == "llava"
    one = rows["ov::lv-string-image::t0"]
    assert one["media_kind"] == "image" and one["media_raw"] == ["img/a.png"]  # one image, never its characters
    fr = rows["vv::lv-frames::t0"]
    assert fr["media_kind"] == "frames" and fr["native_frames"] == 40 and fr["n_frames"] == 32
    assert fr["bucket"] == "short_video"


def test_no_written_answer_holds_a_media_token(result, tmp_path):
    res, _ = result
    out = tmp_path / "subset.jsonl"
    n = write_rows(res.candidates, res.candidates.column("uid").to_pylist(), out)
    assert n == len(set(zip(res.candidates.column("source_file").to_pylist(),
                            res.candidates.column("line").to_pylist())))
    for line in out.read_bytes().splitlines():
        rec = orjson.loads(line)
        msgs = rec.get("messages") or rec.get("conversations")
        for m in msgs:
            role = (m.get("role") or m.get("from")).lower()
            text = json.dumps(m.get("content", m.get("value")))
            if role in ("assistant", "gpt", "bot", "model", "chatgpt"):
                assert "<image>" not in text and "<video>" not in text and "image_url" not in text


def test_json_array_not_utf8_names_the_byte(tmp_path):
    p = tmp_path / "pool.json"
    p.write_bytes(b'[{"id": "a", "messages": [{"role": "user", "content": "caf\xe9"}]}]')
    res = ingest([p], probe_media=False)
    (r,) = res.rejects
    assert r["level"] == "file" and r["reason"] == "not_utf8"
    off = p.read_bytes().index(b"\xe9")
    assert f"byte offset {off}" in r["detail"]


def test_byte_ranges_agree_on_offsets_and_trailing_blanks(tmp_path):
    """Byte offsets and trailing blank lines do not depend on the number of workers."""
    body = (D / "pool.jsonl").read_bytes().rstrip(b" \n") + b"\n"
    p = tmp_path / "big.jsonl"
    p.write_bytes(body * 1500 + b"\n \n\n")
    r1 = ingest([p], probe_media=False, workers=1)
    r2 = ingest([p], probe_media=False, workers=2)
    assert r1.rejects == r2.rejects and r1.stats == r2.stats and r1.candidates.equals(r2.candidates)
    st = r1.stats["files"][str(p)]
    assert st["blank_lines"] == 3 and st["rows_read"] == st["rows_with_candidates"] + st["rows_rejected"]
    last = [r for r in r1.rejects if r["reason"] == "not_utf8"][-1]
    line_start = sum(len(x) + 1 for x in p.read_bytes().split(b"\n")[: last["line"] - 1])
    col = body.split(b"\n")[11].index(b"\xe9")
    assert f"byte offset {line_start + col} in the file" in last["detail"]
