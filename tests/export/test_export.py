"""Trainer exports (ms-swift, LLaMA-Factory, LLaVA) round-trip through gdo's own readers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from gdo.export import EXPORTERS, export
from gdo.pool.ingest import ingest

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
POOL_FILES = sorted(str(p) for p in POOL.glob("*.json*"))


def _key(t: pa.Table) -> list[tuple]:
    cols = {c: t.column(c).to_pylist() for c in ("question", "answer", "media_kind", "media", "bucket")}
    return sorted(zip(cols["question"], cols["answer"], cols["media_kind"], map(tuple, cols["media"]), cols["bucket"]))


@pytest.fixture(scope="module")
def pool() -> pa.Table:
    res = ingest(POOL_FILES)
    assert res.rejects == []
    return res.candidates


def test_pool_has_every_media_kind(pool):
    kinds = set(pool.column("media_kind").to_pylist())
    assert {"image", "video", "frames"} <= kinds


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_round_trip_gives_same_candidates(pool, tmp_path, fmt):
    files = export(pool, tmp_path, fmt, name="subset")
    data_files = [f for f in files if f.name != "dataset_info.json"]
    back = ingest([str(f) for f in data_files])
    assert back.rejects == [], back.rejects[:3]
    assert back.candidates.num_rows == pool.num_rows
    assert _key(back.candidates) == _key(pool)


def test_uids_select_and_order(pool, tmp_path):
    uids = pool.column("uid").to_pylist()[::-1][:5]
    (path,) = export(pool, tmp_path, "llava", uids=uids, name="pick")
    recs = json.loads(path.read_text(encoding="utf-8"))
    assert [r["id"] for r in recs] == uids


def test_swift_layout_videos_stay_videos(pool, tmp_path):
    files = export(pool, tmp_path, "swift")
    main = [json.loads(x) for x in files[0].read_text(encoding="utf-8").splitlines()]
    frames = [json.loads(x) for x in files[1].read_text(encoding="utf-8").splitlines()]
    kinds = pool.column("media_kind").to_pylist()
    assert len(main) == sum(k != "frames" for k in kinds)
    assert len(frames) == kinds.count("frames")
    for r in main:
        user = r["messages"][0]["content"]
        assert user.count("<image>") == len(r["images"])
        assert user.count("<video>") == len(r["videos"]) <= 1
        assert all(isinstance(v, str) and v.endswith((".mp4", ".avi")) for v in r["videos"])
    for r in frames:
        # one video entry that is the list of frames, one <video> token: not n copies of <image>
        assert r["messages"][0]["content"].count("<video>") == 1
        assert "<image>" not in r["messages"][0]["content"]
        assert len(r["videos"]) == 1 and isinstance(r["videos"][0], list) and len(r["videos"][0]) == 16
        assert r["images"] == []


def test_llamafactory_dataset_info(pool, tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "x.json"}}))
    files = export(pool, tmp_path, "llamafactory", name="subset")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"mine", "gdo_subset", "gdo_subset_frames"}
    for key in ("gdo_subset", "gdo_subset_frames"):
        entry = info[key]
        assert entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "messages", "images": "images", "videos": "videos"}
        assert (tmp_path / entry["file_name"]).exists()
    recs = json.loads(files[0].read_text(encoding="utf-8"))
    assert all(r["messages"][0]["role"] == "user" and r["messages"][1]["role"] == "assistant" for r in recs)


def test_llava_layout(pool, tmp_path):
    (path,) = export(pool, tmp_path, "llava")
    recs = json.loads(path.read_text(encoding="utf-8"))
    assert len({r["id"] for r in recs}) == len(recs) == pool.num_rows
    kinds = dict(zip(pool.column("uid").to_pylist(), pool.column("media_kind").to_pylist()))
    for r in recs:
        conv = r["conversations"]
        assert [c["from"] for c in conv] == ["human", "gpt"]
        if kinds[r["id"]] == "video":
            assert isinstance(r["video"], str) and "image" not in r
            assert conv[0]["value"].count("<image>") == 1
        elif kinds[r["id"]] == "frames":
            assert r["video_id"] and isinstance(r["image"], list) and len(r["image"]) == 16
            assert conv[0]["value"].count("<image>") == 1


def test_relative_paths(pool, tmp_path):
    (path,) = export(pool, tmp_path, "llava", relative_paths=True)
    recs = json.loads(path.read_text(encoding="utf-8"))
    for r in recs:
        for p in ([r["image"]] if isinstance(r.get("image"), str) else r.get("image", [])) + [r.get("video")]:
            if p:
                assert not Path(p).is_absolute()
                assert (tmp_path / p).resolve().exists()


def test_errors(pool, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export(pool, tmp_path, "alpaca")
    with pytest.raises(ValueError, match="not in the candidates"):
        export(pool, tmp_path, "swift", uids=["ov::nope::t0"])
    with pytest.raises(ValueError, match="lacks column"):
        export(pool.drop_columns(["answer"]), tmp_path, "swift")


def test_text_only_and_multi_image_round_trip(tmp_path):
    img = [str(POOL / "mllm_demo_data/1.jpg"), str(POOL / "mllm_demo_data/2.jpg")]
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        json.dumps({"messages": [{"role": "user", "content": "What is 2+2?"},
                                 {"role": "assistant", "content": "4"}]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "<image><image>Which photo shows a slide?"},
                                   {"role": "assistant", "content": "The second one."}], "images": img}) + "\n")
    pool = ingest([str(src)]).candidates
    assert sorted(pool.column("media_kind").to_pylist()) == ["image", "none"]
    for fmt in sorted(EXPORTERS):
        out = tmp_path / fmt
        files = [f for f in export(pool, out, fmt) if f.name != "dataset_info.json"]
        back = ingest([str(f) for f in files])
        assert back.rejects == []
        assert _key(back.candidates) == _key(pool)
    rec = json.loads((tmp_path / "swift" / "subset.swift.jsonl").read_text().splitlines()[1])
    assert rec["messages"][0]["content"].startswith("<image><image>") and rec["images"] == img
