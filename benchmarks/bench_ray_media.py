#!/usr/bin/env python
"""Media-stage throughput on the real clips: local engine (1, 2 processes) and Ray engine (1, 2
workers on a local Ray sized to them), one JSON line per run, then the Ray 2-vs-1 scaling.

The pool: one candidate per video file under ../shared/data/real (up to ``--videos``), profiled
with ``descriptors=["motion", "dedup"]`` (the media stage only: decode once, motion, visual
feature, hashes), ``--shard`` media items per shard (default 1; gdo's default is 32). Throughput = media items / wall seconds of the media
stage (``cost.json``). For Ray, gdo's own local Ray (``RayExecutor``, as ``gdo profile --engine ray``
starts it) is started and its worker processes are warmed by profiling 4 clips per worker, one per
shard, into another folder first, so that every worker has run a task (Ray's start and a cold start of
a Ray worker -- process, imports -- take 5-20 s; printed as ``ray_warmup_s``; a worker that ran no
warm-up task imports gdo's media code, about 0.5 s, inside the measured run), so the figure is
the steady-state throughput. Each measured run writes into a fresh folder: nothing is reused. Checks every run's descriptors.parquet is
byte-identical to the first. Each measured run is its own Python process (as a user's
``gdo profile`` is; several Ray sessions in one process measured 3-4 s slower per run from the
second on). ``--repeat`` runs the whole set that many times, interleaved (this
2-core VM's throughput drifts by 20-30 % from minute to minute); the scaling line uses the median
throughput of each engine and worker count, and also gives the range over repeats.

    PYTHONPATH=src python benchmarks/bench_ray_media.py [--videos 24] [--copies 1] [--shard 1] [--repeat 3] [--real ../shared/data/real]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXT = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def _pool(real: Path, n: int, copies: int = 1, links: Path | None = None):
    """One candidate per clip; with ``copies`` > 1 each clip is also reached through ``copies - 1``
    symlinks under ``links`` (distinct paths, so distinct media items decoded separately): more
    items, for shards as long as gdo's default ones, from the few real clips."""
    import pyarrow as pa

    from gdo.schema import CANDIDATE_SCHEMA

    vids = sorted(p for p in real.rglob("*") if p.suffix.lower() in EXT and p.stat().st_size > 20_000)[:n]
    if copies > 1:
        links.mkdir(parents=True, exist_ok=True)
        extra = []
        for c in range(1, copies):
            for i, v in enumerate(vids):
                ln = links / f"c{c}_{i}{v.suffix}"
                if not ln.exists():
                    ln.symlink_to(v)
                extra.append(ln)
        vids = vids + extra
    rows = []
    for i, v in enumerate(vids):
        rows.append({"uid": f"vv::b{i}::t0", "row_id": f"b{i}", "turn": 0, "source_file": "/bench.jsonl",
                     "file_index": 0, "line": i + 1, "format": "llava_video", "bucket": "short_video",
                     "question": "What happens?", "answer": "Something.", "user_msg": 0, "asst_msg": 1,
                     "media_kind": "video", "media": [str(v)], "media_raw": [str(v)], "video_key": str(v),
                     "n_frames": None, "native_frames": None, "fps": None, "duration_s": None,
                     "data_source": "bench", "pool_pos": i})
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)


def _one(a, spec: str, rep: int, tmp: Path) -> dict:
    """One measured run (in its own process, as a user's ``gdo profile`` is): returns its figures."""
    from gdo.descriptors.profile import profile

    engine, w = spec.split(":")
    w = int(w)
    cands = _pool(a.real, a.videos, a.copies, tmp / "links")
    warm = None
    executor = None
    if engine == "ray":  # gdo's own local Ray (RayExecutor), warmed by a first profile
        from gdo.engine.ray import RayExecutor

        executor = RayExecutor(workers=w)
        t0 = time.perf_counter()
        profile(_pool(a.real, 4 * w), tmp / f"warm_{w}_r{rep}", descriptors=["motion", "dedup"], engine="ray",
                workers=w, shard_sizes={"media": 1}, executor=executor)  # 4 one-clip shards per worker
        warm = round(time.perf_counter() - t0, 2)
    out = tmp / f"{spec.replace(':', '_')}_r{rep}"
    t0 = time.perf_counter()
    profile(cands, out, descriptors=["motion", "dedup"], engine=engine, workers=w, shard_sizes={"media": a.shard},
            executor=executor)
    total = time.perf_counter() - t0
    if executor is not None:
        executor.close()
    cost = json.loads((out / "cost.json").read_text())["profile"]["media"]
    return {"engine": engine, "workers": w, "repeat": rep, "media_items": cost["units"], "shard": a.shard,
            "copies": a.copies, "media_wall_s": cost["wall_s"], "items_per_s": round(cost["units"] / cost["wall_s"], 3),
            "task_s_per_item": cost["task_s_per_unit"], "total_s": round(total, 2), "ray_warmup_s": warm,
            "out": str(out), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    ap.add_argument("--runs", default="local:1,local:2,ray:1,ray:2")
    ap.add_argument("--copies", type=int, default=1,
                    help="reach each clip through this many distinct paths (symlinks): more media items")
    ap.add_argument("--shard", type=int, default=1,
                    help="media items per shard (gdo's default is 32; 1 maximises per-task overhead)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine:workers, interleaved")
    ap.add_argument("--one", nargs=3, metavar=("SPEC", "REPEAT", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(_one(a, a.one[0], int(a.one[1]), Path(a.one[2]))), flush=True)
        return

    ref = None
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, rep in [(sp, r) for r in range(a.repeat) for sp in a.runs.split(",")]:
            cmd = [sys.executable, __file__, "--videos", str(a.videos), "--real", str(a.real), "--copies",
                   str(a.copies), "--shard", str(a.shard), "--one", spec, str(rep), tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{spec} (repeat {rep}) failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            data = (Path(row.pop("out")) / "descriptors.parquet").read_bytes()
            ref = ref or data
            row["identical_to_first"] = data == ref
            results.setdefault(spec, []).append(row["items_per_s"])
            print(json.dumps(row), flush=True)
    for eng in ("local", "ray"):
        if f"{eng}:1" in results and f"{eng}:2" in results:
            one, two = results[f"{eng}:1"], results[f"{eng}:2"]
            print(json.dumps({"engine": eng, "repeats": len(one),
                              "items_per_s_median": {"1": round(statistics.median(one), 3), "2": round(statistics.median(two), 3)},
                              "scaling_2_vs_1": round(statistics.median(two) / statistics.median(one), 3),
                              "scaling_per_repeat": [round(b / c, 3) for c, b in zip(one, two)]}))


if __name__ == "__main__":
    sys.exit(main())
