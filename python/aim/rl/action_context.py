"""What one chunk's actions are conditioned on, and the action stream's velocity given it.

Stage II trains the action stream only, but an update must re-evaluate the log-probability of
actions sampled earlier (PPO ratio, several epochs per batch). Those actions were denoised
attending to the chunk's clean history (observations, executed actions) and to the chunk's
denoised video and value latents (docs/method.md §7). A :class:`ChunkContext` keeps exactly that: the
history groups, the instruction features and the denoised X_c, M_c. :func:`context_velocity`
rebuilds the keys and values of that context under the model's *current* weights (history action
tokens run through the action branch, so they change as it learns; the video and value streams
are frozen) and returns the action velocity, differentiable with respect to the action stream.

:func:`denoise_chunk` is the sampling side: it denoises X_c, M_c with the rollout's KV cache and
hands back the context with the cached action velocity, so a recorded log-probability and its
recomputation come from two independent code paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from aim.model.clip import ClipStructure, future_action_group, future_video_groups
from aim.model.flow_matching import TIMESTEP_SCALE
from aim.model.groups import StreamGroup
from aim.model.kv_cache import KVCache
from aim.model.sampler import Rollout
from aim.rl.sde import Velocity

Tensor = torch.Tensor


@dataclass(frozen=True)
class ChunkContext:
    """Chunk ``chunk``'s conditioning for its actions, for a batch of B episodes: the clean
    ``history`` groups (O, A of chunks up to ``chunk``), ``text`` (B, L, text_dim), and the
    denoised ``video`` and ``value`` latents (B, C, f, H, W; value None without a value stream)."""

    history: tuple[StreamGroup, ...]
    text: Tensor
    video: Tensor
    value: Tensor | None
    chunk: int


def action_group(structure: ClipStructure, chunk: int, actions: Tensor, sigma: float) -> StreamGroup:
    """Ah_chunk: noisy actions (B, N, C) at noise level ``sigma``."""
    return future_action_group(structure, chunk, actions, actions.new_full(actions.shape[:2], sigma * TIMESTEP_SCALE))


def context_velocity(model, structure: ClipStructure, context: ChunkContext) -> Velocity:
    """The action velocity of ``context``'s chunk under ``model``'s current weights: the history
    and the clean chunk (timestep 0) are computed once into a fresh KV cache, then each call runs
    the noisy actions against it. Runs with autograd when it is enabled."""
    cache = KVCache(len(model.blocks))
    clean = torch.zeros(context.video.shape[:1] + context.video.shape[2:3], device=context.video.device,
                        dtype=context.video.dtype)
    chunk_groups = future_video_groups(structure, context.chunk, context.video, context.value, clean)
    model(list(context.history) + chunk_groups, context.text, cache=cache, commit=True)

    def velocity(actions: Tensor, sigma: float) -> Tensor:
        return model([action_group(structure, context.chunk, actions, sigma)], context.text, cache=cache)[0]

    return velocity


@torch.no_grad()
def denoise_chunk(rollout: Rollout, generator: torch.Generator | None = None) -> tuple[ChunkContext, Velocity]:
    """Denoises the rollout's current chunk's video and value (Euler, CFG, as
    :meth:`Rollout.predict_chunk` does) and returns its context with the KV-cached action velocity."""
    video, value = rollout.denoise_video(generator)
    conditional = slice(0, rollout.batch)  # under CFG the history holds the unconditional copy too
    history = tuple(dataclasses.replace(g, data=g.data[conditional], timesteps=g.timesteps[conditional])
                    for g in rollout.history)
    context = ChunkContext(history, rollout.text, video, value, rollout.chunk)
    return context, rollout.action_velocity(video, value)
