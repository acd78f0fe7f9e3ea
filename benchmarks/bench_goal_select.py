#!/usr/bin/env python
"""Time goal-set selection against preset selection on a generated pool (issue 15, "done when" 3).

"Profile once, select for many goals": the pool (``benchmarks/make_pool.py``, cached under
``benchmarks/_pools/``) gets an embedding store ``embeddings.parquet`` beside its
``descriptors.parquet`` (written with :func:`gdo.descriptors.embedding_store.write_embeddings`).
Then, as subprocesses with the same pool files and descriptors:

* ``preset``: ``gdo select POOL... -d descriptors.parquet --preset temp_plus``;
* ``goal``: ``gdo select POOL... -d descriptors.parquet --preset target --goal-set GOAL`` with a
  new 30-question goal set (NExT-QA temporal questions when ../shared is present, else written
  ones), which reads the store, embeds only the 30 goal texts, and scores relevance.

The store's vectors are seeded random unit vectors (384 float32 per candidate) tagged with the
``hashing`` text encoder, so goal items are embedded weight-free: what is timed is reading the
store and scoring 1M candidates, which does not depend on the values (embedding 1M texts with
MiniLM is the profile's one-off cost, not selection's). Runs alternate preset/goal ``--reps``
times; prints one JSON line per run and a summary ``{"ratio_median": goal/preset}``.

    PYTHONPATH=src python benchmarks/bench_goal_select.py --n 1000000 [--reps 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CSV = HERE.parent.parent / "shared/data/real/doc-doc__NExT-QA/dataset/nextqa/val.csv"


def write_store(pool: Path, seed: int = 0) -> Path:
    import pyarrow.parquet as pq

    from gdo.descriptors.embedding_store import write_embeddings

    f = pool / "embeddings.parquet"
    if f.exists():
        return f
    uids = pq.read_table(pool / "descriptors.parquet", columns=["uid"])["uid"].to_pylist()
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((len(uids), 384), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    write_embeddings(pool, uids, emb, meta={"text_encoder": "hashing", "note": "benchmark: seeded random vectors"})
    return f


def write_goal(path: Path) -> None:
    if CSV.exists():
        rows = [r for r in csv.DictReader(open(CSV, newline="", encoding="utf-8")) if r["type"] in ("TN", "TC", "TP")]
        qs = [r["question"] for r in rows[:30]]
    else:
        qs = [f"what does the person do after step {i} of the video" for i in range(30)]
    path.write_text("\n".join(qs) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    from bench_select import ensure_pool, pool_files

    pool = ensure_pool(a.n, 0, ["parquet"])
    t = time.perf_counter()
    store = write_store(pool)
    print(json.dumps({"event": "store", "path": str(store), "bytes": store.stat().st_size,
                      "seconds": round(time.perf_counter() - t, 1)}), file=sys.stderr, flush=True)
    goal = pool / "goal_nextqa_temporal.txt"
    write_goal(goal)
    files = [str(p) for p in pool_files(pool)]
    desc = str(pool / "descriptors.parquet")
    env = dict(os.environ)
    times: dict[str, list[float]] = {"preset": [], "goal": []}
    for rep in range(a.reps):
        for kind in ("preset", "goal"):
            out = pool / f"_out_{kind}"
            argv = [sys.executable, "-m", "gdo", "select", *files, "-d", desc, "-o", str(out)]
            argv += ["--preset", "temp_plus"] if kind == "preset" else ["--preset", "target", "--goal-set", str(goal)]
            t = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
            secs = time.perf_counter() - t
            stages = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}
            times[kind].append(secs)
            print(json.dumps({"n": a.n, "kind": kind, "rep": rep, "seconds": round(secs, 2), "rc": r.returncode,
                              "load1": round(os.getloadavg()[0], 2), "stages": stages,
                              "stderr": r.stderr[-400:] if r.returncode else ""}), flush=True)
    ratio = float(np.median(times["goal"]) / np.median(times["preset"]))
    print(json.dumps({"summary": {"n": a.n, "preset_median_s": round(float(np.median(times["preset"])), 2),
                                  "goal_median_s": round(float(np.median(times["goal"])), 2),
                                  "ratio_median": round(ratio, 3), "target": "<= 2.0", "met": ratio <= 2.0}}))
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
