"""Benchmark `gdo.pool.ingest.ingest(probe_media=False)` on a generated LLaVA-OV + LLaVA-Video pool.

Prints one JSON line per measurement: {"bench", "workers", "rows", "candidates", "seconds",
"cpu_s" (user+sys of this process and its workers), "load_avg_1m" (machine load at the end: on a
shared machine wall time is not the code's alone), "rows_per_s", "candidates_per_s"}; plus one for `write_rows` of a 5% subset.

Usage: python benchmarks/bench_ingest.py [--candidates 1000000] [--workers 1 2] [--dir /tmp/gdo_bench_pool]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

import orjson


def make_pool(d: Path, n_candidates: int, seed: int = 0) -> list[Path]:
    """Write ov.jsonl (image rows, 1-3 turns) and video.jsonl (frame lists of 32-180 paths, 1-3 turns)."""
    d.mkdir(parents=True, exist_ok=True)
    ov, vv = d / f"ov_{n_candidates}.jsonl", d / f"video_{n_candidates}.jsonl"
    if ov.exists() and vv.exists():
        return [ov, vv]
    rng = random.Random(seed)
    words = "what is the man doing in this video before after then color of car how many people are there".split()

    def conv(k: int, img: bool) -> list[dict]:
        out = []
        for t in range(k):
            q = " ".join(rng.choice(words) for _ in range(rng.randint(4, 20)))
            a = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
            out.append({"role": "user", "content": ("<image>\n" if t == 0 and img else "") + q})
            out.append({"role": "assistant", "content": a})
        return out

    n_ov = int(n_candidates * 0.6)
    with open(ov, "wb") as f:
        c = i = 0
        while c < n_ov:
            k = rng.choice((1, 1, 2, 3))
            f.write(orjson.dumps({"id": f"ov{i}", "images": [f"imgs/{i % 5000}/{i}.jpg"], "messages": conv(k, True),
                                  "data_source": f"src_{i % 17}_a_b_c"}) + b"\n")
            c += k
            i += 1
    with open(vv, "wb") as f:
        c = i = 0
        while c < n_candidates - n_ov:
            k = rng.choice((1, 2, 3))
            nf = rng.randint(32, 180)
            f.write(orjson.dumps({"id": f"v{i}", "video_id": f"vid{i}", "data_source": f"vsrc_{i % 11}",
                                  "images": [f"frames/vid{i}/{j:05d}.jpg" for j in range(nf)],
                                  "messages": conv(k, True)}) + b"\n")
            c += k
            i += 1
    return [ov, vv]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dir", default="/tmp/gdo_bench_pool")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gdo.pool.ingest import ingest
    from gdo.pool.writer import write_rows

    paths = make_pool(Path(a.dir), a.candidates)
    size = sum(os.path.getsize(p) for p in paths)
    res = None
    for w in a.workers:
        res = None  # free the previous result first
        t = time.perf_counter()
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        res = ingest(paths, probe_media=False, workers=w)
        dt = time.perf_counter() - t
        r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
               + c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        rows = res.stats["totals"]["rows_read"]
        n = res.candidates.num_rows
        print(json.dumps({"bench": "ingest_no_probe", "workers": w, "bytes": size, "rows": rows, "candidates": n,
                          "seconds": round(dt, 3), "cpu_s": round(cpu, 3),
                          "load_avg_1m": round(os.getloadavg()[0], 2), "rows_per_s": round(rows / dt), "candidates_per_s": round(n / dt)}))
    if res is not None:
        uids = res.candidates.column("uid").to_pylist()[::20]
        t = time.perf_counter()
        n = write_rows(res.candidates, uids, Path(a.dir) / "subset.jsonl")
        dt = time.perf_counter() - t
        print(json.dumps({"bench": "write_rows_5pct", "chosen": len(uids), "rows": n, "seconds": round(dt, 3)}))


if __name__ == "__main__":
    main()
