"""Spawned worker processes for closed-loop episodes (evaluation and Stage II rollouts).

A ``multiprocessing`` pool whose initializer raises (a checkpoint that does not load, a device
the worker cannot use) restarts the worker, which fails again, forever: the caller waits for
results that never come. :class:`WorkerPool` keeps the initializer's error in the worker and
raises it from the first job the worker takes, so the caller gets the error instead of a hang.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self


class WorkerStartError(RuntimeError):
    """A worker process could not start (its initializer raised); the message names that error
    (its traceback stays in the worker: exceptions cross processes without their cause)."""


class WorkerPool:
    """``workers`` spawned processes sharing the CPU, each started as ``initializer(*context,
    threads)`` with threads = cores / workers. Use as a context manager; :meth:`imap` keeps the
    jobs' order."""

    def __init__(self, workers: int, initializer: Callable[..., None], context: tuple) -> None:
        if workers < 1:
            raise ValueError(f"WorkerPool: workers must be >= 1, got {workers}")
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._pool = multiprocessing.get_context("spawn").Pool(
            workers, _start_worker, (initializer, (*context, threads)))

    def imap(self, job: Callable[[Any], Any], jobs: Iterable) -> Iterator:
        """``job(j)`` for every ``j`` of ``jobs`` in the workers, results in the jobs' order; raises
        :class:`WorkerStartError` when a worker could not start."""
        return self._pool.imap(functools.partial(_run_job, job), jobs)

    def close(self) -> None:
        """Waits for the workers to finish their jobs and exit."""
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        """Stops the workers now, jobs or not."""
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.terminate()


_START_ERROR: list[BaseException] = []


def _start_worker(initializer: Callable[..., None], args: tuple) -> None:
    try:
        initializer(*args)
    except Exception as error:  # raised again by every job of this worker (see the module docstring)
        _START_ERROR.append(error)


def _run_job(job: Callable[[Any], Any], item: Any) -> Any:
    if _START_ERROR:
        error = _START_ERROR[0]
        raise WorkerStartError(f"a worker process could not start: {type(error).__name__}: {error}") from error
    return job(item)
