"""Spawned worker processes for closed-loop episodes (evaluation and Stage II rollouts).

Two ways a pool can leave its caller waiting forever, both closed here:

* a ``multiprocessing.Pool`` whose initializer raises (a checkpoint that does not load, a device
  the worker cannot use) restarts the worker, which fails again, forever. :class:`WorkerPool`
  keeps the initializer's error in the worker and raises it from the first job the worker
  takes: errors of aim's own (:class:`aim.errors.AimError`) as they are, any other as a
  :class:`WorkerStartError` naming it;
* a worker that dies in a job (killed, out of memory) takes the job's result with it. The pool
  is a ``concurrent.futures.ProcessPoolExecutor``, which notices and stops the other workers
  (SIGTERM); :meth:`WorkerPool.imap` then raises a :class:`WorkerDiedError` naming the job the
  dead worker was running (each worker records its pid and current job in shared memory; the
  dead one is the worker that did not end by that SIGTERM), in the caller's words (``describe``:
  e.g. the task, episode and seed).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Self

from aim.errors import AimError, UsageError, WorkerError


class WorkerStartError(WorkerError):
    """A worker process could not start (its initializer raised); the message names that error
    (its traceback stays in the worker: exceptions cross processes without their cause)."""


class WorkerDiedError(WorkerError):
    """A worker process died while running a job; the message names the job."""


class WorkerPool:
    """``workers`` spawned processes sharing the CPU, each started as ``initializer(*context,
    threads)`` with threads = cores / workers. Use as a context manager; :meth:`imap` keeps the
    jobs' order. ``describe(job)`` says which job a worker died in (default: its repr)."""

    def __init__(self, workers: int, initializer: Callable[..., None], context: tuple,
                 describe: Callable[[Any], str] = repr) -> None:
        if workers < 1:
            raise UsageError(f"WorkerPool: workers must be >= 1, got {workers}")
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._describe = describe
        spawn = multiprocessing.get_context("spawn")
        # Per worker slot: its pid and the index of the job it runs (-1: none); the next free slot.
        self._slots, self._next_slot = spawn.Array("q", [-1] * (2 * workers)), spawn.Value("i", 0)
        self._executor = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker,
                                             initargs=(initializer, (*context, threads), self._slots, self._next_slot))

    def imap(self, job: Callable[[Any], Any], jobs: Iterable) -> Iterator:
        """``job(j)`` for every ``j`` of ``jobs`` in the workers, results in the jobs' order; raises
        the start error of a worker that could not start, and :class:`WorkerDiedError` when a
        worker died in a job."""
        jobs = list(jobs)
        futures = [self._executor.submit(_run_job, job, item, index) for index, item in enumerate(jobs)]
        processes = dict(getattr(self._executor, "_processes", {}))
        for future in futures:
            try:
                yield future.result()
            except BrokenProcessPool as err:
                lost = [self._describe(jobs[i]) for i in self._jobs_of_dead_workers(processes)]
                raise WorkerDiedError(f"a worker process died while running {' and '.join(lost) or 'a job'} "
                                      "(killed, or out of memory); the remaining jobs were not run") from err

    def _jobs_of_dead_workers(self, processes: dict) -> list[int]:
        """Indices of the jobs that workers which died on their own (not by the pool's SIGTERM) ran."""
        for process in processes.values():
            process.join(timeout=5)
        dead = {pid for pid, process in processes.items() if process.exitcode not in (0, -signal.SIGTERM)}
        slots = list(self._slots)
        return [slots[2 * s + 1] for s in range(len(slots) // 2) if slots[2 * s] in dead and slots[2 * s + 1] >= 0]

    def close(self) -> None:
        """Waits for the workers to finish their jobs and exit."""
        self._executor.shutdown(wait=True)

    def terminate(self) -> None:
        """Stops the workers now, jobs or not."""
        # ProcessPoolExecutor stops its workers only after their jobs; an interrupted or failed run
        # must not wait for episodes nobody reads, so the processes are ended here.
        processes = list(getattr(self._executor, "_processes", {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.terminate()


_START_ERROR: list[BaseException] = []
_SLOT: dict = {}  # this worker's slot: the shared array and its index


def _start_worker(initializer: Callable[..., None], args: tuple, slots, next_slot) -> None:
    with next_slot.get_lock():
        slot = next_slot.value
        next_slot.value += 1
    slots[2 * slot] = os.getpid()
    _SLOT.update(slots=slots, slot=slot)
    try:
        initializer(*args)
    except Exception as error:  # raised again by every job of this worker (see the module docstring)
        _START_ERROR.append(error)


def _run_job(job: Callable[[Any], Any], item: Any, index: int) -> Any:
    if _START_ERROR:
        error = _START_ERROR[0]
        if isinstance(error, AimError):
            raise error
        raise WorkerStartError(f"a worker process could not start: {type(error).__name__}: {error}") from error
    slots, slot = _SLOT["slots"], _SLOT["slot"]
    slots[2 * slot + 1] = index
    result = job(item)
    slots[2 * slot + 1] = -1
    return result
