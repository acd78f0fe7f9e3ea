"""Written subsets sample frame lists to at most T = 32 frames with the method's index rule
(issue 12 item 12, GDO_METHOD.md section 2), as the authors' release writes its subsets."""

from __future__ import annotations

import orjson

from gdo.pool.ingest import ingest
from gdo.pool.writer import write_row_sets, write_rows


def _release_rule(paths: list[str], target: int) -> list[str]:
    """The release's written-subset sampling (rujiewu/GDO gdo/build_pair.py ``sample_frames``),
    restated from its description: n <= target keeps all, else index round(i*(n-1)/(target-1))."""
    n = len(paths)
    if n <= target:
        return list(paths)
    return [paths[int(round(i * (n - 1) / (target - 1)))] for i in range(target)]


def _pool(tmp_path):
    frames = [f"frames/v1/{i:04d}.jpg" for i in range(200)]
    short = [f"frames/v2/{i:04d}.jpg" for i in range(20)]
    rows = [
        {"id": "v1", "video_id": "v1", "images": frames, "data_source": "s", "messages": [
            {"role": "user", "content": "<image>\nWhat happens first?"}, {"role": "assistant", "content": "A."},
            {"role": "user", "content": "And then?"}, {"role": "assistant", "content": "B."}]},
        {"id": "v2", "video_id": "v2", "images": short, "data_source": "s", "messages": [
            {"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "C."}]},
    ]
    p = tmp_path / "llava_video.jsonl"
    p.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    sg = {"id": "s1", "videos": [[f"f/{i}.png" for i in range(200)]], "messages": [
        {"role": "user", "content": "<video>Describe."}, {"role": "assistant", "content": "D."}]}
    q = tmp_path / "sharegpt.jsonl"
    q.write_bytes(orjson.dumps(sg) + b"\n")
    return p, q, frames, short, sg


def test_200_frame_row_is_written_with_32_frames(tmp_path):
    p, q, frames, short, sg = _pool(tmp_path)
    res = ingest([p, q], probe_media=False)
    assert res.stats["files"][str(p)]["format"] == "llava_video"
    uids = res.candidates.column("uid").to_pylist()
    assert uids == ["vv::v1::t0", "vv::v1::t1", "vv::v2::t0", "vv::s1::t0"]
    want = _release_rule(frames, 32)
    assert len(want) == 32 and want[0] == frames[0] and want[-1] == frames[-1] and want[1] == frames[6]
    # every turn (the verbatim path) and one turn (the rewrite path)
    for chosen in (uids, ["vv::v1::t1", "vv::v2::t0", "vv::s1::t0"]):
        out = tmp_path / "subset.jsonl"
        write_rows(res.candidates, chosen, out)
        recs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
        assert recs[0]["images"] == want
        assert recs[0]["messages"][0]["content"].count("<image>") == 1
        assert recs[1]["images"] == short  # 20 <= 32: all frames, row copied verbatim
        assert recs[2]["videos"] == [_release_rule(sg["videos"][0], 32)]
    assert out.read_bytes().splitlines()[1] == p.read_bytes().splitlines()[1]


def test_frames_none_keeps_every_frame_and_sets_agree(tmp_path):
    p, q, frames, _, sg = _pool(tmp_path)
    res = ingest([p, q], probe_media=False)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_rows(res.candidates, ["vv::v1::t0"], a, frames=None)
    assert orjson.loads(a.read_bytes())["images"] == frames
    write_rows(res.candidates, ["vv::v1::t0"], a, frames=8)
    assert orjson.loads(a.read_bytes())["images"] == _release_rule(frames, 8)
    # the baseline written in the same pass gets the same sampling
    write_row_sets(res.candidates, [([0], a), ([0, 3], b)])
    assert orjson.loads(a.read_bytes())["images"] == _release_rule(frames, 32)
    rb = [orjson.loads(x) for x in b.read_bytes().splitlines()]
    assert rb[0]["images"] == _release_rule(frames, 32) and rb[1]["videos"] == [_release_rule(sg["videos"][0], 32)]
