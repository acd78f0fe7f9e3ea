#!/usr/bin/env python
"""Scheduling overhead of the Ray engine: N shard tasks that each sleep S seconds (no CPU) run
through :class:`gdo.engine.ray.RayExecutor` with 1 and 2 workers; the ideal wall time is
N * S / workers. One JSON line per worker count, then the 2-vs-1 scaling.

Because the tasks sleep, other jobs on the machine do not distort the figure the way they distort
``bench_ray_media.py``. ``--busy`` spins the CPU instead of sleeping (pure CPU-bound tasks, no I/O,
equal lengths: what the engine gives CPU work on this machine).

    PYTHONPATH=src python benchmarks/bench_ray_overhead.py [--tasks 24] [--sleep 0.5] [--busy]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sleep_stage import resolver  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--busy", action="store_true", help="spin the CPU instead of sleeping")
    a = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])
    from gdo.engine.executor import ShardTask
    from gdo.engine.ray import RayExecutor

    walls = {}
    for w in (1, 2):
        ex = RayExecutor(workers=w)
        try:
            list(ex.run([ShardTask(resolver, "sleep", {}, (0.05, False)) for _ in range(2 * w)], False, False, "warm-up"))
            t0 = time.perf_counter()
            list(ex.run([ShardTask(resolver, "sleep", {}, (a.sleep, a.busy)) for _ in range(a.tasks)], False, False, "sleep"))
            walls[w] = time.perf_counter() - t0
        finally:
            ex.close()
        ideal = a.tasks * a.sleep / w
        print(json.dumps({"workers": w, "tasks": a.tasks, "sleep_s": a.sleep, "busy": a.busy, "wall_s": round(walls[w], 2),
                          "ideal_s": ideal, "overhead_s_per_task": round((walls[w] - ideal) * w / a.tasks, 4),
                          "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
    print(json.dumps({"scaling_2_vs_1": round(walls[1] / walls[2], 3)}))


if __name__ == "__main__":
    main()
