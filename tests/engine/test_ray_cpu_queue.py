"""Issue 17, the Ray engine's CPU stages: ``--workers`` bounds the tasks that *run* at once, while
on a Ray no larger than ``workers`` CPUs extra tasks wait queued in the raylet (so no worker idles
between shards while Ray Data's scheduling loop catches up; the throughput is measured in
benchmarks/bench_ray_media.py, not here).

The running tasks are read from the tasks themselves (pid, start and end times), not from gdo."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import pyarrow as pa
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from _ray_helpers import fresh_ray  # noqa: E402


def _compute(state, payload) -> pa.Table:
    t0 = time.time()
    time.sleep(0.15)
    return pa.table({"shard": [payload], "pid": [os.getpid()], "t0": [t0], "t1": [time.time()]})


_STAGE = SimpleNamespace(setup=lambda args: {}, compute=_compute)


def _resolver(name: str):
    return _STAGE


@pytest.fixture
def no_ray():
    with fresh_ray(sys.modules[__name__]):
        yield


def _run(ex, n: int) -> list[dict]:
    from gdo.engine.executor import ShardTask

    rows = []
    for j, (status, table, _) in ex.run([ShardTask(_resolver, "fake_media", {}, i) for i in range(n)],
                                        uses_model=False, progress=False, desc="media"):
        assert status == "ok", table
        rows.append(table.to_pylist()[0])
    assert sorted(r["shard"] for r in rows) == list(range(n))
    return rows


def _most_at_once(rows: list[dict]) -> int:
    """Largest number of task intervals [t0, t1) that overlap at one instant."""
    events = sorted([(r["t0"], 1) for r in rows] + [(r["t1"], -1) for r in rows], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def test_local_ray_queues_tasks_but_runs_workers_at_once(no_ray):
    from gdo.engine.ray import QUEUED_PER_WORKER, RayExecutor

    ex = RayExecutor(workers=1, object_store_memory=96 * 1024 * 1024)
    try:
        rows = _run(ex, 8)
        assert ray.cluster_resources()["CPU"] == 1
        assert ex._cpu_tasks_in_flight() == QUEUED_PER_WORKER  # queued in the raylet ...
    finally:
        ex.close()
    assert _most_at_once(rows) == 1  # ... but never two running at once on the one CPU
    assert len({r["pid"] for r in rows}) == 1


def test_larger_cluster_keeps_workers_as_the_bound(no_ray):
    """A Ray with more CPUs than ``--workers`` (an existing cluster): no queueing beyond
    ``workers``, else Ray would run the extra tasks on the spare CPUs."""
    from gdo.engine.ray import RayExecutor

    ray.init(num_cpus=2, object_store_memory=96 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    ex = RayExecutor(workers=1)
    try:
        rows = _run(ex, 8)
        assert ex._cpu_tasks_in_flight() == 1
    finally:
        ex.close()
    assert _most_at_once(rows) == 1


def test_cluster_given_by_address_gets_no_queue(no_ray):
    """On a cluster named by ``--address`` (it may autoscale past its CPUs of now) the cap stays
    ``workers``, even when its CPUs are as few."""
    from gdo.engine.ray import RayExecutor

    ray.init(num_cpus=1, object_store_memory=96 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    assert RayExecutor(address="auto", workers=1)._cpu_tasks_in_flight() == 1
    assert RayExecutor(workers=1)._cpu_tasks_in_flight() == 4
