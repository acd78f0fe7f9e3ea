"""A stand-in stage for ``bench_ray_overhead.py``: each shard sleeps ``payload`` seconds."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pyarrow as pa


def _compute(state, payload: float) -> pa.Table:
    time.sleep(payload)
    return pa.table({"slept_s": [payload]})


STAGE = SimpleNamespace(setup=lambda args: {}, compute=_compute)


def resolver(name: str):
    """Stage resolver of :class:`gdo.engine.executor.ShardTask` (picklable by reference)."""
    return STAGE
