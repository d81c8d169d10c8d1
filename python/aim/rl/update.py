"""One GRPO update of the action stream from a batch of recorded chunks (docs/method.md §6).

Each :class:`RecordedChunk` is a chunk of one or more episodes as it was sampled: its context,
its SDE path with the log-probabilities recorded then, and each episode's advantage. Every epoch
recomputes the log-probabilities under the current weights (the context rebuilt with them, see
``aim.rl.action_context``), and the gradient of the batch's mean loss is accumulated chunk by
chunk (one chunk's graph in memory at a time) before one clipped optimiser step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from aim.errors import NonFiniteLossError
from aim.model.clip import ClipStructure
from aim.rl.action_context import ChunkContext, context_velocity
from aim.rl.grpo import GRPOConfig, clipped_objective, gaussian_kl
from aim.rl.sde import SDESchedule, Transitions, transition_log_probs, transition_means

Tensor = torch.Tensor


@dataclass(frozen=True)
class RecordedChunk:
    """A sampled chunk of B episodes and their advantages (B,)."""

    context: ChunkContext
    path: Transitions
    advantages: Tensor


def grpo_update(model: nn.Module, chunks: Sequence[RecordedChunk], structure: ClipStructure, schedule: SDESchedule,
                config: GRPOConfig, optimizer: torch.optim.Optimizer, max_grad_norm: float,
                reference: nn.Module | None = None) -> dict[str, float]:
    """Runs ``config.epochs`` optimiser steps on ``chunks`` and returns their mean metrics
    (``loss``, ``clip_fraction``, ``kl``, ``ratio``, ``grad_norm``). ``reference``, the Stage I
    model, is needed when ``config.kl_weight`` > 0."""
    if not chunks:
        raise ValueError("grpo_update: no recorded chunks")
    if config.kl_weight > 0 and reference is None:
        raise ValueError(f"grpo_update: GRPOConfig.kl_weight={config.kl_weight} needs the Stage I reference model")
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    stds = torch.tensor([schedule.std(k) for k in range(schedule.steps)])
    transitions = sum(c.path.log_probs.numel() for c in chunks)
    totals = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "ratio": 0.0, "grad_norm": 0.0}
    for _ in range(config.epochs):
        optimizer.zero_grad(set_to_none=True)
        for chunk in chunks:
            states = chunk.path.states
            means = transition_means(context_velocity(model, structure, chunk.context), states, schedule)
            log_probs = transition_log_probs(means, states, schedule)
            losses, clipped = clipped_objective(log_probs, chunk.path.log_probs, chunk.advantages.to(log_probs),
                                                config.clip_epsilon)
            kl = torch.zeros_like(losses)
            if config.kl_weight > 0:
                with torch.no_grad():
                    reference_means = transition_means(context_velocity(reference, structure, chunk.context), states,
                                                       schedule)
                kl = gaussian_kl(means, reference_means, stds.to(means))
            ((losses + config.kl_weight * kl).sum() / transitions).backward()
            weight = losses.numel() / (transitions * config.epochs)
            totals["loss"] += float(losses.detach().mean()) * weight
            totals["clip_fraction"] += float(clipped.float().mean()) * weight
            totals["kl"] += float(kl.detach().mean()) * weight
            totals["ratio"] += float(torch.exp(log_probs.detach() - chunk.path.log_probs).mean()) * weight
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
        if not torch.isfinite(grad_norm):
            raise NonFiniteLossError(f"grpo_update: gradient norm is {float(grad_norm)}; nothing was applied")
        totals["grad_norm"] += float(grad_norm) / config.epochs
        optimizer.step()
    return totals
