"""Trainer exports (ms-swift, LLaMA-Factory, LLaVA): one file per set that the trainers load and
concatenate with ``datasets``, uids in every record, system prompts and context turns kept, frame
lists sampled to at most 32 frames with the method's index rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gdo.export import EXPORTERS, export
from gdo.export._common import FRAME_LIST_FPS, UID_FIELD
from gdo.pool.ingest import ingest

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
POOL_FILES = sorted(str(p) for p in POOL.glob("*.json*"))


@pytest.fixture(scope="module")
def pool() -> pa.Table:
    res = ingest(POOL_FILES)
    assert res.rejects == []
    return res.candidates


def _lines(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]


def _records(p: Path) -> list[dict]:
    return _lines(p) if p.suffix == ".jsonl" else json.loads(p.read_text(encoding="utf-8"))


def test_pool_has_every_media_kind(pool):
    kinds = set(pool.column("media_kind").to_pylist())
    assert {"image", "video", "frames"} <= kinds


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_one_file_per_set_with_every_uid(pool, tmp_path, fmt):
    uids = pool.column("uid").to_pylist()
    files = [f for f in export(pool, tmp_path, fmt, name="subset") if f.name != "dataset_info.json"]
    assert len(files) == 1
    recs = _records(files[0])
    key = "id" if fmt == "llava" else UID_FIELD
    assert [r[key] for r in recs] == uids


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_round_trip_through_gdo_reader(pool, tmp_path, fmt):
    """Each export reads back through gdo's ingest to the same (question, answer) pairs; images and
    video files keep their paths; frame lists come back as a video (swift, llamafactory: the MP4)
    or a frame list (llava)."""
    files = [str(f) for f in export(pool, tmp_path, fmt, name="subset") if f.name != "dataset_info.json"]
    back = ingest(files)
    assert back.rejects == [], back.rejects[:3]
    assert back.candidates.num_rows == pool.num_rows

    def pairs(t):
        return sorted(zip(t.column("question").to_pylist(), t.column("answer").to_pylist()))

    assert pairs(back.candidates) == pairs(pool)
    orig = {(q, a): (k, tuple(m)) for q, a, k, m in zip(*(pool.column(c).to_pylist() for c in
                                                           ("question", "answer", "media_kind", "media")))}
    for q, a, k, m in zip(*(back.candidates.column(c).to_pylist() for c in ("question", "answer", "media_kind", "media"))):
        ok, om = orig[(q, a)]
        if ok in ("image", "video"):
            assert (k, tuple(m)) == (ok, om)
        else:
            assert ok == "frames" and k == ("frames" if fmt == "llava" else "video")


# ---------------------------------------------------------------- load as the trainers do
def _swift_load(path: Path):
    """ms-swift: ``load_dataset(<ext>, data_files=path, split="train")`` then keep only its standard
    keys (RowPreprocessor.remove_useless_columns) -- gdo_uid is dropped."""
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(path), split="train")
    assert isinstance(ds[0]["videos"], list) and isinstance(ds[0]["images"], list)
    return ds.select_columns([c for c in ("messages", "images", "videos") if c in ds.column_names])


def _llamafactory_load(out: Path, name: str):
    """LLaMA-Factory: dataset_info.json entry -> ``load_dataset("json", data_files=[file])`` -> the
    sharegpt converter (columns renamed per the entry, every original column removed)."""
    from datasets import load_dataset

    entry = json.loads((out / "dataset_info.json").read_text())[name]
    assert entry["formatting"] == "sharegpt"
    ds = load_dataset("json", data_files=[str(out / entry["file_name"])], split="train")
    cols, tags = entry["columns"], entry["tags"]

    def medias(v):
        return None if not v else (v if isinstance(v, list) else [v])

    def convert(ex):
        msgs = ex[cols["messages"]]
        system = ""
        if msgs and msgs[0][tags["role_tag"]] == tags["system_tag"]:
            system, msgs = msgs[0][tags["content_tag"]], msgs[1:]
        roles = [m[tags["role_tag"]] for m in msgs]
        assert roles == [tags["user_tag"], tags["assistant_tag"]] * (len(msgs) // 2)
        conv = [{"role": r, "content": m[tags["content_tag"]]} for r, m in zip(roles, msgs)]
        return {"_prompt": conv[:-1], "_response": conv[-1:], "_system": system, "_tools": "",
                "_images": medias(ex[cols["images"]]), "_videos": medias(ex[cols["videos"]])}

    return ds.map(convert, remove_columns=ds.column_names)


def _split(pool):
    """subset: a mix of every media kind incl. frame lists; baseline: the rest plus some overlap."""
    uids = pool.column("uid").to_pylist()
    kinds = pool.column("media_kind").to_pylist()
    subset = [u for i, u in enumerate(uids) if i % 2 == 0 or kinds[i] == "frames"]
    baseline = [u for i, u in enumerate(uids) if i % 3 != 0]
    return subset, baseline


def test_swift_subset_and_baseline_load_and_concatenate(pool, tmp_path):
    from datasets import concatenate_datasets

    subset, baseline = _split(pool)
    (fs,) = export(pool, tmp_path, "swift", uids=subset, name="subset")
    (fb,) = export(pool, tmp_path, "swift", uids=baseline, name="baseline")
    both = concatenate_datasets([_swift_load(fs), _swift_load(fb)])
    assert len(both) == len(subset) + len(baseline)
    n_video = sum(1 for r in both if r["videos"])
    kinds = dict(zip(pool.column("uid").to_pylist(), pool.column("media_kind").to_pylist()))
    assert n_video == sum(kinds[u] in ("video", "frames") for u in subset + baseline)
    for r in both:
        user = r["messages"][0]["content"]
        assert user.count("<image>") == len(r["images"]) and user.count("<video>") == len(r["videos"]) <= 1
        for p in r["images"] + r["videos"]:
            assert Path(p).is_file(), p


def test_llamafactory_subset_and_baseline_load_and_concatenate(pool, tmp_path):
    from datasets import concatenate_datasets

    subset, baseline = _split(pool)
    export(pool, tmp_path, "llamafactory", uids=subset, name="subset")
    export(pool, tmp_path, "llamafactory", uids=baseline, name="baseline")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"gdo_subset", "gdo_baseline"}
    both = concatenate_datasets([_llamafactory_load(tmp_path, "gdo_subset"),
                                 _llamafactory_load(tmp_path, "gdo_baseline")])
    assert len(both) == len(subset) + len(baseline)
    vids = [v for r in both for v in (r["_videos"] or [])]
    assert vids and all(isinstance(v, str) and Path(v).is_file() for v in vids)
    assert any(v.endswith(".mp4") and "/videos/frames_" in v for v in vids)  # the frame lists


def test_demo_run_exports_load_and_concatenate(tmp_path):
    """`gdo run --export swift --export llamafactory --export llava` on the demo pool: every export
    of the run folder loads (and subset + baseline concatenate) the way each trainer reads it."""
    from datasets import concatenate_datasets

    from gdo.run import run

    r = run(POOL_FILES, tmp_path / "run", preset="temp_plus", exports=["swift", "llamafactory", "llava"],
            budget="12", progress=False, thumbnails=False, descriptors=["fields", "dedup"])
    ex = tmp_path / "run" / "exports"
    names = sorted(p.name for p in ex.iterdir() if p.is_file())
    assert names == ["baseline.llamafactory.json", "baseline.llava.json", "baseline.swift.jsonl",
                     "dataset_info.json", "subset.llamafactory.json", "subset.llava.json", "subset.swift.jsonl"]
    sw = concatenate_datasets([_swift_load(ex / "subset.swift.jsonl"), _swift_load(ex / "baseline.swift.jsonl")])
    lf = concatenate_datasets([_llamafactory_load(ex, "gdo_subset"), _llamafactory_load(ex, "gdo_baseline")])
    n = len(r.subset_uids) + len(r.baseline_uids)
    assert len(sw) == len(lf) == n
    llava = json.loads((ex / "subset.llava.json").read_text()) + json.loads((ex / "baseline.llava.json").read_text())
    assert [x["id"] for x in llava] == list(r.subset_uids) + list(r.baseline_uids)
    sel = {json.loads(x)["uid"] for x in (tmp_path / "run" / "selection.jsonl").read_text().splitlines()}
    assert {x["id"] for x in llava} <= sel
    assert [x[UID_FIELD] for x in _lines(ex / "subset.swift.jsonl")] == list(r.subset_uids)


# ---------------------------------------------------------------- frame sampling (issue 12 item 12)
def test_200_frame_row_is_sampled_to_32_frames_in_every_export(tmp_path):
    from PIL import Image

    fdir = tmp_path / "frames"
    fdir.mkdir()
    for i in range(200):  # frame i is a flat grey of level i: the decoded level names the frame
        Image.fromarray(np.full((32, 48, 3), i, np.uint8)).save(fdir / f"{i:03d}.png")
    row = {"id": "long", "video_id": "long_video", "images": [f"frames/{i:03d}.png" for i in range(200)],
           "conversations": [{"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": "It fades."}]}
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps(row) + "\n")
    cands = ingest([str(src)]).candidates
    assert cands.column("media_kind").to_pylist() == ["frames"] and len(cands.column("media")[0].as_py()) == 200
    # the index rule written out independently: round(i * 199 / 31), Python's round (half to even)
    want = [round(i * 199 / 31) for i in range(32)]
    assert len(set(want)) == 32 and want[0] == 0 and want[-1] == 199

    (lv,) = export(cands, tmp_path / "llava", "llava")
    rec = json.loads(lv.read_text())[0]
    assert rec["image"] == [str(fdir / f"{i:03d}.png") for i in want]

    import av

    for fmt in ("swift", "llamafactory"):
        f = export(cands, tmp_path / fmt, fmt)[0]
        (video,) = _records(f)[0]["videos"]
        with av.open(video) as c:
            st = c.streams.video[0]
            assert float(st.average_rate) == FRAME_LIST_FPS
            levels = [float(fr.to_ndarray(format="gray").mean()) for fr in c.decode(video=0)]
        assert len(levels) == 32
        assert np.abs(np.asarray(levels) - np.asarray(want, float)).max() < 3.0, levels


# ---------------------------------------------------------------- system prompts and context
def _multi_turn_pool(tmp_path) -> pa.Table:
    img = str(POOL / "mllm_demo_data/1.jpg")
    src = tmp_path / "chat.jsonl"
    src.write_text(
        json.dumps({"messages": [{"role": "system", "content": "You are a sports commentator."},
                                 {"role": "user", "content": "<image>Who are they?"},
                                 {"role": "assistant", "content": "Kane and Gretzka."},
                                 {"role": "user", "content": "What are they doing?"},
                                 {"role": "assistant", "content": "Celebrating."}], "images": [img]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "What is 2+2?"},
                                   {"role": "assistant", "content": "4"}]}) + "\n")
    return ingest([str(src)]).candidates


@pytest.mark.parametrize("fmt", ["swift", "llamafactory"])
def test_system_prompt_kept_and_context_turns(tmp_path, fmt):
    cands = _multi_turn_pool(tmp_path)
    uids = cands.column("uid").to_pylist()
    assert len(uids) == 3
    t1 = [u for u in uids if u.endswith("::t1")][0]
    plain = _records(export(cands, tmp_path / "a", fmt, uids=[t1])[0])[0]
    assert [m["role"] for m in plain["messages"]] == ["system", "user", "assistant"]
    assert plain["messages"][0]["content"] == "You are a sports commentator."
    assert plain["messages"][1]["content"] == "<image>What are they doing?" and plain["images"]
    ctx = _records(export(cands, tmp_path / "b", fmt, uids=[t1], context=True)[0])[0]
    assert [(m["role"], m["content"]) for m in ctx["messages"]] == [
        ("system", "You are a sports commentator."), ("user", "<image>Who are they?"),
        ("assistant", "Kane and Gretzka."), ("user", "What are they doing?"), ("assistant", "Celebrating.")]
    text_only = _records(export(cands, tmp_path / "c", fmt, uids=[uids[-1]])[0])[0]
    assert text_only["messages"][0] == {"role": "user", "content": "What is 2+2?"}
    assert text_only["images"] == [] and text_only["videos"] == []


def test_llava_system_and_context(tmp_path):
    cands = _multi_turn_pool(tmp_path)
    t1 = [u for u in cands.column("uid").to_pylist() if u.endswith("::t1")][0]
    rec = json.loads(export(cands, tmp_path, "llava", uids=[t1], context=True)[0].read_text())[0]
    assert rec["system"] == "You are a sports commentator."
    assert [(c["from"], c["value"]) for c in rec["conversations"]] == [
        ("human", "<image>\nWho are they?"), ("gpt", "Kane and Gretzka."),
        ("human", "What are they doing?"), ("gpt", "Celebrating.")]


def test_relative_paths(pool, tmp_path):
    for fmt in ("llava", "swift"):
        f = export(pool, tmp_path, fmt, relative_paths=True)[0]
        for r in _records(f):
            paths = r.get("images", []) + r.get("videos", []) if fmt == "swift" else \
                ([r["image"]] if isinstance(r.get("image"), str) else r.get("image", [])) + [r.get("video")]
            for p in paths:
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
