"""Ingestion end to end: real LLaMA-Factory pools, broken lines, uids, fast/general path agreement, CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from gdo.pool import ingest as ingest_mod
from gdo.pool.ingest import ingest, read_candidates, write_ingest
from gdo.schema import CANDIDATE_SCHEMA

LF = "hiyouga__LLaMA-Factory/data"


def _app() -> typer.Typer:
    from gdo.cli.ingest import register

    app = typer.Typer()

    @app.callback()
    def _cb() -> None:  # force sub-command mode
        pass

    register(app)
    return app


def test_real_llamafactory_video_and_image(real_data, tmp_path):
    runner = CliRunner()
    out_v, out_i = tmp_path / "v", tmp_path / "i"
    r = runner.invoke(_app(), ["ingest", str(real_data / LF / "mllm_video_demo.json"), "--out", str(out_v)])
    assert r.exit_code == 0, r.output
    assert "3 candidates" in r.output
    cv = read_candidates(out_v)
    assert cv.schema.equals(CANDIDATE_SCHEMA)
    assert cv.num_rows == 3 and set(cv.column("bucket").to_pylist()) == {"short_video"}
    assert all(u.startswith("vv::") and u.endswith("::t0") for u in cv.column("uid").to_pylist())
    assert cv.column("native_frames").to_pylist() == [243, 270, 146]
    assert cv.column("n_frames").to_pylist() == [32, 32, 32]
    assert (out_v / "rejects.jsonl").read_bytes() == b""
    st = json.loads((out_v / "ingest.json").read_text())
    assert st["totals"]["rows_rejected"] == 0 and st["totals"]["candidates"] == 3

    r = runner.invoke(_app(), ["ingest", str(real_data / LF / "mllm_demo.json"), "--out", str(out_i)])
    assert r.exit_code == 0, r.output
    ci = read_candidates(out_i).to_pylist()
    assert len(ci) == 12 and {c["bucket"] for c in ci} == {"image_qa"}
    assert (out_i / "rejects.jsonl").read_bytes() == b""
    # multi-turn conversations split into turn pairs, k per row
    assert [c["turn"] for c in ci] == [0, 1] * 6
    assert ci[0]["question"] == "Who are they?" and ci[1]["question"] == "What are they doing?"
    assert ci[1]["answer"] == "They are celebrating on the soccer field."
    # positional tokens: turn 2 of row 1 refers to the second image entry
    assert ci[0]["media_raw"] == ["mllm_demo_data/1.jpg"] and ci[1]["media_raw"] == ["mllm_demo_data/1.jpg"]
    assert ci[2]["row_id"] == ci[3]["row_id"] and ci[3]["media_raw"] == ["mllm_demo_data/2.jpg"]


def test_real_openai_content_needs_media_root(real_data):
    p = real_data / LF / "v1_multimodal_demo.jsonl"
    res = ingest([p])
    reasons = {r["reason"] for r in res.rejects}
    assert res.candidates.num_rows == 0 and "missing_media" in reasons
    assert any("--media-root" in r["detail"] for r in res.rejects)
    res2 = ingest([p], media_root=real_data / LF / "..")
    assert res2.candidates.num_rows == 48
    # the file ends with a blank line (line 25): skipped and counted as blank, not a rejected row
    assert res2.rejects == []
    st = res2.stats["files"][str(p)]
    assert st["blank_lines"] == 1 and st["rows_read"] == 24 and st["rows_rejected"] == 0
    assert st["format"] == "openai_content" and st["rows_read"] == st["rows_with_candidates"] + st["rows_rejected"]


def test_broken_lines_pool(tmp_path):
    good = [{"id": f"g{i}", "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(6)]
    lines = [orjson.dumps(good[0]), b"{not json", orjson.dumps(good[1]), b"", orjson.dumps(good[2]),
             b'{"id": "x", "messages": 3}', orjson.dumps(good[3]), b"\xff\xfe{}", orjson.dumps(good[4]),
             orjson.dumps(good[5]), b'{"id": "cut", "mess']
    p = tmp_path / "broken.jsonl"
    p.write_bytes(b"\n".join(lines))
    out = tmp_path / "out"
    r = CliRunner().invoke(_app(), ["ingest", str(p), "--out", str(out), "--no-probe"])
    assert r.exit_code == 0, r.output
    rej = [orjson.loads(l) for l in (out / "rejects.jsonl").read_bytes().splitlines()]
    assert [(x["line"], x["reason"]) for x in rej] == [(2, "malformed_json"), (4, "blank_line"), (6, "wrong_type"),
                                                       (8, "not_utf8"), (11, "malformed_json")]
    assert all(x["file"] == str(p) for x in rej)
    c = read_candidates(out)
    assert c.column("row_id").to_pylist() == [f"g{i}" for i in range(6)]
    assert c.column("line").to_pylist() == [1, 3, 5, 7, 9, 10]


def test_nothing_usable_exits_nonzero(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"{oops\n\n")
    r = CliRunner().invoke(_app(), ["ingest", str(p), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "nothing usable" in r.output
    assert (tmp_path / "o" / "rejects.jsonl").exists()


def _random_pool(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(n):
            k = rng.randint(1, 3)
            msgs = []
            for t in range(k):
                tok = rng.choice(["<image>\n", "<image>\n", "<video>", "<image><image>", ""])
                q = (tok if t == 0 and rng.random() < 0.8 else "") + f"question {i} {t}"
                msgs += [{"role": rng.choice(["user", "human"]), "content": q},
                         {"role": "assistant", "content": rng.choice(["yes", "no", "", "maybe so"] + ["ok"] * 8)}]
            rec: dict = {"messages": msgs, "data_source": rng.choice(["a", "b(c)", None])}
            if rng.random() < 0.9:
                rec["id"] = rng.choice([f"r{i}", f"r{i % 50}", i])
            kind = rng.random()
            if kind < 0.4:
                rec["images"] = [f"im/{i}.jpg"]
            elif kind < 0.7:
                rec["video_id"] = f"v{i}"
                rec["images"] = [f"fr/{i}/{j}.jpg" for j in range(rng.randint(1, 50))]
                if rng.random() < 0.2:  # odd paths anywhere in the list
                    odd = rng.choice(["", "/abs/x.jpg", "a/../b.jpg", ".hidden/x.jpg", "a//b.jpg", "a\\b.jpg",
                                      "a/./b.jpg", "dir/", "../up.jpg", "fr/.x.jpg"])
                    rec["images"].insert(rng.randint(0, len(rec["images"])), odd)
            elif kind < 0.8:
                rec["images"] = [f"../x/{i}.jpg"] if rng.random() < 0.5 else [f"./im//{i}.jpg"]
            elif kind < 0.9:
                v = rng.choice([f"v/{i}.mp4", f"v/{i}.mp4", f"../v/{i}.mkv", f"v/{i}", f"v/{i}.jpg", f"/abs/{i}.webm"])
                key = rng.choice(["videos", "video"])
                rec[key] = [v] if key == "videos" and rng.random() < 0.7 else v
            if rng.random() < 0.05:
                msgs.insert(0, {"role": "system", "content": "sys"})
            f.write(orjson.dumps(rec) + b"\n")


def test_fast_path_equals_general_path(tmp_path, monkeypatch):
    p = tmp_path / "r.jsonl"
    _random_pool(p, 3000, seed=1)
    for fmt in (None, "sharegpt"):  # auto-detects llava_video (frame lists); sharegpt: lists = images
        monkeypatch.setattr(ingest_mod, "_FAST_PATH", True)
        fast = ingest([p], probe_media=False, fmt=fmt)
        monkeypatch.setattr(ingest_mod, "_FAST_PATH", False)
        slow = ingest([p], probe_media=False, fmt=fmt)
        assert fast.candidates.num_rows > 2000
        assert fast.candidates.equals(slow.candidates)
        assert fast.rejects == slow.rejects and fast.stats == slow.stats
        assert fast.stats["uid_collisions"] > 0
        uids = fast.candidates.column("uid").to_pylist()
        assert len(set(uids)) == len(uids)
        kinds = set(fast.candidates.column("media_kind").to_pylist())
        assert {"video", "none", "image"} <= kinds and ("frames" in kinds)
    # media_root confinement catches the ../ rows in both paths
    conf_slow = ingest([p], probe_media=False, media_root=tmp_path)
    monkeypatch.setattr(ingest_mod, "_FAST_PATH", True)
    conf = ingest([p], probe_media=False, media_root=tmp_path)
    assert conf.stats["totals"]["rejects_by_reason"].get("media_outside_root", 0) > 0
    assert conf.candidates.equals(conf_slow.candidates) and conf.rejects == conf_slow.rejects


def test_uid_collisions_deterministic(tmp_path):
    row = {"id": "same", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    a = tmp_path / "a.jsonl"
    a.write_bytes((orjson.dumps(row) + b"\n") * 3)
    b = tmp_path / "b.jsonl"
    b.write_bytes(orjson.dumps(row) + b"\n")
    res = ingest([a, b], probe_media=False)
    assert res.candidates.column("uid").to_pylist() == ["ov::same::t0", "ov::same::t0#2", "ov::same::t0#3",
                                                        "ov::same::t0#4"]
    assert res.stats["uid_collisions"] == 3
    assert res.candidates.column("file_index").to_pylist() == [0, 0, 0, 1]


def test_write_ingest_atomic_and_deterministic(tmp_path):
    p = tmp_path / "p.jsonl"
    _random_pool(p, 300, seed=3)
    for d in ("o1", "o2"):
        write_ingest(ingest([p], probe_media=False), tmp_path / d)
    for name in ("candidates.parquet", "rejects.jsonl", "ingest.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    assert not list((tmp_path / "o1").glob(".*tmp"))
    with pytest.raises(FileNotFoundError):
        read_candidates(tmp_path / "nothing")
