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


def _video(path: Path, n: int, w: int = 64, h: int = 48) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=8)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, : (i * 4) % w] = (200, 40, 40)
            img[(i * 3) % h:, :, 1] = 180
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
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
    }


if __name__ == "__main__":
    make_media()
    manifest = make_pool()
    (D / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print("wrote", D)
