"""write_row_sets (one pass, several outputs) and the writer's fast row paths agree with the general path."""

from __future__ import annotations

import itertools

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from gdo.pool.candidates import parse_row
from gdo.pool.ingest import ingest
from gdo.pool.formats import for_row, get_format
from gdo.pool.formats.common import rewrite_view
from gdo.pool.writer import rewrite_row, write_row_sets, write_rows


def _u(role_key, content_key, role, text):
    return {role_key: role, content_key: text}


def _rows():
    """Rows of the shapes the fast path handles, and some it must hand to parse_row."""
    rows = []
    for n_turns in (1, 2, 3):
        msgs = []
        for t in range(n_turns):
            msgs.append({"role": "user", "content": ("<image>\nQ%d?" % t) if t == 0 else "Q%d?" % t})
            msgs.append({"role": "assistant", "content": "A%d" % t})
        rows.append(("llava_ov", {"id": f"i{n_turns}", "images": ["x/a.jpg"], "messages": msgs, "data_source": "s"}))
        conv = []
        for t in range(n_turns):
            conv.append({"from": "human", "value": ("<image>\nV%d" % t) if t == 0 else "V%d" % t})
            conv.append({"from": "gpt", "value": "B%d" % t})
        rows.append(("llava_video", {"id": f"v{n_turns}", "video_id": "vid", "images": [f"f/{k}.jpg" for k in range(5)],
                                     "conversations": conv}))
    two = [{"role": "user", "content": "<image><image>two?"}, {"role": "assistant", "content": "a"},
           {"role": "user", "content": "more"}, {"role": "assistant", "content": "b"}]
    rows.append(("llava_ov", {"id": "two", "images": ["a.png", "b.png"], "messages": two}))
    vid = [{"role": "user", "content": "Watch <video> now"}, {"role": "assistant", "content": "ok"},
           {"role": "user", "content": "and?"}, {"role": "assistant", "content": "yes"}]
    rows.append(("sharegpt", {"id": "vd", "videos": ["c.mp4"], "messages": vid}))
    rows.append(("sharegpt", {"id": "vs", "video": "c.mp4", "messages": vid}))
    notok = [{"role": "user", "content": "plain"}, {"role": "assistant", "content": "p"},
             {"role": "user", "content": "again"}, {"role": "assistant", "content": "q"}]
    rows.append(("llava_ov", {"id": "nt", "image": "z.jpg", "messages": notok}))
    # handed to parse_row: system message, positional tokens, content lists
    pos = [{"role": "user", "content": "<image>A"}, {"role": "assistant", "content": "a"},
           {"role": "user", "content": "<image>B"}, {"role": "assistant", "content": "b"}]
    sys_msgs = [{"role": "system", "content": "S"}, pos[0], {"role": "assistant", "content": "a"},
                {"role": "user", "content": "B"}, {"role": "assistant", "content": "b"}]
    rows.append(("llava_ov", {"id": "sys", "images": ["a.jpg"], "messages": sys_msgs}))
    rows.append(("llava_ov", {"id": "pos", "images": ["a.jpg", "b.jpg"], "messages": pos}))
    rows.append(("llava_ov", {"id": "inl", "messages": [
        {"role": "user", "content": [{"type": "image", "image": "a.jpg"}, {"type": "text", "text": "q"}]},
        {"role": "assistant", "content": "a"}, {"role": "user", "content": "r"}, {"role": "assistant", "content": "b"}]}))
    return rows


def test_simple_row_matches_parse_row_for_every_kept_subset():
    handled = 0
    for fmt, rec in _rows():
        full = parse_row(rec, fmt)
        pairs = [(p.user_msg, p.asst_msg) for p in full.pairs]
        for r in range(1, len(pairs) + 1):
            for kept in itertools.combinations(pairs, r):
                kept = list(kept)
                lite = rewrite_view(rec, for_row(rec, get_format(fmt)).frame_list, kept)
                if lite is None:
                    assert rec["id"] in ("sys", "pos", "inl")
                    continue
                handled += 1
                want = orjson.dumps(rewrite_row(rec, full, kept))
                assert orjson.dumps(rewrite_row(rec, lite, kept)) == want, (rec["id"], kept)
    assert handled >= 20
    # the shapes above that the fast path must hand over
    for fmt, rec in _rows()[-3:]:
        assert rewrite_view(rec, for_row(rec, get_format(fmt)).frame_list,
                            [(len(rec["messages"]) - 2, len(rec["messages"]) - 1)]) is None


def test_one_pass_equals_separate_writes_and_verbatim_rows(tmp_path):
    rows = [rec for fmt, rec in _rows() if fmt != "llava_video"]
    p = tmp_path / "p.jsonl"
    # odd but valid spacing and escapes: full rows must come back byte for byte
    lines = [orjson.dumps(r) for r in rows]
    lines[0] = lines[0].replace(b'":', b'": ')
    p.write_bytes(b"\n".join(lines) + b"\r\n")
    c = ingest([p], probe_media=False).candidates
    n = c.num_rows
    rng = np.random.default_rng(0)
    sets = [np.sort(rng.choice(n, size=k, replace=False)) for k in (3, n // 2, n)]
    outs = [tmp_path / f"s{i}.jsonl" for i in range(len(sets))]
    counts = write_row_sets(c, list(zip(sets, outs)))
    uids = c["uid"].to_numpy(zero_copy_only=False)
    for s, o, k in zip(sets, outs, counts):
        ref = tmp_path / "ref.jsonl"
        assert write_rows(c, list(uids[s]), ref) == k
        assert o.read_bytes() == ref.read_bytes()
    # every candidate chosen: each row is its own line, verbatim (spacing kept, \r dropped)
    got = outs[2].read_bytes().split(b"\n")[:-1]
    assert got == [ln.rstrip(b"\r") for ln in (b"\n".join(lines) + b"\r\n").split(b"\n")[:-1]]
    assert write_row_sets(c, [(np.zeros(0, np.int64), tmp_path / "e.jsonl")]) == [0]
    assert (tmp_path / "e.jsonl").read_bytes() == b""


def test_changed_pool_is_reported(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_bytes(b"".join(orjson.dumps(rec) + b"\n" for _, rec in _rows()[:4]))
    c = ingest([p], probe_media=False).candidates
    p.write_bytes(orjson.dumps(_rows()[0][1]) + b"\n")  # the pool lost rows since ingest
    last = int(np.flatnonzero(np.asarray(pc.equal(c["line"], pa.scalar(4, pa.int64()))))[0])
    try:
        write_row_sets(c, [(np.array([last]), tmp_path / "o.jsonl")])
    except ValueError as e:
        assert "p.jsonl:4" in str(e)
    else:
        raise AssertionError("a missing source row must raise")
