#!/usr/bin/env python
"""Time the selection core (gdo.selection.select.select) on in-memory candidate tables.

Unlike bench_select.py (which times the whole `gdo select` command, ingest and writing included),
this builds the candidates table in memory first and times only selection: descriptors join,
fields, scores, budget, quotas, constraints, fill, baseline and report.

Candidates come from ``--pool DIR`` (a make_pool.py output folder: its two JSONL files are
ingested once and its descriptors.parquet is read, then both are tiled ``--tile`` times with
fresh uids and video keys) or, without ``--pool``, from tests/_synthetic_pool.py.

Prints one JSON line per run: {"n", "preset", "mode", "source", "seconds", "peak_rss_mb", "stages"}.

    python benchmarks/bench_select_memory.py --n 100000 1000000
    python benchmarks/bench_select_memory.py --pool benchmarks/_pools/n100000_s0 --tile 1 10
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc


def _tile(c: pa.Table, d: pa.Table, k: int) -> tuple[pa.Table, pa.Table]:
    if k == 1:
        return c, d
    cs, ds = [], []
    n = c.num_rows
    for i in range(k):
        tag = f"#{i}"
        ci = c.set_column(c.schema.get_field_index("uid"), "uid", pc.binary_join_element_wise(c["uid"], tag, ""))
        ci = ci.set_column(ci.schema.get_field_index("video_key"), "video_key",
                           pc.binary_join_element_wise(ci["video_key"], tag, ""))
        ci = ci.set_column(ci.schema.get_field_index("pool_pos"), "pool_pos", pc.add(ci["pool_pos"], i * n))
        # vary the texts so the copies are not all duplicates of each other
        ci = ci.set_column(ci.schema.get_field_index("answer"), "answer", pc.binary_join_element_wise(ci["answer"], f" v{i}", ""))
        cs.append(ci)
        ds.append(d.set_column(d.schema.get_field_index("uid"), "uid", pc.binary_join_element_wise(d["uid"], tag, "")))
    return pa.concat_tables(cs).combine_chunks(), pa.concat_tables(ds).combine_chunks()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="*", default=[100_000, 1_000_000], help="synthetic pool sizes")
    ap.add_argument("--pool", help="make_pool.py output folder (ingested once, then tiled)")
    ap.add_argument("--tile", type=int, nargs="*", default=[1, 10], help="tilings of --pool")
    ap.add_argument("--presets", nargs="*", default=["temp_plus"])
    ap.add_argument("--modes", nargs="*", default=["default", "paper"])
    a = ap.parse_args()
    from gdo.selection.select import select

    jobs = []
    if a.pool:
        import pyarrow.parquet as pq

        from gdo.pool.ingest import ingest

        base = ingest([f"{a.pool}/llava_onevision.jsonl", f"{a.pool}/llava_video.jsonl"], probe_media=False).candidates
        desc = pq.read_table(f"{a.pool}/descriptors.parquet")
        for k in a.tile:
            jobs.append((f"pool x{k}", *_tile(base, desc, k)))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _synthetic_pool import make_candidates, make_descriptors  # test/benchmark helper, not the package

        for n in a.n:
            c = make_candidates(n, seed=0)
            jobs.append(("synthetic", c, make_descriptors(c, seed=0)))
    for source, c, d in jobs:
        for preset in a.presets:
            for mode in a.modes:
                t = time.perf_counter()
                res = select(c, d, preset=preset, mode=mode)
                sec = time.perf_counter() - t
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(json.dumps({"n": c.num_rows, "preset": preset, "mode": mode, "source": source,
                                  "seconds": round(sec, 3), "peak_rss_mb": round(rss, 1),
                                  "selected": res.report["accounting"]["selected"], "unmet": res.report["unmet"],
                                  "stages": {k: round(v, 3) for k, v in res.timings.items()}}), flush=True)


if __name__ == "__main__":
    main()
