"""The Ray engine: profiling shards as a Ray Data pipeline (``gdo profile --engine ray``).

Each stage's missing shards become a Ray dataset of shard tasks (one row per shard, one block per
row), streamed through ``map_batches``:

* CPU stages (``media``: decode once, motion, visual feature, hashes) run as Ray tasks, one CPU
  each (``max_retries=3``: a task on a killed worker is retried). On the local Ray this engine
  starts (``workers`` CPUs), and on a Ray started in this process with no more than ``workers``
  CPUs, :data:`QUEUED_PER_WORKER` ``* workers`` tasks are in flight, so the raylet holds queued tasks
  for each worker and starts the next the moment a worker frees; the raylet still runs at most
  ``workers`` at once. (Ray Data's scheduling loop frees a task's slot ~0.2-0.3 s after the task
  ends: its ``ray.wait`` waits on every active task with a 0.1 s timeout, and a finished task
  takes two or three loop steps to drain, emit and be marked done. With a cap of ``workers``,
  each worker idled that long per shard.) On a larger Ray, and on a cluster given by ``address``
  (which may autoscale), the cap is ``workers``, so ``--workers`` keeps meaning the tasks that
  run at once.
* Model stages (``text``, ``model``, ``visual_hf``) run in an actor pool: each actor loads the
  model once (:func:`gdo.engine.executor.execute_shard` caches it) and takes one shard per call,
  the shard's candidates batched by ``model_batch_size`` inside the model code. On GPU machines
  each actor gets ``num_gpus=1`` (one actor per GPU, ``devices`` choosing them); on CPU
  ``workers`` actors.

The driver consumes results as they stream (``iter_rows``; tables travel as Arrow IPC bytes, tasks through the object store), writes each shard into the same
:class:`gdo.engine.store.ShardStore` with the same completion markers as the local engine, and
holds at most a window of :data:`WINDOW` shard payloads, so local and Ray runs resume each other
and give byte-identical descriptors.parquet. Retries and failure records come from
:func:`gdo.engine.executor.execute_shard` (3 attempts, then ``<shard>.failed.json``).

Ray is optional (``pip install 'gdo[ray]'``); without it :class:`RayExecutor` raises a
RuntimeError saying so.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

#: Retries of a Ray task / restarts of an actor whose process died (killed worker, OOM); Python
#: errors are retried inside :func:`gdo.engine.executor.execute_shard` instead.
MAX_RESTARTS = 3
#: Shard tasks per Ray dataset (at least; :meth:`RayExecutor._window` raises it to 32 rounds of
#: the task slots, so the tail at each window's end -- slots idling while the last shards of the
#: window finish -- stays a small share of the window): bounds the driver's memory for payloads
#: and results in flight.
WINDOW = 256
#: Rounds of the task slots per window (see :data:`WINDOW`).
WINDOW_ROUNDS = 32
#: CPU-stage tasks in flight per worker when the raylet bounds the running ones (module doc).
QUEUED_PER_WORKER = 4
INSTALL_HINT = "the Ray engine needs Ray Data: pip install 'gdo[ray]' (or pip install 'ray[data]')"


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise RuntimeError(INSTALL_HINT) from e
    return ray


def table_to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes of ``table`` (how shard results travel back to the driver)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(blob: bytes) -> pa.Table:
    """Inverse of :func:`table_to_ipc`."""
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()


def _run_batch(batch: dict, refs: dict) -> dict:
    """Ray task body: run the shard tasks of one batch (normally one) in this worker.

    ``refs`` maps task index -> object ref of its :class:`gdo.engine.executor.ShardTask` (put in
    the object store by the driver); the result table comes back as Arrow IPC bytes.
    """
    import ray

    from gdo.engine.executor import execute_shard
    from gdo.engine.local import init_worker

    init_worker()  # single-threaded OpenCV / BLAS, as in the local engine's workers (no oversubscription)
    status, blobs, errors, secs = [], [], [], []
    for j in batch["j"]:
        st, value, sec = execute_shard(ray.get(refs[int(j)]))
        status.append(st)
        blobs.append(table_to_ipc(value) if st == "ok" else b"")
        errors.append(None if st == "ok" else str(value))
        secs.append(sec)
    return {"j": np.asarray(batch["j"]), "status": np.array(status, dtype=object),
            "blob": np.array(blobs, dtype=object), "error": np.array(errors, dtype=object),
            "secs": np.array(secs, dtype=np.float64)}


class _ShardActor:
    """Actor of a model stage: the model is loaded on the first shard and kept (one per actor)."""

    def __init__(self, env: dict | None = None):
        for k, v in (env or {}).items():
            os.environ[k] = v
        from gdo.engine.local import init_worker

        init_worker()

    def __call__(self, batch: dict, refs: dict) -> dict:
        return _run_batch(batch, refs)


class RayExecutor:
    """Executor running shard tasks on Ray Data (see module doc).

    Args:
        address: an existing cluster ("auto", "ray://head:10001", "10.0.0.1:6379"); None starts a
            local Ray sized to this machine (``workers`` CPUs) and stops it in :meth:`close`.
        workers: CPU tasks in flight (and CPU model actors when there is no GPU).
        devices: GPU indices for model actors on a local Ray (one actor per GPU); None = every
            visible GPU. Ignored on an existing cluster (its GPUs are used).
        device: the model device option; "cpu" keeps model actors off GPUs.

    Raises:
        RuntimeError: Ray Data is not installed (the message says how to install it).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 1, devices: Sequence[int] | None = None,
                 device: str = "auto", object_store_memory: int | None = None):
        self.ray = _require_ray()
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.address = address
        self.workers = workers
        self.devices = tuple(devices) if devices is not None else None
        self.device = device
        self.object_store_memory = object_store_memory
        self._started = False

    def _init(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "runtime_env": {"env_vars": {k: v for k, v in env.items() if v}}}
        if self.address is None:
            if self.devices is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in self.devices)
            kw["num_cpus"] = self.workers
            if self.devices is not None:
                kw["num_gpus"] = len(self.devices)
            kw["object_store_memory"] = self.object_store_memory or 256 * 1024 * 1024
            # task state events feed only the dashboard and `ray list tasks`, which a Ray started
            # here without its dashboard does not serve: off, they cost every task CPU in the
            # worker, raylet, GCS and driver (2 workers, 24 clips: Ray's own processes 0.93-1.2 s
            # of CPU with them, 0.73-0.83 s without; Ray 2.60). Execution is unaffected.
            kw["_system_config"] = {"task_events_report_interval_ms": 0}
        else:
            kw["address"] = self.address
        kw["logging_level"] = logging.WARNING
        ray.init(**kw)
        self._started = True

    def _quiet(self) -> None:
        """gdo prints its own progress: no Ray Data bars or per-dataset INFO lines."""
        ctx = self.ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = False
        # Ray Data reserves part of the cluster's CPUs per operator by default; with one map
        # operator per dataset that leaves workers idle between tasks (24 x 0.5 s sleeping shard
        # tasks on 2 CPUs: 8.1-8.6 s with it, 6.3-6.4 s without; ideal 6.0; Ray 2.x)
        ctx.op_resource_reservation_enabled = False
        for name in ("ray.data", "ray.data._internal.execution.streaming_executor",
                     "ray.data._internal.progress.logging_progress"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars disabled"

    def _gpus(self) -> int:
        if self.device == "cpu":
            return 0
        try:
            return int(self.ray.cluster_resources().get("GPU", 0))
        except Exception:  # pragma: no cover
            return 0

    def _actor_cpus(self, gpus: int) -> float:
        """CPUs each model actor reserves: 1, except for GPU actors on a local Ray, which share the
        ``workers`` CPUs it was started with (``--devices 0,1,2,3`` with the default ``--workers 1``
        would otherwise place one actor and wait forever for the other three)."""
        if gpus and self.address is None:
            return min(1.0, self.workers / gpus)
        return 1.0

    def _cpu_tasks_in_flight(self) -> int:
        """Cap on CPU-stage tasks in flight: ``QUEUED_PER_WORKER * workers`` on a Ray in this
        process (no ``address``: the local Ray this executor starts, sized to ``workers`` CPUs, or
        one the caller started) with no more than ``workers`` CPUs, as the raylet then runs at
        most ``workers`` and queues the rest: no worker waits on the driver between shards;
        ``workers`` on a larger Ray and on any cluster given by ``address`` (an autoscaler could
        add CPUs for the queued tasks).

        Measured on 2 CPUs (Ray 2.60), 24 real clips, one per shard (benchmarks/bench_ray_media.py):
        idle time per worker between shards 0.4-1.5 s with a cap of ``workers``, 0.1-0.4 s with
        ``4 * workers``; on 24 busy-loop tasks of 0.3 s, cap 2 took 3.9-6.9 s (ideal 3.6)."""
        try:
            cpus = float(self.ray.cluster_resources().get("CPU", 0))
        except Exception:  # pragma: no cover
            cpus = float("inf")
        local = self.address is None  # an existing cluster may autoscale past its CPUs of now
        return QUEUED_PER_WORKER * self.workers if local and 0 < cpus <= self.workers else self.workers

    def _window(self, slots: int) -> int:
        """Shard tasks per Ray dataset for ``slots`` tasks or actors running at once (see
        :data:`WINDOW`)."""
        return max(WINDOW, WINDOW_ROUNDS * slots)

    def run(self, tasks, uses_model: bool, progress: bool, desc: str, gpu: bool = False,
            weights=None, initial: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield ``(task index, execute_shard result)`` as shards finish (any order); ``weights`` /
        ``initial`` (units per task) are accepted for the local engine's progress and unused here
        (Ray Data shows its own progress)."""
        self._init()
        self._quiet()
        ray = self.ray
        bar = None
        if progress and len(tasks):
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc=f"{desc} (ray)", unit="shard")
        gpus = self._gpus() if (gpu and uses_model) else 0
        slots = (gpus or self.workers) if uses_model else self._cpu_tasks_in_flight()
        window = self._window(gpus or self.workers)
        try:
            for lo in range(0, len(tasks), window):
                idx = list(range(lo, min(len(tasks), lo + window)))
                refs = {j: ray.put(tasks[j]) for j in idx}
                ds = ray.data.from_items([{"j": j} for j in idx], override_num_blocks=len(idx))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # retry limits are still passed as remote args
                    if uses_model:
                        ds = ds.map_batches(_ShardActor, batch_size=1, fn_kwargs={"refs": refs},
                                            compute=ray.data.ActorPoolStrategy(size=min(slots, len(idx))),
                                            num_gpus=1 if gpus else 0, num_cpus=self._actor_cpus(gpus),
                                            max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)
                    else:
                        ds = ds.map_batches(_run_batch, batch_size=1, num_cpus=1, fn_kwargs={"refs": refs},
                                            compute=ray.data.TaskPoolStrategy(size=min(slots, len(idx))),
                                            max_retries=MAX_RESTARTS)
                for row in ds.iter_rows():
                    if bar is not None:
                        bar.update(1)
                    ok = row["status"] == "ok"
                    yield int(row["j"]), (row["status"], ipc_to_table(row["blob"]) if ok else row["error"],
                                          float(row["secs"]))
                del refs
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        """Stop the local Ray this executor started (an existing cluster is left running)."""
        if self._started:
            self.ray.shutdown()
            self._started = False
