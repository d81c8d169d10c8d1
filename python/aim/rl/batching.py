"""Recorded chunks of different episodes evaluated together, so an update runs batched passes.

An episode's chunks are recorded one episode at a time (batch of one), but the update
re-evaluates every chunk of every episode, several epochs over. Chunks at the same position of
their episodes have the same token layout (history groups of the same kinds, chunks and shapes),
so they stack along the batch dimension into one :class:`~aim.rl.update.RecordedChunk` whose
log-probabilities are the stacked episodes' (the loss is a mean over transitions either way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from aim.rl.action_context import ChunkContext
from aim.rl.sde import Transitions
from aim.rl.update import RecordedChunk


def batched_chunks(chunks: Sequence[RecordedChunk], max_batch: int) -> list[RecordedChunk]:
    """``chunks`` stacked, up to ``max_batch`` episodes per stack, those of the same layout together
    (in order of first appearance)."""
    if max_batch < 1:
        raise ValueError(f"batched_chunks: max_batch must be >= 1, got {max_batch}")
    by_layout: dict[tuple, list[RecordedChunk]] = {}
    for chunk in chunks:
        by_layout.setdefault(_layout(chunk), []).append(chunk)
    stacks = []
    for same in by_layout.values():
        stacks += [_stack(same[i:i + max_batch]) for i in range(0, len(same), max_batch)]
    return stacks


def _layout(chunk: RecordedChunk) -> tuple:
    c = chunk.context
    history = tuple((g.kind, g.chunk, g.start, g.step, tuple(g.data.shape[1:])) for g in c.history)
    value = None if c.value is None else tuple(c.value.shape[1:])
    return c.chunk, history, tuple(c.text.shape[1:]), tuple(c.video.shape[1:]), value, tuple(chunk.path.states.shape[2:])


def _stack(chunks: list[RecordedChunk]) -> RecordedChunk:
    if len(chunks) == 1:
        return chunks[0]
    contexts = [c.context for c in chunks]
    history = tuple(dataclasses.replace(groups[0], data=torch.cat([g.data for g in groups]),
                                        timesteps=torch.cat([g.timesteps for g in groups]))
                    for groups in zip(*(c.history for c in contexts)))
    first = contexts[0]
    value = None if first.value is None else torch.cat([c.value for c in contexts])
    context = ChunkContext(history, torch.cat([c.text for c in contexts]), torch.cat([c.video for c in contexts]),
                           value, first.chunk)
    path = Transitions(torch.cat([c.path.states for c in chunks], 1), torch.cat([c.path.log_probs for c in chunks], 1))
    return RecordedChunk(context, path, torch.cat([c.advantages for c in chunks]))
