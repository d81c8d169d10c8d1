"""Process groups and data parallelism as layers over the plain training module (torchtitan's habit).

One code path from one CPU process to many GPUs: ``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK
and the rendezvous variables; without them the run is a single process and no group is made.
The backend follows the device (gloo on CPU, nccl on GPU). :func:`parallelize` applies DDP, or
FSDP2 (``torch.distributed.fsdp.fully_shard`` on every MoT block, then on the whole module).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over all processes."""
        if self.active:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values


def init_distributed(device: str = "auto") -> Distributed:
    """Join the job described by torchrun's environment variables (or run alone without them)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda, but PyTorch sees no CUDA device "
                               f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                device_id=target if target.type == "cuda" else None)
    return Distributed(rank, world_size, local_rank, target)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def resolve_strategy(strategy: str, info: Distributed) -> str:
    """``auto`` is DDP with several processes and no wrapping alone."""
    if strategy == "auto":
        return "ddp" if info.active else "none"
    return strategy


def parallelize(module: nn.Module, strategy: str, info: Distributed) -> nn.Module:
    """The module to call in the training step: ``module`` itself, a DDP wrapper, or ``module``
    sharded in place by FSDP2 (each MoT block its own unit, the rest in the root unit)."""
    if strategy == "none":
        return module
    if not info.active and strategy == "ddp":
        raise ValueError("parallel.strategy=ddp needs several processes (launch with torchrun --nproc-per-node N)")
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    for block in module.model.blocks:
        fully_shard(block)
    fully_shard(module)
    return module


def gradient_sync(wrapped: nn.Module, sync: bool):
    """A context in which backward passes (do not) reduce gradients: only the last micro-batch of a
    step needs to, with gradient accumulation."""
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(wrapped, DistributedDataParallel) and not sync:
        return wrapped.no_sync()
    if isinstance(wrapped, FSDPModule):
        wrapped.set_requires_gradient_sync(sync)
    return contextlib.nullcontext()
