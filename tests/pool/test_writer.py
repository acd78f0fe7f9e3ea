"""write_rows: chosen turns only, media kept consistent with tokens, pool order, streaming sources."""

from __future__ import annotations

import json

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from gdo.pool.ingest import ingest
from gdo.pool.writer import write_rows

LF = "hiyouga__LLaMA-Factory/data"


def _read(p):
    return [orjson.loads(l) for l in p.read_bytes().splitlines()]


def _tokens(rec):
    key = "messages" if "messages" in rec else "conversations"
    txt = "".join(m.get("content", m.get("value", "")) for m in rec[key] if isinstance(m.get("content", m.get("value")), str))
    return txt.count("<image>"), txt.count("<video>")


def test_real_subset_roundtrip(real_data, tmp_path):
    src = real_data / LF / "mllm_demo.json"
    cands = ingest([src]).candidates
    uids = cands.column("uid").to_pylist()
    chosen = [uids[1], uids[2], uids[3], uids[6]]  # row 1 turn 1, row 2 both turns, row 4 turn 0
    out = tmp_path / "subset.jsonl"
    assert write_rows(cands, reversed(chosen), out) == 3
    rows = _read(out)
    orig = json.loads(src.read_text())
    # row 1: only its second pair, which refers to the second <image> -> one image left
    assert [m["content"] for m in rows[0]["messages"]] == [orig[0]["messages"][2]["content"],
                                                            orig[0]["messages"][3]["content"]]
    assert rows[0]["images"] == ["mllm_demo_data/1.jpg"] and _tokens(rows[0]) == (1, 0)
    assert rows[1] == orig[1]  # both turns chosen: unchanged
    assert len(rows[2]["messages"]) == 2 and rows[2]["images"] == orig[3]["images"][:1] and _tokens(rows[2]) == (1, 0)
    # re-ingesting the subset gives exactly the chosen questions/answers
    (tmp_path / "mllm_demo_data").symlink_to(real_data / LF / "mllm_demo_data")
    back = ingest([out]).candidates
    want = cands.filter(pa.compute.is_in(cands.column("uid"), pa.array(chosen)))
    assert back.column("question").to_pylist() == want.column("question").to_pylist()
    assert back.column("answer").to_pylist() == want.column("answer").to_pylist()


def test_positional_context_media_and_system(tmp_path):
    row = {"id": "r", "images": ["a.jpg", "b.jpg"], "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "<image>A?"}, {"role": "assistant", "content": "a"},
        {"role": "user", "content": "<image>B?"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "More?"}, {"role": "assistant", "content": "c"}]}
    lf = {"id": "v", "video_id": "x", "images": ["f1.jpg", "f2.jpg", "f3.jpg"],
          "conversations": [{"from": "human", "value": "<image>\nQ1"}, {"from": "gpt", "value": "A1"},
                            {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]}
    p = tmp_path / "p.jsonl"
    p.write_bytes(orjson.dumps(row) + b"\n" + orjson.dumps(lf) + b"\n")
    c = ingest([p], probe_media=False).candidates
    out = tmp_path / "o.jsonl"
    assert write_rows(c, ["ov::r::t2", "vv::v::t1"], out) == 2
    a, b = _read(out)
    # t2 ("More?") saw both images as context: both are put back in front of its question
    assert [m["role"] for m in a["messages"]] == ["system", "user", "assistant"]
    assert a["messages"][1]["content"] == "<image><image>More?" and a["images"] == ["a.jpg", "b.jpg"]
    # LLaVA-Video: the frame list is one video; the kept turn gets its token
    assert b["images"] == lf["images"] and b["conversations"][0]["value"].startswith("<image>")
    back = ingest([out], probe_media=False).candidates.to_pylist()
    assert [x["question"] for x in back] == ["More?", "Q2"]
    assert back[0]["media_raw"] == ["a.jpg", "b.jpg"] and back[1]["media_kind"] == "frames"
    # only the second image kept when only its own turn is chosen
    write_rows(c, ["ov::r::t1"], out)
    (r1,) = _read(out)
    assert r1["images"] == ["b.jpg"] and r1["messages"][1]["content"] == "<image>B?"


def test_pool_order_multi_file_and_parquet(tmp_path):
    rows = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"},
                                         {"role": "user", "content": f"r{i}"}, {"role": "assistant", "content": "b"}]}
            for i in range(20)]
    pq.write_table(pa.Table.from_pylist(rows[:10]), tmp_path / "a.parquet")
    (tmp_path / "b.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows[10:]))
    c = ingest([tmp_path / "a.parquet", tmp_path / "b.jsonl"], probe_media=False).candidates
    chosen = ["ov::p15::t1", "ov::p3::t0", "ov::p19::t0", "ov::p19::t1", "ov::p0::t1", "unknown"]
    out = tmp_path / "o.jsonl"
    assert write_rows(c, chosen, out) == 4
    got = _read(out)
    assert [r["id"] for r in got] == ["p0", "p3", "p15", "p19"]
    assert [[m["content"] for m in r["messages"]] for r in got[:3]] == [["r0", "b"], ["q3", "a"], ["r15", "b"]]
    assert got[3] == rows[19]
    assert write_rows(c, [], out) == 0 and out.read_bytes() == b""


def test_needed_lines_match_reader_numbering(tmp_path):
    import numpy as np

    from gdo.pool.formats import iter_jsonl
    from gdo.pool.writer import _iter_needed_jsonl

    lines = [b'{"a": %d}' % i if i % 7 else b"" for i in range(1, 400)] + [b'{"last": 1}']
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"\n".join(lines))  # no trailing newline
    numbered = {ln: rec for ln, rec, err in iter_jsonl(p) if err is None}
    want = np.array(sorted(set([1, 2, 8, 150, 151, 399, 400])), np.int64)
    got = dict(_iter_needed_jsonl(str(p), want, chunk_bytes=64))  # tiny chunks cross line boundaries
    assert sorted(got) == want.tolist()
    for ln in want.tolist():
        assert got[ln] == lines[ln - 1]
        if got[ln]:
            assert orjson.loads(got[ln]) == numbered[ln]
