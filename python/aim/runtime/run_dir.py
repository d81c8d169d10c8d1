"""A run directory: what a training or RL run writes, and the rule for starting or resuming one.

``<run>/config.yaml`` is the resolved config (it reproduces the run and is what ``--resume``
reads); ``<run>/checkpoints/`` holds the checkpoints (``aim.runtime.checkpoint``); metrics and
TensorBoard logs sit beside them (``aim.runtime.monitor``). Both stages write runs alike, so
``aim eval`` reads either.
"""

from __future__ import annotations

from pathlib import Path

from aim.errors import AlreadyExistsError, NotFoundError
from aim.runtime.checkpoint import latest_checkpoint
from aim.runtime.distributed import Distributed

CONFIG_FILE = "config.yaml"


def prepare_run_dir(run_dir: Path, resume: bool, info: Distributed) -> Path | None:
    """The checkpoint to resume from; refuses to train over an existing run without ``resume``."""
    latest = latest_checkpoint(run_dir)
    if resume and latest is None:
        raise NotFoundError(f"{run_dir}: nothing to resume (no checkpoints/latest)")
    if not resume and latest is not None:
        raise AlreadyExistsError(f"{run_dir} already holds a run (latest checkpoint {latest.name}); "
                              "pass --resume to continue it or choose another run directory")
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    info.barrier()
    return latest
