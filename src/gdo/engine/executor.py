"""What every executor shares: running one shard of a stage with retries, and driving a stage's
missing shards through an executor into the shard store.

A stage (:class:`gdo.descriptors.registry.Stage`) is pure: ``setup(args)`` then
``compute(state, payload) -> pa.Table``. Executors only decide where :func:`execute_shard` runs
(this process, a process pool, Ray tasks or actors); this module owns retries, completion
markers and failure records, so local and Ray runs produce the same shards and resume each
other's work (datatrove's executor/step split).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import pyarrow as pa

from gdo.engine.store import ShardStore

#: Attempts per shard before it is recorded as failed (issue 17: "a shard that fails three times").
MAX_ATTEMPTS = 3

_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class ShardTask:
    """One shard of one stage, as shipped to a worker.

    Attributes:
        resolver: top-level function ``stage name -> Stage`` (picklable by reference).
        stage: stage name.
        setup_args: JSON-able arguments of ``Stage.setup``.
        payload: the shard's input (``Stage.payload``).
    """

    resolver: Callable[[str], Any]
    stage: str
    setup_args: dict
    payload: Any


def execute_shard(task: ShardTask) -> tuple[str, Any, float]:
    """Run one shard: set the stage up (once per process, cached), compute, retry on error.

    Returns:
        ``("ok", table, seconds)`` or ``("failed", "<error> (after 3 attempts)", seconds)``.
        Exceptions are caught (the run goes on with other shards); KeyboardInterrupt and a killed
        process are not (the shard is simply not marked complete and is recomputed on resume).
    """
    t0 = time.perf_counter()
    stage = task.resolver(task.stage)
    key = task.stage + "\x1f" + json.dumps(task.setup_args, sort_keys=True, default=str)
    err = None
    for _ in range(MAX_ATTEMPTS):
        try:
            state = _STATE.get(key)
            if state is None:
                _STATE.clear()  # one loaded model per process
                state = stage.setup(task.setup_args)
                _STATE[key] = state
            return "ok", stage.compute(state, task.payload), time.perf_counter() - t0
        except Exception as e:  # recorded after MAX_ATTEMPTS; never silent
            err = f"{type(e).__name__}: {e}"
            _STATE.pop(key, None)
    return "failed", f"{err} (after {MAX_ATTEMPTS} attempts)", time.perf_counter() - t0


class Executor(Protocol):
    """Runs shard tasks somewhere and yields ``(task index, execute_shard result)`` as they finish."""

    name: str

    def run(self, tasks: Sequence[ShardTask], uses_model: bool, progress: bool,
            desc: str, gpu: bool = False, weights: Sequence[int] | None = None,
            initial: int = 0) -> Iterator[tuple[int, tuple[str, Any, float]]]: ...


@dataclass
class StageResult:
    """Outcome of one stage: the shards in order (None where failed), failures, measured cost."""

    tables: list
    failures: dict = field(default_factory=dict)
    computed: int = 0
    reused: int = 0
    task_seconds: float = 0.0

    def table(self) -> pa.Table | None:
        """All shards concatenated, or None when a shard failed."""
        if self.failures or not self.tables:
            return None if self.failures else pa.table({})
        # shards written by an earlier gdo may lack a column added since (e.g. the model stage's
        # model_emb): it is null for their rows rather than an error
        return pa.concat_tables(self.tables, promote_options="default")


class _LazyTasks(Sequence):
    """Shard tasks built on access: executors take them a window at a time, so the driver never
    holds every shard's payload at once (bounded memory on large pools)."""

    def __init__(self, make_task: Callable[[int], ShardTask], todo: list[int]):
        self._make = make_task
        self._todo = todo

    def __len__(self) -> int:
        return len(self._todo)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(len(self)))]
        return self._make(self._todo[j])


def run_stage(executor: Executor, store: ShardStore, names: list[str], make_task: Callable[[int], ShardTask],
              uses_model: bool, progress: bool = False, desc: str = "", gpu: bool = False,
              weights: list[int] | None = None,
              costs: Sequence[float] | Callable[[list[int]], Sequence[float]] | None = None) -> StageResult:
    """Compute the missing shards of a stage through ``executor``, persisting each as it arrives.

    Args:
        executor: where shards run.
        store: the stage's shard store.
        names: shard names in order (:meth:`ShardStore.shard_name`).
        make_task: shard index -> :class:`ShardTask` (called only for missing shards).
        uses_model: the stage loads a model (in-process locally, actor pool on Ray).
        gpu: its model runs on a GPU when there is one (Ray: one GPU per actor).
        weights: units (candidates or media items) per shard, all shards: progress then counts
            units with rate and ETA, the reused shards counted as done.
        costs: estimated work per shard (any unit), all shards, or a function of the missing
            shards' indices returning theirs (called only when some shard is missing, so a
            finished stage costs no estimate): the missing shards are then dispatched heaviest
            first (longest-processing-time order), so no worker is left with a long shard at the
            end while the others idle. Results are stored by shard name and assembled in shard
            order, so the order never changes the output.

    Returns:
        :class:`StageResult`; failed shards are recorded in the store and listed in ``failures``.
    """
    todo = [i for i, n in enumerate(names) if not store.is_complete(n)]
    if costs is not None and todo:
        c = list(costs(list(todo))) if callable(costs) else [costs[i] for i in todo]
        order = sorted(range(len(todo)), key=lambda k: -float(c[k]))  # stable: ties keep shard order
        todo = [todo[k] for k in order]
    res = StageResult(tables=[], reused=len(names) - len(todo))
    if todo:
        tasks = _LazyTasks(make_task, todo)
        kw = {}
        if weights is not None:
            w = [int(weights[i]) for i in todo]
            kw = {"weights": w, "initial": int(sum(weights)) - sum(w)}
        for j, (status, value, secs) in executor.run(tasks, uses_model, progress, desc, gpu=gpu, **kw):
            name = names[todo[j]]
            res.task_seconds += secs
            if status == "ok":
                store.write(name, value)
                res.computed += 1
            else:
                store.write_failure(name, value, MAX_ATTEMPTS)
                res.failures[name] = value
    res.tables = [store.read(n) if n not in res.failures else None for n in names]
    return res
