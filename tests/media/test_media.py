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


def test_engine_workers_decode_single_threaded_same_pixels(real_data):
    """Engine workers decode each video on one thread (``init_worker``: N workers use N cores,
    issue 17's media-stage scaling); the pixels are the same as FFmpeg's threaded decode."""
    from gdo.engine.local import init_worker
    from gdo.media import probe as P

    p = real_data / "hiyouga__LLaMA-Factory/data/mllm_demo_data/2.avi"
    before = P.decode_threads()  # an earlier in-process profile may have run init_worker already
    try:
        P.set_decode_threads(True)
        threaded = decode_video(p, frames=8)
        init_worker()
        assert P.decode_threads() is False
        single = decode_video(p, frames=8)
        assert P.count_decodable(str(p)) == (270, "")
    finally:
        P.set_decode_threads(before)
    assert single.indices == threaded.indices and np.array_equal(single.frames, threaded.frames)


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
    assert (t[0]["width"], t[0]["height"], t[1]["width"], t[1]["height"]) == (960, 540, 960, 540)
    assert t[1]["sample_times"] == pytest.approx([i / 30 for i in sample_indices(200, 32)], abs=1e-3)
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


# ---------------------------------------------------------------- issue 13: references, time, geometry
def test_reference_rules(tmp_path):
    """gdo.media.resolve: data: / remote / file:// / backslashes / drive paths, then confinement."""
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"")
    for ref, reason in (("data:image/png;base64,AAAA", "inline_media"), ("https://example.com/x.jpg", "remote_media"),
                        ("HTTP://example.com/x.jpg", "remote_media"), ("s3://bucket/x.mp4", "remote_media"),
                        ("file://server/share/x.png", "remote_media"), ("C:\\data\\x.png", "windows_path"),
                        ("d:/data/x.png", "windows_path"), ("", "wrong_type")):
        with pytest.raises(MediaError) as e:
            resolve_media(ref, tmp_path)
        assert e.value.reason == reason, ref
    assert resolve_media("file://" + str(root / "a" / "x.png"), tmp_path) == root / "a" / "x.png"
    assert resolve_media("file://localhost" + str(root / "a" / "x%20y.png"), tmp_path) == root / "a" / "x y.png"
    assert resolve_media("a\\x.png", root) == root / "a" / "x.png"  # backslashes are separators
    # confinement applies after normalisation
    assert resolve_media("a\\x.png", tmp_path, media_root=root) == root / "a" / "x.png"
    for ref in ("..\\..\\etc\\passwd", "file:///etc/passwd", "file://" + str(tmp_path / "other.png")):
        with pytest.raises(MediaError) as e:
            resolve_media(ref, tmp_path, media_root=root)
        assert e.value.reason == "media_outside_root", ref


def test_sample_by_time_against_brute_force():
    """Uniform in time: each target time takes the nearest timestamp (independent brute force)."""
    from gdo.media import is_vfr, sample_by_time

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 120))
        gaps = rng.choice([1 / 30, 1 / 30, 1 / 10, 0.5], size=n - 1)
        t = np.concatenate([[0.0], np.cumsum(gaps)])
        T = int(rng.integers(1, 40))
        got = sample_by_time(t.tolist(), T)
        if n <= T or not is_vfr(t.tolist()):
            assert got == sample_indices(n, T)
            continue
        for i, j in enumerate(got):
            target = t[0] + i * (t[-1] - t[0]) / (T - 1) if T > 1 else t[0]
            best = min(range(n), key=lambda k: (abs(t[k] - target), k))
            assert abs(t[j] - target) == pytest.approx(abs(t[best] - target), abs=1e-12)
    # constant frame rate: exactly the index rule of GDO_METHOD.md section 2
    cfr = [k / 30 for k in range(270)]
    assert sample_by_time(cfr, 8) == sample_indices(270, 8)
    # a clip with a 1 s gap: the sample spreads over time, not over frame indices
    vfr = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0]
    assert sample_by_time(vfr, 6) == [0, 4, 5, 6, 7, 11] and sample_indices(12, 6) == [0, 2, 4, 7, 9, 11]


def test_vfr_clip_sampled_by_timestamps():
    dv = decode_video(CORPUS / "media" / "vfr.mp4", frames=6)
    assert dv.times == pytest.approx([0.0, 0.4, 0.5, 1.5, 1.6, 2.0]) and "vfr" in dv.flags
    info = probe_video(CORPUS / "media" / "vfr.mp4")
    assert info.fps == pytest.approx(11 / 2.0) and info.duration_s == pytest.approx(2.125)


def test_geometry_limits_on_the_original_size(tmp_path):
    from PIL import Image

    from gdo.media import check_geometry, probe_image

    assert check_geometry(200, 1, "x") == ("upscaled",) and check_geometry(5600, 28, "x") == ()
    with pytest.raises(MediaError) as e:
        check_geometry(201, 1, "x")
    assert e.value.reason == "aspect_ratio" and "201.0" in e.value.detail
    with pytest.raises(MediaError) as e:
        probe_image(CORPUS / "media" / "ratio_201.png")
    assert e.value.reason == "aspect_ratio"
    assert probe_image(CORPUS / "media" / "ratio_200.png").flags == ("upscaled",)
    # a big image is checked on its own size, not on a resized copy
    Image.fromarray(np.zeros((10, 2010, 3), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(MediaError) as e:
        probe_image(tmp_path / "wide.png")
    assert "(2010x10)" in e.value.detail


def test_truncated_jpeg_is_unreadable_not_half_read():
    from gdo.media import probe_image

    with pytest.raises(MediaError) as e:
        probe_image(CORPUS / "media" / "truncated.jpg")
    assert e.value.reason == "unreadable_media" and "truncated.jpg" in e.value.detail


def test_rotated_clip_upright_and_partial_clip_flagged():
    dv = decode_video(CORPUS / "media" / "rot90.mp4", frames=4)
    assert dv.rotation == 90 and dv.frames.shape[1:3] == (64, 48)
    assert dv.frames[0][:4, -4:].mean() > 200  # the coded top-left white corner is shown top-right
    info = probe_video(CORPUS / "media" / "cut_payload.mp4")
    assert info.header_frames == 40 and info.native_frames < 40 and "partial" in info.flags
    dv = decode_video(CORPUS / "media" / "cut_payload.mp4", frames=32)
    assert "partial" in dv.flags and max(dv.indices) < info.native_frames


def test_one_file_as_image_and_as_video_in_one_pool(tmp_path):
    """Issue 13 item 1: the probe cache is keyed by (file, kind)."""
    import shutil

    shutil.copy(CORPUS / "media" / "anim.gif", tmp_path / "a.gif")
    rows = [{"id": "img", "images": ["a.gif"], "messages": [{"role": "user", "content": "<image>q"},
                                                           {"role": "assistant", "content": "a"}]},
            {"id": "vid", "videos": ["a.gif"], "messages": [{"role": "user", "content": "<video>q"},
                                                           {"role": "assistant", "content": "a"}]}]
    (tmp_path / "p.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    t = ingest([tmp_path / "p.jsonl"]).candidates.to_pylist()
    assert [(c["media_kind"], c["native_frames"]) for c in t] == [("image", None), ("video", 5)]
