#!/usr/bin/env python
"""Driver memory of ``gdo profile`` (issue 17): peak resident memory per phase (reading the
candidates, each stage, each descriptor group) on a candidates.parquet written by ``gdo ingest``,
in this process with the local engine, the hashing text encoder and no model, and the peak per
candidate: resident (VmRSS) and of it anonymous (RssAnon: the driver's own memory; the rest is
pages of profile's memory-mapped scratch files, which the OS can drop). Media paths of a generated pool do not exist, so the media stage only records errors:
the figure is the driver's bookkeeping, not decoding.

    PYTHONPATH=src python benchmarks/bench_profile_memory.py CANDIDATES.parquet [--out DIR]

Make the input with ``benchmarks/make_pool.py`` and ``gdo ingest POOL... --no-probe --out DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import threading
import time
from pathlib import Path


def _rss_mb() -> tuple[float, float]:
    """(resident, of it anonymous) MB: RssAnon is the driver's own memory; the rest (RssFile) is
    pages of memory-mapped files (the candidate copy, the text matrix), which the OS drops under
    pressure and reads again."""
    f = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon"):
            f[k] = int(v.split()[0]) / 1024
    return f["VmRSS"], f["RssAnon"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates", type=Path)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    import pyarrow.parquet as pq

    import gdo.engine.executor as executor
    from gdo.descriptors.profile import profile
    from gdo.descriptors.registry import REGISTRY, registry

    registry()  # load the built-in groups before wrapping them
    phase = ["imports"]
    peak: dict[str, float] = {}
    anon: dict[str, float] = {}

    def monitor():
        while True:
            rss, an = _rss_mb()
            peak[phase[0]] = max(peak.get(phase[0], 0.0), rss)
            anon[phase[0]] = max(anon.get(phase[0], 0.0), an)
            time.sleep(0.05)

    threading.Thread(target=monitor, daemon=True).start()
    run_stage = executor.run_stage

    def staged(ex, store, *args, **kw):
        phase[0] = f"stage {store.stage}"
        return run_stage(ex, store, *args, **kw)

    executor.run_stage = staged
    for i, d in enumerate(REGISTRY.descriptors):
        def wrapped(ctx, _f=d.compute, _n=d.name):
            phase[0] = f"group {_n}"
            return _f(ctx)
        REGISTRY.descriptors[i] = dataclasses.replace(d, compute=wrapped)
    import gdo.descriptors.embedding_store as store_mod
    import gdo.descriptors.profile as profile_mod

    write_parquet, write_store = profile_mod.write_parquet_atomic, store_mod.write_embeddings

    def parquet_phase(path, *args, **kw):
        phase[0] = f"write {Path(path).name}"
        return write_parquet(path, *args, **kw)

    def store_phase(*args, **kw):
        phase[0] = "write embedding store"
        return write_store(*args, **kw)

    profile_mod.write_parquet_atomic, store_mod.write_embeddings = parquet_phase, store_phase
    n = pq.ParquetFile(a.candidates).metadata.num_rows
    time.sleep(0.2)
    phase[0] = "read candidates + context"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        profile(a.candidates, a.out or tmp, descriptors=["fields", "embeddings", "cluster", "dedup"],
                text_encoder="hashing", progress=False)
        wall = time.perf_counter() - t0
        phase[0] = "written"
        time.sleep(0.2)
    top, top_anon = max(peak.values()), max(anon.values())
    print(json.dumps({"candidates": n, "wall_s": round(wall, 1), "peak_mb": round(top),
                      "peak_kb_per_candidate": round((top - peak["imports"]) * 1024 / n, 2),
                      "peak_anon_mb": round(top_anon),
                      "peak_anon_kb_per_candidate": round((top_anon - anon["imports"]) * 1024 / n, 2),
                      "phases_mb": {k: round(v) for k, v in peak.items()},
                      "phases_anon_mb": {k: round(v) for k, v in anon.items()}}))


if __name__ == "__main__":
    main()
