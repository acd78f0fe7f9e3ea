"""Benchmark the media stage of `gdo profile` (AMM + frame diversity + visual features + hashes).

Prints JSON lines:
  {"bench": "media_old_vs_new", ...}  the media stage per video (decode the 8 motion frames + AMM),
                                       old (header frame count, frames picked by index, no checks:
                                       the first release's gdo.pool.media, reproduced here) and new
                                       (gdo.media: timestamps demuxed, sampled in time, upright,
                                       partial files detected) side by side, best of 3 runs each, with
                                       decode passes per video (must be 1) -- issue 13 item 9
  {"bench": "probe_old_vs_new", ...}  ingest's probe per video: header only (old) vs gdo.media.probe_video
  {"bench": "motion_per_video", ...}  videos/s decoding + motion on the real clips (1 process)
  {"bench": "qa_per_video", ...}      the same videos carrying 8 QA each vs 1 QA each through
                                       profile(descriptors=motion,fields); ratio ~1 because motion
                                       runs once per distinct video (the release: ~8x)
  {"bench": "workers", ...}           media stage with 1 and 2 worker processes

Usage: python benchmarks/bench_motion.py [--real DIR] [--max-videos N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa


def _videos(real: Path, limit: int) -> list[Path]:
    exts = {".mp4", ".avi", ".webm", ".mkv"}
    vids = sorted(p for p in real.rglob("*") if p.suffix.lower() in exts)
    return vids[:limit]


def _pool(videos: list[Path], qa_per_video: int) -> pa.Table:
    from gdo.schema import CANDIDATE_SCHEMA

    rows = []
    for i, v in enumerate(videos):
        for j in range(qa_per_video):
            rows.append({
                "uid": f"vv::v{i}::t{j}", "row_id": f"v{i}", "turn": j, "source_file": "/bench.jsonl",
                "file_index": 0, "line": i + 1, "format": "llava_video", "bucket": "short_video",
                "question": f"What happens in the video? ({j})", "answer": f"Answer {j}.", "user_msg": 2 * j,
                "asst_msg": 2 * j + 1, "media_kind": "video", "media": [str(v)], "media_raw": [str(v)],
                "video_key": str(v), "n_frames": None, "native_frames": None, "fps": None, "duration_s": None,
                "data_source": "bench", "pool_pos": len(rows),
            })
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)


def _old_motion_frames(path: str, frames: int = 32, keep: int = 8) -> list:
    """The first release's path (gdo.pool.media before issue 13): frame count from the header,
    frames picked by index, decoded once; no timestamps, rotation or partial checks."""
    import av

    from gdo.media import sample_indices

    with av.open(path) as c:
        s = c.streams.video[0]
        n = int(s.frames or 0)
        if n <= 0:
            n = sum(1 for p in c.demux(s) if p.size)
            c.seek(0)
        sampled = sample_indices(n, frames)
        idx = [sampled[j] for j in sample_indices(len(sampled), keep)]
        want, last, got = set(idx), max(idx), {}
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            if i in want:
                got[i] = f.to_ndarray(format="rgb24")
            if i >= last:
                break
    return [got[i] for i in idx if i in got]


def _old_probe(path: str) -> int:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        return int(s.frames or 0)


def _best_of(fn, vids, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for v in vids:
            fn(str(v))
        best = min(best, time.perf_counter() - t)
    return best


def old_vs_new(vids: list[Path]) -> None:
    """Issue 13 item 9: the new checks cost at most 10% of the media stage; one decode per video."""
    import gdo.media.decode as D
    from gdo.descriptors.motion import amm_and_diversity, load_motion_media
    from gdo.media import probe_video

    passes = []
    real = D._decode_keep

    def counting(*a, **k):
        passes[-1] += 1
        return real(*a, **k)

    def new(v):
        passes.append(0)
        amm_and_diversity(load_motion_media("video", [v])[0])

    def old(v):
        amm_and_diversity(_old_motion_frames(v))

    D._decode_keep = counting
    try:
        t_new = _best_of(new, vids)
        t_old = _best_of(old, vids)
    finally:
        D._decode_keep = real
    print(json.dumps({"bench": "media_old_vs_new", "videos": len(vids), "seconds_old": round(t_old, 3),
                      "seconds_new": round(t_new, 3), "overhead": round(t_new / t_old - 1, 4),
                      "max_decode_passes_per_video": max(passes), "limit": 0.10}))
    p_old = _best_of(_old_probe, vids)
    p_new = _best_of(probe_video, vids)
    print(json.dumps({"bench": "probe_old_vs_new", "videos": len(vids), "seconds_old": round(p_old, 3),
                      "seconds_new": round(p_new, 3), "new_probe_share_of_media_stage": round(p_new / t_new, 4),
                      "overhead_probe_plus_media": round((t_new + p_new) / (t_old + p_old) - 1, 4)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    ap.add_argument("--max-videos", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="12 videos only")
    ap.add_argument("--old-vs-new-only", action="store_true", help="print only the old/new comparison lines")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gdo.descriptors.motion import amm_and_diversity, load_motion_frames
    from gdo.descriptors.profile import profile

    vids = _videos(args.real, 12 if args.quick else args.max_videos)
    if not vids:
        print(json.dumps({"bench": "motion_per_video", "error": f"no videos under {args.real}"}))
        return
    import cv2

    cv2.setNumThreads(1)
    old_vs_new(vids)
    if args.old_vs_new_only:
        return
    t = time.perf_counter()
    frames_decoded = 0
    for v in vids:
        fr, n = load_motion_frames("video", [str(v)])
        amm_and_diversity(fr)
        frames_decoded += n
    dt = time.perf_counter() - t
    print(json.dumps({"bench": "motion_per_video", "videos": len(vids), "seconds": round(dt, 3),
                      "videos_per_s": round(len(vids) / dt, 2), "native_frames": frames_decoded}))

    res = {}
    for qa in (1, 8):
        pool = _pool(vids, qa)
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            profile(pool, d, descriptors=["motion", "fields"], workers=1)
            res[qa] = time.perf_counter() - t
    print(json.dumps({"bench": "qa_per_video", "videos": len(vids), "seconds_1qa": round(res[1], 3),
                      "seconds_8qa": round(res[8], 3), "candidates_8qa": 8 * len(vids),
                      "ratio_8qa_over_1qa": round(res[8] / res[1], 3)}))

    pool = _pool(vids, 1)
    out = {}
    for w in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            profile(pool, d, descriptors=["motion"], workers=w, shard_sizes={"media": 4})
            out[w] = time.perf_counter() - t
    print(json.dumps({"bench": "workers", "videos": len(vids), "seconds_w1": round(out[1], 3),
                      "seconds_w2": round(out[2], 3), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
