"""Media: GDO sampling rule, path confinement, probing, decoding, frame folders vs videos, cache, memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson
import pytest

from gdo.pool.ingest import ingest
from gdo.media import (FrameCache, MediaError, decode_video, list_frame_folder, load_frames, probe_video,
                            resolve_media, sample_indices)

CORPUS = Path(__file__).parents[1] / "data" / "bad_inputs"
BEDROOM = "facebookresearch__sam2/notebooks/videos/bedroom"


# ---------------------------------------------------------------- sampling rule (section 2)
def test_sample_indices_rule():
    assert sample_indices(10, 32) == list(range(10))
    assert sample_indices(32, 32) == list(range(32))
    idx = sample_indices(200, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 199
    assert idx == [round(i * 199 / 31) for i in range(32)]
    # half-to-even: n=4, T=3 -> positions 0, 1.5, 3 -> round(1.5) == 2
    assert sample_indices(4, 3) == [0, 2, 3]
    # n=6, T=5: positions 0, 1.25, 2.5, 3.75, 5 -> 2.5 rounds to 2 (even)
    assert sample_indices(6, 5) == [0, 1, 2, 4, 5]
    assert sample_indices(0, 32) == []
    assert sample_indices(50, 1) == [0]
    with pytest.raises(ValueError):
        sample_indices(-1, 32)


# ---------------------------------------------------------------- confinement (issue 8 item 4)
def test_resolve_media_confinement(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"x")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"s")
    assert resolve_media("a/x.jpg", tmp_path, root) == root / "a" / "x.jpg"
    assert resolve_media("a/../a/x.jpg", tmp_path, root) == root / "a" / "x.jpg"
    assert resolve_media(str(root / "a" / "x.jpg"), tmp_path, root) == root / "a" / "x.jpg"
    for bad in ("../secret.jpg", "a/../../secret.jpg", str(outside), "/etc/passwd"):
        with pytest.raises(MediaError) as e:
            resolve_media(bad, tmp_path, root)
        assert e.value.reason == "media_outside_root"
    os.symlink(outside, root / "a" / "link.jpg")
    os.symlink(tmp_path, root / "dirlink")
    for bad in ("a/link.jpg", "dirlink/secret.jpg"):
        with pytest.raises(MediaError) as e:
            resolve_media(bad, tmp_path, root)
        assert e.value.reason == "media_outside_root"
    # lexical-only mode touches no file: the link is not followed
    assert resolve_media("a/link.jpg", tmp_path, root, check_links=False) == root / "a" / "link.jpg"
    # without a media root, paths resolve against the base folder and are not confined
    assert resolve_media("../secret.jpg", root, None) == outside


def test_ingest_rejects_media_outside_root(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    img = CORPUS / "media" / "img.png"
    (root / "ok.png").write_bytes(img.read_bytes())
    (tmp_path / "outside.png").write_bytes(img.read_bytes())
    os.symlink(tmp_path / "outside.png", root / "link.png")
    os.symlink(tmp_path, root / "up")
    rows = [("ok", "ok.png"), ("dotdot", "../outside.png"), ("abs", str(tmp_path / "outside.png")),
            ("link", "link.png"), ("dirlink", "up/outside.png"), ("frames", ["ok.png", "../outside.png"])]
    with open(tmp_path / "pool.jsonl", "wb") as f:
        for rid, m in rows:
            rec = {"id": rid, "messages": [{"role": "user", "content": "<image>q"},
                                           {"role": "assistant", "content": "a"}]}
            if isinstance(m, list):
                rec["video_id"] = rid
            rec["images"] = m if isinstance(m, list) else [m]
            f.write(orjson.dumps(rec) + b"\n")
    res = ingest([tmp_path / "pool.jsonl"], media_root=root)
    assert res.candidates.column("row_id").to_pylist() == ["ok"]
    assert {r["line"]: r["reason"] for r in res.rejects} == {i: "media_outside_root" for i in range(2, 7)}
    # without probing, lexical escapes are still caught (symlinks are not followed: no file is touched)
    res2 = ingest([tmp_path / "pool.jsonl"], media_root=root, probe_media=False)
    assert res2.candidates.column("row_id").to_pylist() == ["ok", "link", "dirlink"]
    assert sorted(r["line"] for r in res2.rejects) == [2, 3, 6]


# ---------------------------------------------------------------- probing and decoding
def test_probe_and_decode_real_video(real_data):
    p = real_data / "hiyouga__LLaMA-Factory/data/mllm_demo_data/2.avi"
    info = probe_video(p)
    assert info.native_frames == 270 and info.width == 320 and info.height == 240
    assert info.fps == pytest.approx(29.92, abs=0.01)
    arr = load_frames("video", [str(p)], frames=8)
    assert arr.shape == (8, 240, 320, 3) and arr.dtype == np.uint8
    # the frames are the sampled indices of a full decode
    idx = sample_indices(270, 8)
    dv = decode_video(p, frames=8)
    assert dv.indices == idx and np.array_equal(dv.frames, arr)  # constant frame rate: the index rule
    assert dv.decoded_frames == 270 and dv.flags == () and dv.rotation == 0
    sub = decode_video(p, indices=[idx[1], idx[5]]).frames
    assert np.array_equal(sub[0], arr[1]) and np.array_equal(sub[1], arr[5])


def test_probe_errors(tmp_path):
    with pytest.raises(MediaError) as e:
        probe_video(tmp_path / "nope.mp4")
    assert e.value.reason == "missing_media"
    for name in ("zero.mp4", "truncated.mp4"):
        with pytest.raises(MediaError) as e:
            probe_video(CORPUS / "media" / name)
        assert e.value.reason == "corrupt_video"
    (tmp_path / "text.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError) as e:
        load_frames("video", [str(tmp_path / "text.mp4")])
    assert e.value.reason == "corrupt_video"


def test_frame_folder_matches_its_video(real_data):
    """bedroom/ holds frames 0, 10, ..., 190 of bedroom.mp4 (200 frames)."""
    folder = real_data / BEDROOM
    files = list_frame_folder(folder)
    assert len(files) == 20 and [Path(f).name for f in files] == sorted(os.listdir(folder))
    T = 8
    from_folder = load_frames("frames", [str(folder)], frames=T)
    assert from_folder.shape == (T, 540, 960, 3)
    # same sampling logic over the folder's 20 frames; frame j of the folder is video frame 10*j
    idx = sample_indices(20, T)
    from_video = decode_video(str(folder) + ".mp4", indices=[10 * i for i in idx]).frames
    diff = np.abs(from_folder.astype(np.int16) - from_video.astype(np.int16)).mean(axis=(1, 2, 3))
    assert diff.max() < 6.0  # JPEG vs decoded H.264 of the same frame
    shifted = decode_video(str(folder) + ".mp4", indices=[10 * i + 5 for i in idx]).frames
    diff_shift = np.abs(from_folder.astype(np.int16) - shifted.astype(np.int16)).mean(axis=(1, 2, 3))
    assert diff.mean() < diff_shift.mean()
    # a frame list of the files equals the folder
    assert np.array_equal(load_frames("frames", files, frames=T), from_folder)


def test_ingest_frame_folder_and_video(real_data, tmp_path):
    vid = real_data / (BEDROOM + ".mp4")
    rows = [{"id": "folder", "videos": [str(real_data / BEDROOM)]}, {"id": "video", "videos": [str(vid)]}]
    with open(tmp_path / "p.jsonl", "wb") as f:
        for r in rows:
            r["messages"] = [{"role": "user", "content": "<video>What is shown?"},
                             {"role": "assistant", "content": "A bedroom."}]
            f.write(orjson.dumps(r) + b"\n")
    t = ingest([tmp_path / "p.jsonl"]).candidates.to_pylist()
    assert [c["uid"] for c in t] == ["vv::folder::t0", "vv::video::t0"]
    assert (t[0]["media_kind"], t[0]["native_frames"], t[0]["n_frames"], len(t[0]["media"])) == ("frames", 20, 20, 20)
    assert (t[1]["media_kind"], t[1]["native_frames"], t[1]["n_frames"]) == ("video", 200, 32)
    assert t[1]["fps"] == pytest.approx(30.0) and t[1]["duration_s"] == pytest.approx(200 / 30, rel=1e-3)
    # no probing: no file opened, frame folder and video facts are null
    t2 = ingest([tmp_path / "p.jsonl"], probe_media=False).candidates.to_pylist()
    assert [(c["native_frames"], c["n_frames"], c["fps"]) for c in t2] == [(None, None, None)] * 2


def test_frame_cache_decodes_once(real_data, monkeypatch):
    import gdo.media.decode as M

    calls = []
    real = M.decode_video
    monkeypatch.setattr(M, "decode_video", lambda *a, **k: calls.append(a) or real(*a, **k))
    p = str(real_data / "open-mmlab__mmaction2/tests/data/rawvideo_dataset/part_0.mp4")
    cache = FrameCache(max_bytes=64 << 20)
    a = load_frames("video", [p], frames=4, cache=cache, key="k")
    b = load_frames("video", [p], frames=4, cache=cache, key="k")
    assert a is b and len(calls) == 1 and cache.hits == 1
    assert not a.flags.writeable
    small = FrameCache(max_bytes=a.nbytes + 10)
    small.put("x", a.copy())
    small.put("y", a.copy())
    assert len(small) == 1 and small.get("x") is None and small.get("y") is not None


def test_images_of_different_sizes_resized(real_data):
    d = real_data / "hiyouga__LLaMA-Factory/data/mllm_demo_data"
    arr = load_frames("image", [str(d / "1.jpg"), str(d / "2.jpg")])
    assert arr.shape == (2, 168, 300, 3)
    assert load_frames("none", []).shape[0] == 0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_decode_memory_is_released(real_data):
    """Issue 8 item 5: decoding the same real clip 200 times grows RSS by < 50 MB."""
    p = str(real_data / "open-mmlab__mmaction2/tests/data/rawvideo_dataset/part_0.mp4")
    for _ in range(10):
        load_frames("video", [p], frames=8)
    before = _rss_mb()
    for _ in range(200):
        arr = load_frames("video", [p], frames=8)
        assert arr.shape == (8, 256, 340, 3)
    del arr
    grown = _rss_mb() - before
    assert grown < 50, f"RSS grew {grown:.1f} MB over 200 decodes"


def test_decode_indices_past_the_end_are_an_error_not_a_stand_in():
    """Issue 13 item 2: no frame is ever a copy standing in for one that does not exist."""
    clip = CORPUS / "media" / "clip.mp4"
    arr = decode_video(clip, indices=[0, 15]).frames
    assert arr.shape == (2, 48, 64, 3) and not np.array_equal(arr[0], arr[1])
    with pytest.raises(MediaError) as e:
        decode_video(clip, indices=[0, 15, 40])
    assert e.value.reason == "corrupt_video" and "[40]" in e.value.detail and "16 of 16" in e.value.detail
    assert np.array_equal(decode_video(clip, frames=4).frames, decode_video(clip, indices=sample_indices(16, 4)).frames)
