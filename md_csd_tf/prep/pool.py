"""The worker pool of preparation jobs: one process per core, each ending soon after its parent
dies, or no pool at all for one worker (no start-up cost, easier to debug).

Example:
    >>> with worker_pool(2, setup, config) as pool:   # setup(config) runs in every worker
    ...     outcomes = map_jobs(work, jobs, pool, bar)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Ends this worker soon after its parent dies (kill -9 included).

    A pool worker whose parent was killed is re-parented and would otherwise keep its ~70 MB and
    the multiprocessing resource tracker alive. Polling ``getppid`` is portable, and unlike
    Linux's parent-death signal it does not fire early when the parent *thread* that spawned the
    worker ends (a process pool may spawn replacement workers from its manager thread).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)  # no cleanup to run: the parent that would use our results is gone

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(parent: int, setup: Callable, args: tuple) -> None:
    exit_with_parent(parent)
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
    setup(*args)


@contextlib.contextmanager
def worker_pool(workers: int, setup: Callable, *args):
    """A process pool of `workers` whose processes each run `setup(*args)` first; with one
    worker, None and `setup(*args)` run here. An exception (Ctrl-C included) cancels the jobs
    still queued instead of waiting for them."""
    if workers <= 1:
        setup(*args)
        yield None
        return
    # "spawn": the parent may have imported TensorFlow (tests, notebooks), which is not fork-safe.
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), setup, args)
    )
    try:
        yield pool
    except BaseException:  # KeyboardInterrupt included: do not wait for queued videos
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def map_jobs(work: Callable, jobs: Iterable, pool, bar) -> list:
    """`[work(job) for job in jobs]`, in order, in `pool` (None: here), advancing `bar` by one
    per finished job."""
    results = []
    for result in map(work, jobs) if pool is None else pool.map(work, jobs, chunksize=1):
        results.append(result)
        bar.update(1)
    return results
