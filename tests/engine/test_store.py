"""Shard store: atomic shards, completion markers, config hashing, partial files never complete."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gdo.engine.local import run_tasks
from gdo.engine.store import ShardStore, chunk


def _t(n):
    return pa.table({"k": pa.array([f"k{i}" for i in range(n)]), "v": pa.array(range(n), pa.int64())})


def test_write_read_and_reuse(tmp_path):
    s = ShardStore(tmp_path, "media", {"frames": 32})
    name = s.shard_name(0, ["a", "b"])
    assert not s.is_complete(name)
    s.write(name, _t(3))
    assert s.is_complete(name) and s.read(name).equals(_t(3))
    s2 = ShardStore(tmp_path, "media", {"frames": 32})
    assert s2.dir == s.dir and s2.is_complete(name)
    assert ShardStore(tmp_path, "media", {"frames": 16}).dir != s.dir  # config change -> new folder
    assert s.complete_names() == [name]


def test_names_depend_on_keys():
    assert ShardStore.shard_name(0, ["a", "b"]) != ShardStore.shard_name(0, ["a", "c"])
    assert ShardStore.shard_name(0, ["a", "b"]) != ShardStore.shard_name(1, ["a", "b"])
    assert ShardStore.shard_name(0, ["a", "b"]) == ShardStore.shard_name(0, ["a", "b"])


def test_truncated_or_missing_marker_is_not_complete(tmp_path):
    s = ShardStore(tmp_path, "text", {"v": 1})
    name = s.shard_name(0, ["x"])
    s.write(name, _t(50))
    data = s.dir / f"{name}.parquet"
    blob = data.read_bytes()
    data.write_bytes(blob[: len(blob) // 2])  # torn file under the final name
    assert not s.is_complete(name)
    with pytest.raises(FileNotFoundError):
        s.read(name)
    data.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # same size, different content
    assert not s.is_complete(name)
    data.write_bytes(blob)
    assert s.is_complete(name)
    (s.dir / f"{name}.done.json").unlink()  # parquet without its marker
    assert not s.is_complete(name)
    (s.dir / f"{name}.done.json").write_text("{not json")
    assert not s.is_complete(name)


def test_leftover_temporaries_removed(tmp_path):
    s = ShardStore(tmp_path, "media", {})
    tmp = s.dir / ".000000-abc.parquet.x1y2.tmp"
    tmp.write_bytes(b"partial")
    ShardStore(tmp_path, "media", {})
    assert not tmp.exists()


def test_chunk():
    assert chunk(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        chunk([1], 0)


def _square(x):
    return x * x


def test_run_tasks_same_results_any_workers():
    one = dict(run_tasks(_square, list(range(7)), workers=1))
    two = dict(run_tasks(_square, list(range(7)), workers=2))
    assert one == two == {i: i * i for i in range(7)}
    with pytest.raises(ValueError):
        list(run_tasks(_square, [1], workers=0))


class _RecordingExecutor:
    """Runs shard tasks in this process in the order given, recording that order."""

    name = "recording"

    def __init__(self):
        self.order = []

    def run(self, tasks, uses_model, progress, desc, gpu=False, weights=None, initial=0):
        for j in range(len(tasks)):
            t = tasks[j]
            self.order.append(t.payload)
            yield j, ("ok", _t(t.payload + 1), 0.0)


def _resolver(name):
    raise AssertionError("not called by the recording executor")


def test_costs_dispatch_heaviest_first_output_in_shard_order(tmp_path):
    """``run_stage(costs=...)`` hands the missing shards to the executor heaviest first (ties in
    shard order), skips finished ones, and the stage result is the same, in shard order."""
    from gdo.engine.executor import ShardTask, run_stage

    costs = [5.0, 90.0, 5.0, 40.0, 0.0]
    results = {}
    for label, kw in (("plain", {}), ("lpt", {"costs": costs})):
        s = ShardStore(tmp_path / label, "media", {"v": 1})
        names = [s.shard_name(i, [f"u{i}"]) for i in range(5)]
        s.write(names[3], _t(4))  # already finished: not dispatched again
        ex = _RecordingExecutor()
        res = run_stage(ex, s, names, lambda i: ShardTask(_resolver, "media", {}, i), False, **kw)
        results[label] = (ex.order, res.table())
    assert results["plain"][0] == [0, 1, 2, 4]
    assert results["lpt"][0] == [1, 0, 2, 4]
    assert results["lpt"][1].equals(results["plain"][1])
    assert results["lpt"][1].num_rows == 1 + 2 + 3 + 4 + 5


def test_cost_function_sees_only_missing_shards(tmp_path):
    """``costs`` as a function is asked only about the missing shards (a resumed run estimates
    only what is left; a finished stage estimates nothing) and orders them as the list form."""
    from gdo.engine.executor import ShardTask, run_stage

    full = [5.0, 90.0, 5.0, 40.0, 0.0]
    asked = []

    def costs(todo):
        asked.append(list(todo))
        return [full[i] for i in todo]

    s = ShardStore(tmp_path / "fn", "media", {"v": 1})
    names = [s.shard_name(i, [f"u{i}"]) for i in range(5)]
    s.write(names[1], _t(2))
    ex = _RecordingExecutor()
    run_stage(ex, s, names, lambda i: ShardTask(_resolver, "media", {}, i), False, costs=costs)
    assert asked == [[0, 2, 3, 4]] and ex.order == [3, 0, 2, 4]
    ex2 = _RecordingExecutor()
    res = run_stage(ex2, s, names, lambda i: ShardTask(_resolver, "media", {}, i), False, costs=costs)
    assert asked == [[0, 2, 3, 4]] and ex2.order == [] and res.reused == 5  # finished: not asked again
