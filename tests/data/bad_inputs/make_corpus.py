"""Regenerate the bad-input corpus (media files, pool.jsonl, unknown.csv). Run from anywhere:

    python tests/data/bad_inputs/make_corpus.py

Deterministic: the same bytes every run (fixed content; PyAV/Pillow versions permitting).
The 10 MB line is not stored here: tests/test_bad_inputs.py generates it.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from PIL import Image

D = Path(__file__).resolve().parent
M = D / "media"


def _video(path: Path, n: int, w: int = 64, h: int = 48, *, rotation: int = 0, pts: list[int] | None = None,
           options: dict | None = None, title: str | None = None) -> None:
    """An mpeg4 clip: a red bar growing right, green rising. ``rotation``: display matrix
    (counter-clockwise degrees, PyAV's convention); ``pts``: per-frame timestamps in 1/100 s
    (variable frame rate); ``options``: muxer options (``movflags=faststart`` puts the index first)."""
    from fractions import Fraction

    with av.open(str(path), "w", options=options or {}) as c:
        if title is not None:
            c.metadata["title"] = title
        s = c.add_stream("mpeg4", rate=8)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if pts is not None:
            s.codec_context.time_base = Fraction(1, 100)
        if rotation:
            s.set_display_rotation(rotation)
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, : (i * 4) % w] = (200, 40, 40)
            img[(i * 3) % h:, :, 1] = 180
            if rotation:
                img[:4, :4] = (255, 255, 255)  # a white corner marks the coded top-left
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                fr.pts, fr.time_base = pts[i], Fraction(1, 100)
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def make_media() -> None:
    M.mkdir(exist_ok=True)
    _video(M / "clip.mp4", 16)
    _video(M / "one_frame.mp4", 1)
    (M / "zero.mp4").write_bytes(b"")
    data = (M / "clip.mp4").read_bytes()
    (M / "truncated.mp4").write_bytes(data[: len(data) // 3])
    frames = [Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)) for i in range(5)]
    frames[0].save(M / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(np.full((3840 // 1, 2160 // 1, 3), 128, np.uint8).transpose(1, 0, 2)).save(
        M / "frame_4k.jpg", quality=50)
    Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)).save(M / "img.png")
    # issue 13 kinds (expected outcomes in manifest.json)
    _video(M / "rot90.mp4", 8, rotation=-90)  # shown 90 degrees clockwise: upright 48x64
    _video(M / "vfr.mp4", 12, pts=[0, 10, 20, 30, 40, 50, 150, 160, 170, 180, 190, 200])  # a 1 s gap
    _video(M / "faststart.mp4", 40, options={"movflags": "faststart"})
    data = (M / "faststart.mp4").read_bytes()
    (M / "cut_payload.mp4").write_bytes(data[: int(len(data) * 0.6)])  # header: 40 frames, fewer present
    (M / "faststart.mp4").unlink()
    _video(M / "gbk_title.mp4", 6, title="XXXX")  # title bytes patched to GBK (not UTF-8) below
    data = (M / "gbk_title.mp4").read_bytes()
    assert data.count(b"XXXX") == 1
    (M / "gbk_title.mp4").write_bytes(data.replace(b"XXXX", "\u6d4b\u8bd5".encode("gbk")))
    (M / "png_named.mp4").write_bytes((M / "img.png").read_bytes())
    (M / "text.mp4").write_bytes(b"404 Not Found\n")
    Image.fromarray(np.full((240, 320, 3), 90, np.uint8)).save(M / "full.jpg", quality=80)
    data = (M / "full.jpg").read_bytes()
    (M / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (M / "full.jpg").unlink()
    Image.fromarray(np.full((1, 201, 3), 200, np.uint8)).save(M / "ratio_201.png")
    Image.fromarray(np.full((1, 200, 3), 200, np.uint8)).save(M / "ratio_200.png")
    Image.fromarray(np.full((12, 16, 3), 60, np.uint8)).save(M / "tiny.png")
    (M / "sub").mkdir(exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), 30, np.uint8)).save(M / "sub" / "win.png")


def _row(rid, q, a, **media):
    r = {"id": rid, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    r.update(media)
    return json.dumps(r).encode()


def make_pool() -> dict:
    lines: list[tuple[bytes, str]] = [
        (_row("good1", "<image>What is shown?", "A gradient.", images=["media/img.png"]), "ok"),
        (b'{"id": "bad-json", "messages": [{"role": "user", "content": "x"}', "malformed_json"),
        (b"", "blank_line"),
        (b"   \t", "blank_line"),
        (json.dumps({"id": "wt1", "messages": "hello"}).encode(), "wrong_type"),
        (json.dumps({"id": "wt2", "messages": [{"role": "user", "content": 5},
                                               {"role": "assistant", "content": "x"}]}).encode(), "wrong_type"),
        (_row("wt3", "<image>q", "a", images=7), "wrong_type"),
        (b"[1, 2, 3]", "wrong_type"),
        (json.dumps({"id": "null-msgs", "messages": None}).encode(), "no_messages"),
        (json.dumps({"id": "asst-first", "messages": [{"role": "assistant", "content": "hi"},
                                                      {"role": "user", "content": "q"}]}).encode(), "assistant_first"),
        (json.dumps({"id": "user-only", "messages": [{"role": "user", "content": "q1"},
                                                     {"role": "user", "content": "q2"}]}).encode(), "no_pairs"),
        (_row("mismatch", "<image><image>Compare.", "Same.", images=["media/img.png"]), "media_token_mismatch"),
        (_row("mismatch-v", "<video>What?", "x", images=["media/img.png"]), "media_token_mismatch"),
        (_row("missing", "<image>What?", "x", images=["media/does_not_exist.jpg"]), "missing_media"),
        (b'{"id": "latin1", "messages": [{"role": "user", "content": "caf\xe9"}]}', "not_utf8"),
        (_row("good1", "<image>Again?", "Duplicate id.", images=["media/img.png"]), "ok"),
        (_row("zero", "<video>What?", "x", videos=["media/zero.mp4"]), "corrupt_video"),
        (_row("trunc", "<video>What?", "x", videos=["media/truncated.mp4"]), "corrupt_video"),
        (_row("gif", "<video>What changes?", "It gets brighter.", videos=["media/anim.gif"]), "ok"),
        (_row("one-frame", "<video>What?", "A still.", videos=["media/one_frame.mp4"]), "ok"),
        (_row("4k", "<image>What colour?", "Grey.", images=["media/frame_4k.jpg"]), "ok"),
        (json.dumps({"id": "empty-ans", "images": ["media/img.png"], "messages": [
            {"role": "user", "content": "<image>q1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "  "}]}).encode(), "ok"),
        (json.dumps({"id": "all-empty", "messages": [{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": ""}]}).encode(), "empty_answer"),
        (json.dumps({"id": "clip", "videos": ["media/clip.mp4"], "messages": [
            {"role": "user", "content": "<video>What happens first?"}, {"role": "assistant", "content": "A bar grows."},
            {"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Green rises."}]}).encode(), "ok"),
        # issue 13 items 1-6 (media kinds); the truncated line stays last
        (_row("gif-img", "<image>What is it?", "A picture.", images=["media/anim.gif"]), "ok"),  # same GIF as video above
        (_row("rot90", "<video>Which way?", "Upright.", videos=["media/rot90.mp4"]), "ok"),
        (_row("vfr", "<video>When?", "Later.", videos=["media/vfr.mp4"]), "ok"),
        (_row("cut-payload", "<video>What?", "Part of it.", videos=["media/cut_payload.mp4"]), "ok"),
        (_row("gbk", "<video>What?", "Bars.", videos=["media/gbk_title.mp4"]), "ok"),
        (_row("png-as-mp4", "<video>What?", "x", videos=["media/png_named.mp4"]), "not_a_video"),
        (_row("text-as-mp4", "<video>What?", "x", videos=["media/text.mp4"]), "corrupt_video"),
        (_row("trunc-jpg", "<image>What?", "x", images=["media/truncated.jpg"]), "unreadable_media"),
        (_row("ratio-201", "<image>What?", "x", images=["media/ratio_201.png"]), "aspect_ratio"),
        (_row("ratio-200", "<image>What?", "A line.", images=["media/ratio_200.png"]), "ok"),
        (_row("tiny", "<image>What?", "A dot.", images=["media/tiny.png"]), "ok"),
        (_row("data-uri", "<image>What?", "x", images=["data:image/png;base64,iVBORw0KGgo="]), "inline_media"),
        (_row("http", "<image>What?", "x", images=["https://example.com/a.jpg"]), "remote_media"),
        (_row("file-uri", "<image>What?", "x", images=["file:///nonexistent/gdo%20corpus/a.png"]), "missing_media"),
        (_row("backslash", "<image>What?", "Dark.", images=["media\\sub\\win.png"]), "ok"),
        (_row("drive", "<image>What?", "x", images=["C:\\data\\a.png"]), "windows_path"),
        (b'{"id": "truncated-last", "messages": [{"role": "user", "con', "malformed_json"),
    ]
    body = b"\n".join(l for l, _ in lines)  # no newline after the last (truncated) line
    (D / "pool.jsonl").write_bytes(body)
    (D / "unknown.csv").write_text("id,question,answer\n1,What?,That.\n")
    return {
        "pool.jsonl": {str(i): r for i, (_, r) in enumerate(lines, 1)},
        "unknown.csv": {"file": "unknown_format"},
        "uid_collisions": 1,
        "candidate_rejects": {"22": "empty_answer"},
        # media facts expected per row id (issue 13 items 2-4, 8)
        "media_facts": {
            "rot90": {"rotation": 90, "width": 48, "height": 64, "media_flags": ["rotated"]},
            "vfr": {"native_frames": 12, "duration_s": 2.125, "media_flags": ["vfr"]},
            "cut-payload": {"header_frames": 40, "media_flags": ["partial"]},
            "gbk": {"native_frames": 6, "media_flags": []},
            "gif": {"native_frames": 5, "media_flags": ["upscaled"]},
            "gif-img": {"width": 32, "height": 24, "media_flags": ["animated", "upscaled"]},
            "ratio-200": {"width": 200, "height": 1, "media_flags": ["upscaled"]},
            "tiny": {"width": 16, "height": 12, "media_flags": ["upscaled"]},
        },
    }


if __name__ == "__main__":
    make_media()
    manifest = make_pool()
    (D / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print("wrote", D)
