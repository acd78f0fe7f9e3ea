"""The bug-report cases of ../shared/data/cases (issue 13 "done when"): each test asserts what its
caseNN.md expects. Skipped cleanly when ../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gdo.media import MediaError, decode_video, load_frames, probe_video
from gdo.pool.ingest import ingest

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cases"


def _case(name: str) -> Path:
    d = CASES / name
    if not (CASES / f"{name}.md").exists() or not d.is_dir():
        pytest.skip(f"{d} not found")
    return d


def _accounting(res) -> None:
    t = res.stats["totals"]
    assert t["rows_read"] == t["rows_with_candidates"] + t["rows_rejected"]
    for r in res.rejects:
        assert r["reason"] and r["detail"]


def test_case01_placeholders_vs_images():
    d = _case("case01")
    res = ingest([d / "pool_sharegpt.json", d / "pool_llava.json"])
    _accounting(res)
    assert res.stats["totals"]["rows_read"] == 10
    c = {(x["row_id"], x["turn"]): x for x in res.candidates.to_pylist()}
    assert c[("ok_one_token_one_image", 0)]["media_raw"] == ["img/red.png"]
    assert [c[("ok_two_tokens_two_images_second_turn", k)]["media_raw"] for k in (0, 1)] == [["img/red.png"],
                                                                                             ["img/blue.png"]]
    assert c[("llava_image_as_string", 0)]["media_raw"] == ["img/blue.png"]  # 1 image, never 12
    assert c[("llava_image_as_list", 0)]["media_raw"] == ["img/red.png", "img/blue.png"]  # order kept
    # no placeholder: the documented policy (gdo.pool.candidates) attaches the image to the turn
    assert c[("no_token_one_image", 0)]["n_frames"] == 1
    rej = {r["row_id"]: r for r in res.rejects}
    for rid, counts in (("two_tokens_one_image", ("2 <image>", "1 image")),
                        ("one_token_two_images", ("1 <image>", "2 image")),
                        ("token_but_no_images", ("1 <image>", "0 image"))):
        assert rej[rid]["reason"] == "media_token_mismatch"
        assert all(s in rej[rid]["detail"] for s in counts), rej[rid]["detail"]


def test_case01_token_in_assistant_turn_is_not_silently_accepted():
    d = _case("case01")
    res = ingest([d / "pool_sharegpt.json"])
    rej = {r["row_id"] for r in res.rejects}
    assert "token_in_assistant_turn" in rej


def test_case05_inline_and_remote_media():
    d = _case("case05")
    res = ingest([d / "pool.jsonl"])
    _accounting(res)
    rej = {r["row_id"]: r for r in res.rejects}
    assert rej["r4_parts_data_uri"]["reason"] == "inline_media"
    assert "not supported" in rej["r4_parts_data_uri"]["detail"]
    assert rej["r5_parts_remote_url"]["reason"] == "remote_media"
    assert "https://example.com/no-such-image.jpg" in rej["r5_parts_remote_url"]["detail"]
    c = {x["row_id"]: x for x in res.candidates.to_pylist()}
    for rid in ("r1_string_content", "r2_parts_type_image", "r3_parts_image_url_local_path", "r6_system_as_parts"):
        assert c[rid]["media"] == [str(d / "img" / "a.png")]
    assert len(c["r7_parts_and_images_key_both"]["media"]) == 1


def _quadrant_of_red(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    red = (frame[..., 0].astype(int) > 150) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
    ys, xs = np.nonzero(red)
    return ("top" if ys.mean() < h / 2 else "bottom") + "-" + ("left" if xs.mean() < w / 2 else "right")


def _white_centroids(frames: np.ndarray) -> np.ndarray:
    out = []
    for f in frames:
        ys, xs = np.nonzero((f > 200).all(axis=-1))
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


def test_case12_rotation_applied_and_recorded():
    d = _case("case12")
    from PIL import Image

    expect = {"rot0": ((320, 180), "top-left", (10, 0)), "rot90": ((180, 320), "top-right", (0, 10)),
              "rot180": ((320, 180), "bottom-right", (-10, 0)), "rot270": ((180, 320), "bottom-left", (0, -10))}
    res = ingest([d / "pool.jsonl"])
    rows = {x["row_id"]: x for x in res.candidates.to_pylist()}
    for name, ((w, h), corner, step) in expect.items():
        rot = int(name[3:])
        row = rows[name]
        assert (row["width"], row["height"], row["rotation"]) == (w, h, rot)
        assert ("rotated" in row["media_flags"]) == (rot != 0)
        dv = decode_video(d / "vid" / f"{name}.mp4", frames=32)
        assert dv.frames.shape[1:3] == (h, w) and dv.rotation == rot
        assert _quadrant_of_red(dv.frames[0]) == corner
        motion = np.diff(_white_centroids(dv.frames[:6]), axis=0).mean(axis=0)
        assert motion == pytest.approx(step, abs=1.0), (name, motion)
    ref = np.asarray(Image.open(d / "expected_rot90_frame0_upright.png").convert("RGB")).astype(int)
    got = decode_video(d / "vid" / "rot90.mp4", frames=32).frames[0].astype(int)
    assert np.abs(got - ref).mean() < 5


def test_case14_damaged_videos():
    d = _case("case14")
    res = ingest([d / "pool.jsonl"])
    _accounting(res)
    rej = {r["row_id"]: r for r in res.rejects}
    for rid, reason in (("v_empty", "corrupt_video"), ("v_cut_before_index", "corrupt_video"),
                        ("v_not_a_video", "corrupt_video"), ("v_does_not_exist", "missing_media"),
                        ("v_png_named_mp4", "not_a_video")):
        assert rej[rid]["reason"] == reason
        assert rid[2:] + ".mp4" in rej[rid]["detail"]  # the path is named
    assert "cannot open" in rej["v_cut_before_index"]["detail"] and "0 bytes" in rej["v_empty"]["detail"]
    assert "text" in rej["v_not_a_video"]["detail"] and "PNG" in rej["v_png_named_mp4"]["detail"]
    c = {x["row_id"]: x for x in res.candidates.to_pylist()}
    assert set(c) == {"v_good", "v_cut_mid_payload", "v_zeroed_bytes_mid"}
    assert (c["v_good"]["native_frames"], c["v_good"]["media_flags"]) == (60, [])
    # cut mid payload: header 60, 24 decode: accepted with the real count and flagged
    cut = c["v_cut_mid_payload"]
    assert (cut["header_frames"], cut["native_frames"], cut["n_frames"], cut["media_flags"]) == (60, 24, 24, ["partial"])
    assert len(cut["sample_times"]) == 24 and max(cut["sample_times"]) < 24 / 15
    # zeroed bytes: only decoding finds it; 16 decode, the sample covers those 16 and is flagged
    dv = decode_video(d / "vid" / "zeroed_bytes_mid.mp4", frames=32)
    assert dv.decoded_frames == 16 and "partial" in dv.flags and "frame 16 of 60" in dv.note
    assert dv.indices == list(range(16)) and len(dv.frames) == 16
    assert len({f.tobytes() for f in dv.frames}) == 16  # no duplicated stand-in frames
    dv = decode_video(d / "vid" / "cut_mid_payload.mp4", frames=8)
    assert dv.decoded_frames == 24 and max(dv.indices) == 23 and "partial" in dv.flags


def test_case18_gif_as_image_and_as_video():
    d = _case("case18")
    truth = json.loads((d / "truth.json").read_text())
    res = ingest([d / "pool.jsonl"])  # used to crash: 'bool' object has no attribute 'native_frames'
    _accounting(res)
    assert res.rejects == []
    c = {x["row_id"]: x for x in res.candidates.to_pylist()}
    img = load_frames("image", c["gif_as_image"]["media"])
    assert img.shape == (1, 72, 96, 3) and img.dtype == np.uint8
    assert "animated" in c["gif_as_image"]["media_flags"]
    v = c["gif_as_video"]
    assert v["native_frames"] == truth["anim.gif"]["frames"] == 6
    assert v["sample_times"] == pytest.approx([0, 0.1, 0.2, 0.7, 0.8, 0.9])
    assert v["duration_s"] == pytest.approx(truth["anim.gif"]["total_ms"] / 1000)
    assert "vfr" in v["media_flags"]
    assert c["static_gif_as_image"]["media_kind"] == "image"
    s = c["static_gif_as_video"]
    assert (s["media_kind"], s["native_frames"], s["n_frames"]) == ("video", 1, 1)
    assert decode_video(d / "media" / "static.gif").frames.shape == (1, 72, 96, 3)
    assert [x["media_raw"][0][-4:] for x in c.values()] == [".gif"] * 4


def test_case19_non_utf8_metadata():
    d = _case("case19")
    import av

    with pytest.raises(UnicodeDecodeError):  # the bug: strict metadata decoding fails on open
        av.open(str(d / "vid" / "gbk_title.mp4"))
    res = ingest([d / "pool.jsonl"])
    assert res.rejects == [] and res.candidates.num_rows == 2
    for x in res.candidates.to_pylist():
        assert x["native_frames"] == 20 and x["media_flags"] == []
        assert decode_video(x["media"][0], frames=32).frames.shape == (20, 96, 128, 3)


def test_probe_failure_names_file_and_content(tmp_path):
    p = tmp_path / "x.mp4"
    p.write_bytes(b"hello, I am text\n")
    with pytest.raises(MediaError) as e:
        probe_video(p)
    assert str(p) in e.value.detail and "text" in e.value.detail


def test_case14_profile_records_what_decodes(tmp_path):
    """The damage only decoding finds (zeroed bytes) reaches descriptors.parquet: the real count, the
    partial flag, and motion over the frames that exist; no media_error, no stand-ins."""
    d = _case("case14")
    from gdo.descriptors.profile import profile

    res = ingest([d / "pool.jsonl"])
    t = profile(res.candidates, tmp_path, descriptors=["motion", "fields"], workers=1)
    rows = {u.split("::")[1]: r for u, r in zip(t.column("uid").to_pylist(), t.to_pylist())}
    z = rows["v_zeroed_bytes_mid"]
    assert (z["decoded_frames"], z["native_frames"], z["n_frames"], z["media_flags"]) == (16, 16, 16, "partial")
    assert z["media_error"] is None and z["amm"] is not None
    c = rows["v_cut_mid_payload"]
    assert (c["decoded_frames"], c["native_frames"], c["media_flags"]) == (24, 24, "partial")
    g = rows["v_good"]
    assert (g["decoded_frames"], g["native_frames"], g["media_flags"]) == (60, 60, None)
