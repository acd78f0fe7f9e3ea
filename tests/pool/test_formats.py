"""Readers and auto-detection for every supported pool format (hand-made files; real ones in test_ingest)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gdo.pool import formats as F
from gdo.pool.ingest import ingest

MEDIA = Path(__file__).parents[1] / "data" / "bad_inputs" / "media"


def _jsonl(path: Path, rows: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _msgs(*turns, role=("user", "assistant"), key=("role", "content")):
    out = []
    for q, a in turns:
        out.append({key[0]: role[0], key[1]: q})
        out.append({key[0]: role[1], key[1]: a})
    return out


def _cands(res):
    return res.candidates.to_pylist()


def test_llava_onevision_jsonl(tmp_path):
    rows = [{"id": "ov-1", "images": ["img.png"], "data_source": "sharegpt4v(coco)",
             "messages": _msgs(("<image>\nWhat is this?", "A test image."), ("Colour?", "Mixed."))},
            {"id": 7, "images": [], "data_source": "text", "messages": _msgs(("Hi?", "Hello."))}]
    p = _jsonl(tmp_path / "ov.jsonl", rows)
    for fp in (True, False):
        res = ingest([p], media_root=MEDIA, probe_media=fp)
        c = _cands(res)
        assert [x["uid"] for x in c] == ["ov::ov-1::t0", "ov::ov-1::t1", "ov::7::t0"]
        assert res.stats["files"][str(p)]["format"] == "llava_ov"
        assert [x["question"] for x in c] == ["What is this?", "Colour?", "Hi?"]
        assert [x["media_kind"] for x in c] == ["image", "image", "none"]
        assert [x["n_frames"] for x in c] == [1, 1, 0]
        assert c[0]["media"] == [str(MEDIA / "img.png")] and c[0]["media_raw"] == ["img.png"]
        assert [x["bucket"] for x in c] == ["image_qa"] * 3
        assert c[0]["data_source"] == "sharegpt4v(coco)" and c[0]["line"] == 1 and c[2]["line"] == 2
        assert [x["user_msg"] for x in c] == [0, 2, 0] and [x["asst_msg"] for x in c] == [1, 3, 1]
        assert [x["pool_pos"] for x in c] == [0, 1, 2]


def test_llava_video_jsonl_frames_and_file(tmp_path):
    frames = [f"vid/{i:03d}.jpg" for i in range(40)]
    rows = [{"id": "v1", "video_id": "abc", "images": frames, "data_source": "0_30_s_academic",
             "conversations": _msgs(("<image>\nWhat happens first?", "He sits."), ("Then?", "He stands."),
                                    role=("human", "gpt"), key=("from", "value"))},
            {"id": "v2", "video": "clip.mp4", "images": "clip.mp4", "messages": _msgs(("<image>What?", "Bars."))}]
    p = _jsonl(tmp_path / "lv.jsonl", rows)
    res = ingest([p], media_root=MEDIA, probe_media=False)
    c = _cands(res)
    assert res.stats["files"][str(p)]["format"] == "llava_video"
    assert [x["uid"] for x in c] == ["vv::v1::t0", "vv::v1::t1", "vv::v2::t0"]
    assert [x["bucket"] for x in c] == ["short_video"] * 3
    assert c[0]["media_kind"] == "frames" and len(c[0]["media"]) == 40 and c[0]["media"][3] == str(MEDIA / "vid/003.jpg")
    assert (c[0]["native_frames"], c[0]["n_frames"]) == (40, 32)
    assert c[0]["video_key"] == c[1]["video_key"] and c[0]["video_key"].startswith("frames:")
    assert c[2]["media_kind"] == "video" and c[2]["native_frames"] is None
    # probing reads the video header; the frame list's frames are missing -> that row is rejected
    res2 = ingest([p], media_root=MEDIA)
    assert [r["reason"] for r in res2.rejects] == ["missing_media"]
    assert _cands(res2)[0]["native_frames"] == 16


def test_llava_json_conversations(tmp_path):
    rows = [{"id": "a", "image": "img.png", "conversations": _msgs(("<image>\nDescribe.", "Pixels."),
                                                                   role=("human", "gpt"), key=("from", "value"))},
            {"id": "b", "image": ["img.png", "img.png"],
             "conversations": [{"from": "human", "value": "<image>\n<image>\nSame?"}, {"from": "gpt", "value": "Yes."}]},
            {"id": "c", "video": "clip.mp4", "conversations": [{"from": "human", "value": "<video>\nWhat?"},
                                                               {"from": "gpt", "value": "Bars."}]}]
    p = tmp_path / "llava.json"
    p.write_text(json.dumps(rows))
    res = ingest([p], media_root=MEDIA)
    c = _cands(res)
    assert res.stats["files"][str(p)]["format"] == "llava" and not res.rejects
    assert [x["uid"] for x in c] == ["ov::a::t0", "ov::b::t0", "vv::c::t0"]
    assert c[1]["n_frames"] == 2 and len(c[1]["media"]) == 2 and c[1]["question"] == "Same?"
    assert [x["line"] for x in c] == [1, 2, 3]
    assert c[2]["native_frames"] == 16 and c[2]["video_key"] == str(MEDIA / "clip.mp4")


def test_sharegpt_positional_tokens(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "<image>First?"}, {"role": "assistant", "content": "One."},
                          {"role": "user", "content": "Second? <image>"}, {"role": "assistant", "content": "Two."},
                          {"role": "user", "content": "Both?"}, {"role": "assistant", "content": "Yes."}],
             "images": ["img.png", "frame_4k.jpg"]},
            {"messages": _msgs(("<video>What?", "Bars.")), "videos": ["clip.mp4"]}]
    p = _jsonl(tmp_path / "sg.jsonl", rows)
    res = ingest([p], media_root=MEDIA)
    c = _cands(res)
    assert res.stats["files"][str(p)]["format"] == "sharegpt"
    rid = c[0]["row_id"]
    assert rid.startswith("h") and len(rid) == 17  # content-derived id
    assert [x["uid"] for x in c[:3]] == [f"ov::{rid}::t{k}" for k in range(3)]
    assert [x["media_raw"] for x in c[:3]] == [["img.png"], ["frame_4k.jpg"], ["img.png", "frame_4k.jpg"]]
    assert [x["user_msg"] for x in c[:3]] == [1, 3, 5]
    assert c[3]["uid"].startswith("vv::") and c[3]["media_kind"] == "video"
    # stable: same content, same id on a rerun
    assert _cands(ingest([p], media_root=MEDIA))[0]["row_id"] == rid


def test_openai_content_list(tmp_path):
    rows = [{"messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "img.png"}},
                                     {"type": "text", "text": "What?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A gradient."}]},
        {"role": "user", "content": [{"type": "text", "text": "And this"}, {"type": "video", "video": "clip.mp4"}]},
        {"role": "assistant", "content": "Bars."}]}]
    p = _jsonl(tmp_path / "oa.jsonl", rows)
    res = ingest([p], media_root=MEDIA)
    c = _cands(res)
    assert res.stats["files"][str(p)]["format"] == "openai_content"
    assert [(x["media_kind"], x["media_raw"]) for x in c] == [("image", ["img.png"]), ("video", ["clip.mp4"])]
    assert c[0]["uid"].startswith("vv::") and c[0]["bucket"] == "short_video"  # row has a video
    assert [x["question"] for x in c] == ["What?", "And this"]


def test_parquet_and_hf_dataset(tmp_path):
    rows = [{"id": f"p{i}", "images": ["img.png"], "data_source": "s",
             "messages": _msgs((f"<image>Q{i}?", f"A{i}."))} for i in range(5)]
    t = pa.Table.from_pylist(rows)
    pq.write_table(t, tmp_path / "pool.parquet")
    hf = tmp_path / "hf"
    hf.mkdir()
    with pa.OSFile(str(hf / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (hf / "dataset_info.json").write_text("{}")
    for src in (tmp_path / "pool.parquet", hf):
        res = ingest([src], media_root=MEDIA)
        c = _cands(res)
        assert [x["uid"] for x in c] == [f"ov::p{i}::t0" for i in range(5)]
        assert [x["line"] for x in c] == [1, 2, 3, 4, 5] and c[4]["question"] == "Q4?"
        assert res.stats["files"][str(src)]["container"] == ("parquet" if src.suffix else "hf_dataset")
    assert F.detect_container(hf) == "hf_dataset"


def test_detection_and_override(tmp_path):
    obj = tmp_path / "obj.json"
    obj.write_text(json.dumps({"data": [1, 2]}, indent=2))
    with pytest.raises(F.FormatError):
        F.detect_container(obj)
    jl = _jsonl(tmp_path / "rows.json", [{"id": "x", "messages": _msgs(("q", "a"))}])  # JSONL named .json
    assert F.detect_container(jl) == "jsonl"
    assert F.detect_row_format([{"conversations": [{"from": "human", "value": "q"}]}]) == "llava"
    assert F.detect_row_format([{"x": 1}]) is None
    # --format forces llava_video: a list of images becomes one frame list
    p = _jsonl(tmp_path / "f.jsonl", [{"id": "r", "images": ["a.jpg", "b.jpg"], "messages": _msgs(("q", "a"))}])
    assert _cands(ingest([p], probe_media=False))[0]["media_kind"] == "image"
    forced = _cands(ingest([p], probe_media=False, fmt="llava_video"))
    assert forced[0]["media_kind"] == "frames" and forced[0]["uid"] == "vv::r::t0"
    with pytest.raises(ValueError):
        ingest([p], fmt="nope")
    # a JSONL file whose rows have no conversation at all: unknown format (file-level reject)
    q = _jsonl(tmp_path / "other.jsonl", [{"a": 1}, {"b": 2}])
    res = ingest([q])
    assert [(r["level"], r["reason"]) for r in res.rejects] == [("file", "unknown_format")]


def test_jsonl_ranges_cover_file(tmp_path):
    p = _jsonl(tmp_path / "r.jsonl", [{"id": str(i), "pad": "x" * (i % 97)} for i in range(30000)])
    ranges = F.jsonl_ranges(p, 4)
    assert len(ranges) == 4 and ranges[0][0] == 0 and ranges[-1][1] == p.stat().st_size
    lines = [ln for a, b, first in ranges for ln, _, _ in F.iter_jsonl(p, a, b, first)]
    assert lines == list(range(1, 30001))


def test_byte_order_mark(tmp_path):
    row = orjson.dumps({"id": "b", "messages": _msgs(("q", "a"))})
    (tmp_path / "b.jsonl").write_bytes(b"\xef\xbb\xbf" + row + b"\n" + row.replace(b'"b"', b'"c"') + b"\n")
    (tmp_path / "b.json").write_bytes(b"\xef\xbb\xbf[" + row + b"]")
    res = ingest([tmp_path / "b.jsonl", tmp_path / "b.json"], probe_media=False)
    assert res.candidates.column("uid").to_pylist() == ["ov::b::t0", "ov::c::t0", "ov::b::t0#2"]
    assert res.rejects == []


def test_llava_video_178k_shape_with_image_token(tmp_path):
    """LLaVA-Video-178K writes ``<image>`` for its video file; a ``<video>`` token for an image is a mismatch."""
    rows = [{"id": "v_abc", "video": "clip.mp4", "data_source": "0_30_s_youtube_v0_1",
             "conversations": [{"from": "human", "value": "<image>\nWhat happens first?"},
                               {"from": "gpt", "value": "A bar grows."},
                               {"from": "human", "value": "Then?"}, {"from": "gpt", "value": "Green rises."}]},
            {"id": "bad", "image": "img.png", "conversations": [{"from": "human", "value": "<video>\nWhat?"},
                                                                {"from": "gpt", "value": "x"}]}]
    p = _jsonl(tmp_path / "lv178k.jsonl", rows)
    res = ingest([p], media_root=MEDIA)
    c = _cands(res)
    assert [x["uid"] for x in c] == ["vv::v_abc::t0", "vv::v_abc::t1"]
    assert [x["native_frames"] for x in c] == [16, 16] and c[0]["question"] == "What happens first?"
    assert [(r["line"], r["reason"]) for r in res.rejects] == [(2, "media_token_mismatch")]
