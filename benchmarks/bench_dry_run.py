#!/usr/bin/env python
"""Wall time of `gdo profile --dry-run` (issue 17: under 30 s on the demo pool and a generated 1M
pool), one JSON line per pool: seconds, candidates, distinct videos, GPU-hours estimate.

    PYTHONPATH=src python benchmarks/bench_dry_run.py [--pool1m DIR] [--model TINY_MODEL_DIR]

``--pool1m``: a folder written by ``benchmarks/make_pool.py --n 1000000 --forms parquet``.
``--model``: a model folder whose processor measures prompt tokens (e.g. ``gdo tiny-model DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(files, model, label):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gdo", "profile", *map(str, files), "--out", tmp, "--dry-run", "--json",
               "--model-size", "8", "--gpu", "h100", "--gpus", "8"] + (["--model", str(model)] if model else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode != 0:
        print(json.dumps({"pool": label, "error": r.stderr[-1000:]}))
        return
    e = json.loads(r.stdout)
    print(json.dumps({"pool": label, "seconds": round(dt, 2), "under_30s": dt < 30, **e["counts"],
                      "gpu_hours_8b_h100": round(e["gpu_hours"]["model"], 2), "model": bool(model),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool1m", type=Path)
    ap.add_argument("--model", type=Path)
    a = ap.parse_args()
    demo = sorted(p for p in (REPO / "examples" / "demo_pool").iterdir() if p.suffix in (".json", ".jsonl"))
    _time(demo, a.model, "demo")
    if a.pool1m:
        _time([a.pool1m / "llava_onevision.jsonl", a.pool1m / "llava_video.jsonl"], a.model, "generated_1m")


if __name__ == "__main__":
    main()
