"""Process-wide settings, decided by entry points only (the ``aim`` command, a worker process's
start, a benchmark script, the test session); library functions never change them.

* :func:`use_offscreen_rendering`: MuJoCo renders without a display through EGL. Its backend is
  read once, when MuJoCo is first imported, from ``MUJOCO_GL``; worker processes inherit it.
* :func:`retain_freed_memory`: keep freed memory in the heap of a process that trains on the CPU
  (glibc's allocator only). A CPU training step allocates and frees the same large activations every step. glibc serves
blocks above its mmap threshold with fresh mappings and hands freed heap tops back to the system,
so each step page-faults its activations in again: in the demo's training loop 13,000-16,000
faults and 40-60 ms of system time per 350 ms step (measured in benchmarks/RESULTS.md).
Pinning the mmap threshold at glibc's maximum and never trimming keeps those blocks for reuse;
the process's resident memory then stays at its peak instead of shrinking between steps.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
NEVER_TRIM = 2**31 - 1


def use_offscreen_rendering() -> None:
    """Selects MuJoCo's EGL backend for this process and the processes it starts, unless the
    user chose a backend (``MUJOCO_GL``); call it before anything imports mujoco or metaworld."""
    os.environ.setdefault("MUJOCO_GL", "egl")


def retain_freed_memory() -> bool:
    """Sets this process's allocator to keep freed memory; False where that is not possible
    (not Linux, or a C library without glibc's ``mallopt``), which leaves everything unchanged."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
