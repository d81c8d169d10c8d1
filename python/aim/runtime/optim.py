"""AdamW and its learning-rate schedule (docs/method.md §6: betas (0.9, 0.95), weight decay 0.1),
and their config sections (``optim``, ``schedule``), which both training stages take.

The schedule is linear warm-up from 0 over ``warmup_steps``, then either constant or a cosine
decay to ``min_lr_ratio`` x lr at the last step; a ``LambdaLR``, so its state is one counter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from aim.config import at_least, choice
from aim.errors import ConfigError


@dataclass
class OptimConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)  # docs/method.md §6
    weight_decay: float = 0.1  # docs/method.md §6
    eps: float = 1e-8
    grad_clip: float = 2.0  # docs/method.md §6; 0 disables clipping

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must lie in [0, 1), got {list(self.betas)}")
        at_least("optim.weight_decay", self.weight_decay, 0.0)
        at_least("optim.grad_clip", self.grad_clip, 0.0)


@dataclass
class ScheduleConfig:
    kind: str = "cosine"  # "cosine": warm-up then cosine decay to min_lr_ratio * lr; "constant": warm-up then lr
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        choice("schedule.kind", self.kind, ("cosine", "constant"))
        at_least("schedule.warmup_steps", self.warmup_steps, 0)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"schedule.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")


def make_optimizer(parameters: Iterable[torch.nn.Parameter], config: OptimConfig) -> torch.optim.AdamW:
    """AdamW, fused (one kernel for all tensors) where the parameters' devices have it: PyTorch's
    default on a CPU is a loop of small operations per tensor, 6x slower (a thirtieth of a tiny
    model's step)."""
    parameters = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") for p in parameters)
    return torch.optim.AdamW(parameters, lr=config.lr, betas=tuple(config.betas), eps=config.eps,
                             weight_decay=config.weight_decay, fused=fused)


def lr_factor(step: int, config: ScheduleConfig, total_steps: int) -> float:
    """The multiplier of the base learning rate for optimiser step ``step`` (0-based)."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.kind == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(total_steps - config.warmup_steps - 1, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def make_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config, total_steps))
