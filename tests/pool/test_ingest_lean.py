"""Lean ingest (``media_columns=False``, used by ``gdo select``) equals the full ingest on every
column but ``media``/``media_raw``, with the same rejects and stats, for any worker count."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

import gdo.pool.ingest as ingest_mod
from gdo.pool.ingest import ingest
from gdo.schema import CANDIDATE_SCHEMA
from gdo.utils.hashing import stable_hash

MEDIA_COLS = ["media", "media_raw"]


def _conv(rng: random.Random, i: int, k: int, tok: str, style: str) -> list:
    msgs: list = []
    if rng.random() < 0.05:
        msgs.append({"role": "system", "content": "be brief"} if style == "messages" else
                    {"from": "system", "value": "be brief"})
    for t in range(k):
        q = (tok if t == 0 and rng.random() < 0.85 else "") + rng.choice(["What happens", "  Count <b>x</b>", "Why"])
        q += f" {i}.{t}?" + ("\nA. yes\nB. no" if rng.random() < 0.2 else "")
        a = rng.choice(["yes", "no", "", "  ", "a longer answer here"] + ["ok"] * 6)
        if t == 1 and rng.random() < 0.05:
            q = tok + q  # a token in a later turn: positional tokens (general path)
        if style == "messages":
            msgs += [{"role": rng.choice(["user", "user", "human"]), "content": q},
                     {"role": rng.choice(["assistant", "gpt"]), "content": a}]
        else:
            msgs += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    if style == "messages" and rng.random() < 0.04:  # odd roles: empty, non-string, capitalised
        msgs[-2] = rng.choice([{"role": "", "from": "human", "content": "q?"}, {"role": ["user"], "content": "q?"},
                               {"role": "User", "content": "q?"}, {"role": None, "from": "human", "value": "q?"}])
    if rng.random() < 0.04:
        msgs.append({"role": "user", "content": "dangling question"})  # unpaired turn
    if rng.random() < 0.02:
        msgs.insert(0, {"role": "assistant", "content": "first"})  # assistant first
    return msgs


def _random_pool(path: Path, n: int, seed: int, n_frames: tuple[int, int] = (1, 60)) -> None:
    """Image rows, LLaVA-Video frame lists (odd paths sometimes), video files, frame folders,
    several media, multi-turn rows, and bad lines (malformed, blank, not UTF-8, not an object)."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(n):
            r = rng.random()
            if r < 0.01:
                f.write(b"{oops, not json\n")
                continue
            if r < 0.015:
                f.write(b"   \n")
                continue
            if r < 0.02:
                f.write(b'{"id": "bad\xff\xfe"}\n')
                continue
            if r < 0.025:
                f.write(b"[1, 2, 3]\n")
                continue
            style = "messages" if rng.random() < 0.85 else "conversations"
            kind = rng.random()
            tok = rng.choice(["<image>\n", "<image>\n", "<image>", "<video>", "<image><image>", ""])
            rec: dict = {}
            if rng.random() < 0.93:
                rec["id"] = rng.choice([f"r{i}", f"r{i}", f"r{i % 40}", i, ""])
            if kind < 0.35:
                rec["images"] = [f"im/{i}.jpg"] if rng.random() < 0.9 else rng.choice(
                    [f"im/{i}.png", [f"im/{i}.jpg", f"im/{i}b.jpg"], f"../im/{i}.jpg", f"/abs/{i}.jpg",
                     [f"im/{i}.jpg", 7], f"im/{i}.JPG", f"im/{i}.gif", f"im/.{i}.jpg", f"im/{i}"])
            elif kind < 0.7:
                rec["video_id"] = f"v{i}"
                frames = [f"fr/v{i}/{j:05d}.jpg" for j in range(rng.randint(*n_frames))]
                if rng.random() < 0.15:  # odd paths anywhere in the list
                    odd = rng.choice(["", "/abs/x.jpg", "a/../b.jpg", ".hidden/x.jpg", "a//b.jpg", "a\\b.jpg",
                                      "a/./b.jpg", "dir/", "../up.jpg", "fr/.x.jpg", "clip.mp4", 3, None,
                                      "../../../etc/x.jpg", "fr/ü/é.jpg"])
                    frames.insert(rng.randint(0, len(frames)), odd)
                rec["images"] = frames
            elif kind < 0.8:
                v = rng.choice([f"v/{i}.mp4", f"v/{i}.mp4", f"../v/{i}.mkv", f"v/{i}", f"v/{i}.jpg",
                                f"/abs/{i}.webm", f"v/{i}.MOV", ""])
                key = rng.choice(["videos", "video"])
                rec[key] = [v] if key == "videos" and rng.random() < 0.7 else v
            elif kind < 0.85:
                rec["videos"] = [[f"fr/{i}/{j}.png" for j in range(rng.randint(1, 8))]]
            elif kind < 0.9:
                rec["images"] = [f"im/{i}.jpg", f"im/{i}b.jpg"]
                rec["videos"] = [f"v/{i}.mp4"]
            rec["conversations" if style == "conversations" else "messages"] = _conv(
                rng, i, rng.choice([1, 1, 2, 3, 5]), tok, style)
            if rng.random() < 0.8:
                rec["data_source"] = rng.choice(["a", "b(c)", 3, None, ""])
            f.write(orjson.dumps(rec) + b"\n")


def _assert_lean_equals_full(lean, full) -> None:
    assert lean.candidates.schema.equals(CANDIDATE_SCHEMA)
    assert lean.candidates.num_rows == full.candidates.num_rows
    for c in MEDIA_COLS:
        assert lean.candidates.column(c).null_count == lean.candidates.num_rows
    assert lean.candidates.drop_columns(MEDIA_COLS).equals(full.candidates.drop_columns(MEDIA_COLS))
    assert lean.rejects == full.rejects
    ls, fs = dict(lean.stats), dict(full.stats)
    assert (ls.pop("media_columns"), fs.pop("media_columns")) == (False, True)
    assert ls == fs


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    d = tmp_path_factory.mktemp("lean")
    a, b = d / "a.jsonl", d / "sub" / "b.jsonl"
    b.parent.mkdir()
    _random_pool(a, 2500, seed=11)
    _random_pool(b, 800, seed=12)
    return d, [a, b]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("fmt,root", [(None, False), (None, True), ("sharegpt", False)])
def test_lean_equals_full(pools, monkeypatch, fast, fmt, root):
    d, paths = pools
    monkeypatch.setattr(ingest_mod, "_FAST_PATH", fast)
    media_root = d if root else None
    full = ingest(paths, probe_media=False, fmt=fmt, media_root=media_root)
    lean = ingest(paths, probe_media=False, fmt=fmt, media_root=media_root, media_columns=False)
    _assert_lean_equals_full(lean, full)
    t = full.candidates
    assert t.num_rows > 2000
    kinds = set(t.column("media_kind").to_pylist())
    assert {"image", "frames", "video", "none"} <= kinds
    reasons = full.stats["totals"]["rejects_by_reason"]
    for r in ("malformed_json", "blank_line", "not_utf8", "wrong_type", "media_token_mismatch", "unpaired_turn"):
        assert reasons.get(r, 0) > 0, r
    if root:
        assert reasons.get("media_outside_root", 0) > 0
    assert full.stats["uid_collisions"] > 0
    assert any(v > 0 for v in t.column("turn").to_pylist())


def test_lean_video_key_is_hash_of_frame_list(pools):
    d, paths = pools
    lean = ingest(paths[:1], probe_media=False, media_columns=False)
    t = lean.candidates.filter(pa.compute.equal(lean.candidates.column("media_kind"), "frames"))
    assert t.num_rows > 100
    # recompute from the rows themselves: frames:<blake2b(prefix, paths joined by 0x1f)>
    lines = paths[0].read_bytes().split(b"\n")
    prefix = os.path.abspath(str(d)).rstrip("/") + "/"
    checked = 0
    for line, key, nat in zip(t.column("line").to_pylist(), t.column("video_key").to_pylist(),
                              t.column("native_frames").to_pylist()):
        rec = orjson.loads(lines[line - 1])
        fr = rec.get("images")
        if rec.get("video_id") is None or not isinstance(fr, list) or len(fr) < 2:
            continue
        assert key == "frames:" + stable_hash(prefix, "\x1f".join(fr))
        assert nat == len(fr)
        checked += 1
    assert checked > 100


def test_lean_workers_identical(tmp_path):
    p = tmp_path / "big.jsonl"
    _random_pool(p, 4000, seed=5, n_frames=(32, 120))
    assert p.stat().st_size > (2 << 20)  # large enough to be split in byte ranges
    one = ingest([p], probe_media=False, media_columns=False, workers=1)
    two = ingest([p], probe_media=False, media_columns=False, workers=2)
    assert one.candidates.equals(two.candidates)
    assert one.rejects == two.rejects and one.stats == two.stats
    full2 = ingest([p], probe_media=False, workers=2)
    _assert_lean_equals_full(two, full2)


def test_lean_requires_no_probe(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_bytes(orjson.dumps({"id": "a", "messages": [{"role": "user", "content": "q"},
                                                        {"role": "assistant", "content": "a"}]}) + b"\n")
    with pytest.raises(ValueError, match="probe_media=False"):
        ingest([p], media_columns=False)
    res = ingest([p], probe_media=False, media_columns=False)
    assert res.candidates.column("uid").to_pylist() == ["ov::a::t0"]
    assert res.stats["media_columns"] is False
