"""Benchmark `gdo.pool.ingest.ingest(probe_media=False)` on a LLaVA-OV + LLaVA-Video pool, in both
modes: ``full`` (default, ``media``/``media_raw`` lists built) and ``lean`` (``media_columns=False``,
what ``gdo select`` uses).

Each (mode, workers) run is a fresh subprocess, so its peak resident memory is its own. Prints one
JSON line per run: {"bench": "ingest_no_probe", "mode", "workers", "bytes", "rows", "candidates",
"seconds" (wall), "cpu_s" (user+sys of the process and its workers), "peak_rss_mb" (the process,
or the largest worker when larger; with workers > 1 the parent memory-maps the workers' Arrow
spill files from /dev/shm, which this figure does not fully count), "load_avg_1m" (machine load at the end: on a shared machine
wall time is not the code's alone), "rows_per_s", "candidates_per_s"}; then one line for
`write_rows` of a 5% subset (lean mode, first worker count).

Pools: ``--pool-dir DIR`` uses ``DIR/llava_onevision.jsonl`` + ``DIR/llava_video.jsonl`` as written
by ``python benchmarks/make_pool.py --n 1000000 --out DIR --forms parquet``; without it, a simpler
pool (image rows of 1-3 turns, frame lists of 32-180 paths with 1-3 turns) is generated under
``--dir`` (once; reused).

Usage: python benchmarks/bench_ingest.py [--candidates 1000000] [--workers 1 2] [--modes lean full]
       [--pool-dir benchmarks/_pools/n1000000_s0 | --dir /tmp/gdo_bench_pool]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]


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
    tmp_ov, tmp_vv = ov.with_suffix(".tmp"), vv.with_suffix(".tmp")
    with open(tmp_ov, "wb") as f:
        c = i = 0
        while c < n_ov:
            k = rng.choice((1, 1, 2, 3))
            f.write(orjson.dumps({"id": f"ov{i}", "images": [f"imgs/{i % 5000}/{i}.jpg"], "messages": conv(k, True),
                                  "data_source": f"src_{i % 17}_a_b_c"}) + b"\n")
            c += k
            i += 1
    with open(tmp_vv, "wb") as f:
        c = i = 0
        while c < n_candidates - n_ov:
            k = rng.choice((1, 2, 3))
            nf = rng.randint(32, 180)
            f.write(orjson.dumps({"id": f"v{i}", "video_id": f"vid{i}", "data_source": f"vsrc_{i % 11}",
                                  "images": [f"frames/vid{i}/{j:05d}.jpg" for j in range(nf)],
                                  "messages": conv(k, True)}) + b"\n")
            c += k
            i += 1
    os.replace(tmp_ov, ov)
    os.replace(tmp_vv, vv)
    return [ov, vv]


def _child(mode: str, workers: int, paths: list[str], write_dir: str | None) -> None:
    """One measured run in this (fresh) process; prints its JSON line."""
    sys.path.insert(0, str(ROOT / "src"))
    from gdo.pool.ingest import ingest

    size = sum(os.path.getsize(p) for p in paths)
    t = time.perf_counter()
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = ingest(paths, probe_media=False, workers=workers, media_columns=(mode == "full"))
    dt = time.perf_counter() - t
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
           + c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
    rss = max(r1.ru_maxrss, c1.ru_maxrss) / 1024  # KiB on Linux
    rows = res.stats["totals"]["rows_read"]
    n = res.candidates.num_rows
    print(json.dumps({"bench": "ingest_no_probe", "mode": mode, "workers": workers, "bytes": size, "rows": rows,
                      "candidates": n, "seconds": round(dt, 3), "cpu_s": round(cpu, 3),
                      "peak_rss_mb": round(rss), "load_avg_1m": round(os.getloadavg()[0], 2),
                      "rows_per_s": round(rows / dt), "candidates_per_s": round(n / dt)}), flush=True)
    if write_dir:
        from gdo.pool.writer import write_rows

        uids = res.candidates.column("uid").to_pylist()[::20]
        t = time.perf_counter()
        k = write_rows(res.candidates, uids, Path(write_dir) / "subset.jsonl")
        dt = time.perf_counter() - t
        print(json.dumps({"bench": "write_rows_5pct", "mode": mode, "chosen": len(uids), "rows": k,
                          "seconds": round(dt, 3)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", choices=["lean", "full"], default=["lean", "full"])
    ap.add_argument("--dir", default="/tmp/gdo_bench_pool", help="where the generated pool goes")
    ap.add_argument("--pool-dir", default=None, help="use a make_pool.py pool folder instead")
    ap.add_argument("--no-write", action="store_true", help="skip the write_rows measurement")
    ap.add_argument("--_child", nargs=2, metavar=("MODE", "WORKERS"), help=argparse.SUPPRESS)
    ap.add_argument("--_paths", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--_write", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        _child(a._child[0], int(a._child[1]), a._paths, a._write)
        return
    if a.pool_dir:
        d = Path(a.pool_dir)
        paths = [d / "llava_onevision.jsonl", d / "llava_video.jsonl"]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            sys.exit(f"missing {missing}: run python benchmarks/make_pool.py --n N --out {d} --forms parquet")
    else:
        paths = make_pool(Path(a.dir), a.candidates)
    first = True
    for mode in a.modes:
        for w in a.workers:
            cmd = [sys.executable, __file__, "--_child", mode, str(w), "--_paths", *map(str, paths)]
            if first and not a.no_write:
                cmd += ["--_write", a.dir]
                Path(a.dir).mkdir(parents=True, exist_ok=True)
            first = False
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
