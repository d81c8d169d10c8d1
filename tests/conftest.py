"""The test session: an entry point, so it makes the process-wide choices (MuJoCo's offscreen
renderer), seeds every test reproducibly, and runs whole-pipeline tests single-threaded."""

import os
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from aim.process_settings import use_offscreen_rendering

use_offscreen_rendering()

# Property tests draw the same examples on every run (a failure reruns as it failed, and CI cannot
# pass by luck); AIM_HYPOTHESIS_PROFILE=explore draws new ones, and more of them.
settings.register_profile("aim", derandomize=True, deadline=None, max_examples=25, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("AIM_HYPOTHESIS_PROFILE", "aim"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def stable_seed(nodeid: str) -> int:
    """The seed of a test: a stable hash of its id (Python's own ``hash`` is salted per process),
    so a failure caused by an unlucky draw reruns with the same draw."""
    return zlib.crc32(nodeid.encode("utf-8"))


@pytest.fixture(autouse=True)
def _fresh_seed(request):
    """Every test draws fresh inputs, but reproducibly: seeded from the test's own id."""
    torch.manual_seed(stable_seed(request.node.nodeid))


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A NumPy generator seeded like torch for this test (see :func:`stable_seed`)."""
    return np.random.default_rng(stable_seed(request.node.nodeid))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        seed = stable_seed(item.nodeid)
        report.sections.append(("seed", f"torch.manual_seed({seed}), rng = np.random.default_rng({seed}): the same on "
                                        "every run of this test"))
    return report


# Tests of whole pipelines on tiny models (many small ops, which several threads only slow down on
# a shared machine) run single-threaded; kernel tests keep every thread, to cover the parallel paths.
SINGLE_THREADED_DIRS = {"train", "eval", "rl"}


@pytest.fixture(autouse=True)
def _one_thread_for_pipelines(request):
    if request.path.parent.name not in SINGLE_THREADED_DIRS:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
