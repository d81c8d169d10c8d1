"""Checkpoints a killed job can always resume from.

A checkpoint is a directory ``<run>/checkpoints/step-XXXXXXXX`` holding:

* ``state/``: model and optimiser state through ``torch.distributed.checkpoint`` (each process
  writes its own shards under FSDP; DDP replicas are written once), reloadable on any number of
  processes;
* ``model.safetensors`` and ``bundle.json``: the trained model as ``aim.runtime.bundle`` loads it;
* ``train_state.json``: step, clips consumed, the learning-rate scheduler;
* ``rng/rank-XXXXX.pt``: every process's Python, NumPy, torch (and CUDA) generator states.

It is written under a temporary name and renamed when complete; then ``checkpoints/latest``,
a one-line text file naming it, is replaced atomically (``os.replace``). A job killed at any
moment leaves ``latest`` naming a complete checkpoint (or no ``latest`` at all).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from aim.config import at_least
from aim.errors import NotFoundError
from aim.runtime.distributed import Distributed

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class CheckpointConfig:
    every: int = 500  # steps; the last step is always saved
    keep: int = 2  # newest checkpoints kept

    def __post_init__(self) -> None:
        at_least("checkpoint.every", self.every, 1)
        at_least("checkpoint.keep", self.keep, 1)

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAIN_STATE = "train_state.json"
PARTIAL_PREFIX = ".partial-"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``latest`` names, or None when the run has none yet."""
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not (path / TRAIN_STATE).is_file():
        raise NotFoundError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


def save_checkpoint(run_dir: Path, step: int, module: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, train_state: dict, bundle_meta: dict, info: Distributed, keep: int) -> Path:
    """Write the checkpoint of ``step`` (all processes call this) and point ``latest`` at it."""
    final = checkpoint_dir(run_dir, step)
    partial = final.with_name(PARTIAL_PREFIX + final.name)
    if info.is_main:
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "rng").mkdir(parents=True)
    info.barrier()
    model_state, optim_state = get_state_dict(module, optimizer)
    with _single_process_is_intended(info):
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(partial / "state"),
                 no_dist=not info.active)
    torch.save(_rng_states(), partial / "rng" / f"rank-{info.rank:05d}.pt")
    # The full weights gather on every process (a collective under FSDP) and are written by one.
    weights = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if info.is_main:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in weights.items()}, str(partial / WEIGHTS_FILE))
        (partial / BUNDLE_FILE).write_text(json.dumps(bundle_meta, indent=1))
        state = {**train_state, "step": step, "scheduler": scheduler.state_dict()}
        (partial / TRAIN_STATE).write_text(json.dumps(state, indent=1))
    info.barrier()
    if info.is_main:
        _sync_tree(partial)
        if final.exists():  # left by a job killed between this rename and the pointer update
            shutil.rmtree(final)
        partial.rename(final)
        _point_latest(final)
        _prune(final, keep)
    info.barrier()
    return final


@contextlib.contextmanager
def _single_process_is_intended(info: Distributed):
    """torch.distributed.checkpoint warns on every single-process save and load that it assumes a
    single process was meant, even when ``no_dist=True`` says so; a run without a process group
    means it, so that warning (and only it) is dropped there."""
    with warnings.catch_warnings():
        if not info.active:
            warnings.filterwarnings("ignore", message=r"torch\.distributed is (disabled, )?unavailable or "
                                    r"uninitialized, assuming the intent is to (save|load) in a single process")
        yield


def load_checkpoint(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                    info: Distributed) -> dict:
    """Restore model, optimiser, scheduler and this process's generators; returns the train state."""
    model_state, optim_state = get_state_dict(module, optimizer)
    state = {"model": model_state, "optim": optim_state}
    with _single_process_is_intended(info):
        dcp.load(state, checkpoint_id=str(path / "state"), no_dist=not info.active)
    set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    train_state = json.loads((path / TRAIN_STATE).read_text())
    scheduler.load_state_dict(train_state.pop("scheduler"))
    rng_file = path / "rng" / f"rank-{info.rank:05d}.pt"
    if rng_file.is_file():  # absent when resuming on more processes than saved
        _set_rng_states(torch.load(rng_file, weights_only=False))
    return train_state


def _rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _point_latest(checkpoint: Path) -> None:
    pointer = checkpoint.parent / LATEST
    temporary = pointer.with_name(LATEST + ".tmp")
    with open(temporary, "w") as f:
        f.write(checkpoint.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, pointer)
    _sync_directory(checkpoint.parent)


def _prune(current: Path, keep: int) -> None:
    """Keep ``current`` and the ``keep - 1`` complete checkpoints before it. Later ones (left by a
    killed job after the step this run resumed from) and partial ones are deleted."""
    complete = sorted(p for p in current.parent.glob("step-*") if p.is_dir())
    earlier = [p for p in complete if p.name < current.name]
    for old in earlier[:max(len(earlier) - (keep - 1), 0)] + [p for p in complete if p.name > current.name]:
        shutil.rmtree(old)
    for partial in current.parent.glob(PARTIAL_PREFIX + "*"):
        shutil.rmtree(partial)


def _sync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk, so the rename never publishes unwritten data."""
    paths = sorted(root.rglob("*"))
    for path in paths:
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    for folder in [p for p in paths if p.is_dir()] + [root]:
        _sync_directory(folder)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
