#!/usr/bin/env python
"""Paper mode vs the authors' release on a generated pool of the release's shape; prints Jaccard.

Generates (or reuses) a LLaVA-OneVision + LLaVA-Video shaped pool with its merged metrics file
(``benchmarks/make_pool.py``, form ``merged``), runs the release's ``gdo/build_pair.py`` (from a
checkout of github rujiewu/GDO given with ``--release``; nothing of it is copied) and
``gdo.selection.select(mode="paper")`` for each preset, and prints the budget and the Jaccard
similarity of the two subsets and of the two Uni-10x baselines. Issue 12's target: 1.0 (at least
0.99) for the subset on a 100k pool.

CLI::

    python benchmarks/release_compare.py --release /path/to/GDO [--n 100000] [--pool DIR] \
        [--presets temp_plus,minloss] [--budget auto]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if (a or b) else 1.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--release", required=True, help="checkout of github rujiewu/GDO")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pool", help="pool folder (generated there when missing)")
    ap.add_argument("--presets", default="temp_plus")
    ap.add_argument("--budget", default="auto")
    a = ap.parse_args(argv)
    mp = _load("make_pool")
    rf = _load("release_fixture")
    from gdo.pool.ingest import ingest
    from gdo.selection.presets import get_preset
    from gdo.selection.select import select

    tmp = None
    pool = Path(a.pool) if a.pool else Path(tmp := tempfile.mkdtemp(prefix="gdo_release_cmp_"))
    if not (pool / mp.MERGED_FILE).exists():
        t0 = time.perf_counter()
        mp.generate(a.n, pool, seed=0, forms=("merged",))
        print(f"pool: {a.n:,} candidates generated in {time.perf_counter() - t0:.1f}s at {pool}")
    files = [str(pool / mp.IMAGE_FILE), str(pool / mp.VIDEO_FILE)]
    cand = ingest(files, probe_media=False).candidates
    # the release's file names for the fixture runner
    fx = Path(tempfile.mkdtemp(prefix="gdo_release_fx_"))
    for src, dst in ((mp.IMAGE_FILE, rf.IMAGE_FILE), (mp.VIDEO_FILE, rf.VIDEO_FILE), (mp.MERGED_FILE, rf.METRICS_FILE)):
        (fx / dst).symlink_to((pool / src).resolve())
    for preset in [p for p in a.presets.split(",") if p]:
        case = {"name": preset, "preset": preset, "budget": a.budget, "flags": [], "overrides": {}}
        t0 = time.perf_counter()
        rel = rf.run_release(Path(a.release), fx, case)
        t_rel = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = select(cand, str(pool / mp.MERGED_FILE), get_preset(preset), mode="paper", seed=42,
                     budget=a.budget if a.budget == "auto" else int(a.budget))
        t_gdo = time.perf_counter() - t0
        print(json.dumps({
            "preset": preset, "N": cand.num_rows, "release_total_pairs": rel["total_pairs"],
            "n_gdo": res.report["budget"]["n"], "n_release": rel["n"],
            "jaccard_subset": round(jaccard(res.gdo_uids(), rel["gdo"]), 6),
            "jaccard_baseline": round(jaccard(res.baseline_uids(), rel["baseline"]), 6),
            "seconds_release": round(t_rel, 1), "seconds_gdo_select": round(t_gdo, 1)}))
    if tmp:
        print(f"(pool left at {tmp})")


if __name__ == "__main__":
    main()
