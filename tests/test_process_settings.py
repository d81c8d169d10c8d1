"""retain_freed_memory: a process that keeps freed memory stops page-faulting its working set."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import resource, sys, torch
    from aim.process_settings import retain_freed_memory
    if sys.argv[1] == "retain" and not retain_freed_memory():
        print("unavailable")
        sys.exit()
    def step():  # activations allocated, written and freed together, as a training step does
        tensors = [torch.ones(1024, 1024) for _ in range(8)]  # 8 x 4 MiB
        return sum(float(t[-1, -1]) for t in tensors)
    for _ in range(3):  # a few steps until the heap holds a step's working set
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _page_faults(mode: str) -> int:
    # In a child process: retaining memory is for good, and the test process should keep its allocator.
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    if result.stdout.strip() == "unavailable":
        pytest.skip("this C library has no glibc mallopt")
    return int(result.stdout.split()[-1])


def test_retained_memory_is_reused_without_page_faults():
    retained, default = _page_faults("retain"), _page_faults("default")
    assert retained * 4 < default, (retained, default)
