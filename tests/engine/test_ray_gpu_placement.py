"""Issue 17 item 3, on a machine without GPUs: a local Ray started by the Ray engine with
``devices`` declares that many (logical) GPUs, and a model stage gets one actor per GPU, each
seeing only its own device (Ray sets ``CUDA_VISIBLE_DEVICES`` per actor), with the default single
``--workers`` CPU shared by the actors (no actor left waiting for a CPU)."""

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
    time.sleep(0.3)  # long enough that both actors take shards
    return pa.table({"shard": [payload], "gpu_ids": [",".join(str(g) for g in ray.get_gpu_ids())],
                     "visible": [os.environ.get("CUDA_VISIBLE_DEVICES", "")], "pid": [os.getpid()]})


_STAGE = SimpleNamespace(setup=lambda args: {}, compute=_compute)


def _resolver(name: str):
    return _STAGE


@pytest.fixture
def no_ray():
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    with fresh_ray(sys.modules[__name__]):
        yield
    if before is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = before


@pytest.mark.parametrize("devices", [(0, 1), (1,)])
def test_one_model_actor_per_chosen_gpu(no_ray, devices):
    from gdo.engine.executor import ShardTask
    from gdo.engine.ray import RayExecutor

    ex = RayExecutor(workers=1, devices=devices, device="auto", object_store_memory=96 * 1024 * 1024)
    try:
        tasks = [ShardTask(_resolver, "fake_model", {}, i) for i in range(8)]
        got = {}
        for j, (status, table, _) in ex.run(tasks, uses_model=True, progress=False, desc="model", gpu=True):
            assert status == "ok", table
            got[j] = table.to_pylist()[0]
        assert ray.cluster_resources().get("GPU") == len(devices)
    finally:
        ex.close()
    assert sorted(got) == list(range(8)) and all(got[j]["shard"] == j for j in got)
    per_actor = {}
    for r in got.values():
        per_actor.setdefault(r["pid"], set()).add((r["gpu_ids"], r["visible"]))
    # one actor per GPU, each pinned to one device for its whole life; together they cover every GPU
    assert len(per_actor) == len(devices)
    assert all(len(v) == 1 for v in per_actor.values())
    ids = sorted(next(iter(v))[0] for v in per_actor.values())
    assert ids == [str(d) for d in devices]  # exactly the chosen devices (Ray reads CUDA_VISIBLE_DEVICES), one each
    assert all(next(iter(v))[1] == next(iter(v))[0] for v in per_actor.values())  # sees only its own GPU
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ",".join(str(d) for d in devices)  # the driver's choice


def test_cpu_device_keeps_actors_off_gpus(no_ray):
    """``--device cpu`` on a machine with GPUs: CPU actors (``workers`` of them), no GPU reserved."""
    from gdo.engine.executor import ShardTask
    from gdo.engine.ray import RayExecutor

    ex = RayExecutor(workers=1, devices=(0, 1), device="cpu", object_store_memory=96 * 1024 * 1024)
    try:
        rows = [t.to_pylist()[0] for _, (st, t, _) in
                ex.run([ShardTask(_resolver, "fake_model", {}, i) for i in range(3)], uses_model=True,
                       progress=False, desc="model", gpu=True)]
    finally:
        ex.close()
    assert len({r["pid"] for r in rows}) == 1 and {r["gpu_ids"] for r in rows} == {""}
