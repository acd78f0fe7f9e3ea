"""A stand-in stage for ``bench_ray_overhead.py``: each shard sleeps, or spins the CPU, for
``payload = (seconds, busy)``."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pyarrow as pa


def _compute(state, payload) -> pa.Table:
    seconds, busy = payload
    t0 = time.perf_counter()
    if busy:
        n = 0
        while time.perf_counter() - t0 < seconds:
            n += 1
    else:
        time.sleep(seconds)
    return pa.table({"seconds": [seconds]})


STAGE = SimpleNamespace(setup=lambda args: {}, compute=_compute)


def resolver(name: str):
    """Stage resolver of :class:`gdo.engine.executor.ShardTask` (picklable by reference)."""
    return STAGE
