"""Local execution: run independent tasks in-process (1 worker) or in a process pool.

Results are delivered as tasks finish, tagged with their task index, so callers can persist
each one immediately (resumable) and assemble the output in task order (identical for any
worker count). Workers start with ``fork`` where the platform has it (no re-import of an
unguarded ``__main__``; workers run OpenCV/PyAV code only, never torch), else ``spawn``;
``GDO_MP_START=spawn|forkserver|fork`` overrides. Each worker runs with one OpenCV / BLAS thread.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterator, Sequence


def init_worker() -> None:
    """Per-process set-up: single-threaded OpenCV, BLAS and FFmpeg decoding (deterministic, no
    oversubscription: a worker uses one core, so N workers use N)."""
    from gdo.media.probe import set_decode_threads

    set_decode_threads(False)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _pool_worker() -> None:
    """Initializer of a pool worker: :func:`init_worker`, and on Linux the worker is killed when
    the process that started it dies (``PR_SET_PDEATHSIG``; the driver, or with
    ``GDO_MP_START=forkserver`` the fork server, which ends with the driver): a driver killed with
    ``kill -9`` would otherwise leave its workers blocked on the task pipe for ever."""
    init_worker()
    if sys.platform.startswith("linux"):
        parent = os.getppid()
        try:
            import ctypes
            import signal

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover
            return
        if os.getppid() != parent:  # it died before the call
            os._exit(1)


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int = 1,
              progress: bool = False, desc: str | None = None, weights: Sequence[int] | None = None,
              initial: int = 0) -> Iterator[tuple[int, Any]]:
    """Yield ``(task index, fn(task))`` for every task, in completion order.

    Args:
        fn: picklable top-level function.
        tasks: picklable arguments.
        workers: 1 runs in this process; N > 1 uses N worker processes (at most 4*N in flight).
        progress: show a progress bar: in candidates when ``weights`` (candidates per task) is
            given (gdo.utils.progress; ``initial`` already done), else in tasks.

    Raises:
        ValueError: ``workers`` < 1. Exceptions raised by ``fn`` propagate.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = None
    cbar = None
    if progress and tasks and weights is not None:
        from gdo.utils.progress import candidate_bar

        cctx = candidate_bar(desc or "", initial + sum(weights), True, initial)
        cbar = cctx.__enter__()
    elif progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="shard")
    done = initial

    def _tick(i: int) -> None:
        nonlocal done
        if cbar is not None:
            done += int(weights[i])
            cbar.reach(done)
        elif bar is not None:
            bar.update(1)

    try:
        if workers == 1 or len(tasks) <= 1:
            for i, t in enumerate(tasks):
                r = fn(t)
                _tick(i)
                yield i, r
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        method = os.environ.get("GDO_MP_START") or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        ctx = mp.get_context(method)
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                 initializer=_pool_worker) as ex:
            pending = {}
            nxt = 0
            window = 4 * workers
            try:
                while nxt < len(tasks) or pending:
                    while nxt < len(tasks) and len(pending) < window:
                        pending[ex.submit(fn, tasks[nxt])] = nxt
                        nxt += 1
                    finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for f in sorted(finished, key=lambda f: pending[f]):
                        i = pending.pop(f)
                        r = f.result()
                        _tick(i)
                        yield i, r
            except BaseException:  # an error, Ctrl-C, SIGTERM, the caller stopping: queued tasks are
                ex.shutdown(wait=False, cancel_futures=True)  # dropped, running ones end (one shard each)
                raise
    finally:
        if bar is not None:
            bar.close()
        if cbar is not None:
            cctx.__exit__(None, None, None)


class LocalExecutor:
    """The local engine: CPU stages on ``workers`` processes (:func:`run_tasks`), model stages in
    this process (one model load). Output identical for any ``workers``."""

    name = "local"

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, tasks, uses_model: bool, progress: bool, desc: str, gpu: bool = False,
            weights: Sequence[int] | None = None, initial: int = 0):
        """Yield ``(task index, execute_shard result)`` in completion order (progress in units
        when ``weights``, units per task, is given)."""
        from gdo.engine.executor import execute_shard

        yield from run_tasks(execute_shard, tasks, workers=1 if uses_model else self.workers,
                             progress=progress, desc=desc, weights=weights, initial=initial)
