"""One Stage II episode: the policy samples every chunk with the action SDE and records it.

The episode runs like ``aim.eval.episode.run_episode`` (chunks executed by the same
``execute_chunk``: through ``Suite.executable``, frames observed every ``frame_stride`` steps, the
end at success, ``done`` or ``max_steps``), with three differences that RL needs:

* each chunk's video and value are denoised, then its actions sampled with the SDE
  (``aim.rl.sde``) from the episode's own generator, so the G members of a group that share a
  simulator seed still act differently;
* each chunk is kept as it was sampled (:class:`SampledChunk`: its context and denoising path
  with the transition log-probabilities), for the GRPO update;
* each executed step t gets its dense reward M_t(Pi(p_t)) (``aim.rl.reward``): the chunk's own
  predicted value map of the frame step t leads to (frame ``t // frame_stride`` of the chunk),
  read at the end-effector target the chunk's actions command at t (``Suite.ee_targets``),
  projected with the cameras as they are when that frame is observed (wrist cameras move).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aim.eval.episode import execute_chunk, observe
from aim.eval.policy import AIMPolicy
from aim.eval.suite import Suite
from aim.model.sampler import Rollout
from aim.rl.action_context import ChunkContext, denoise_chunk
from aim.rl.reward import dense_rewards
from aim.rl.sde import SDESchedule, Transitions, sample_transitions

Tensor = torch.Tensor


@dataclass(frozen=True)
class SampledChunk:
    """A chunk as it was sampled (batch of one episode): what its actions were conditioned on,
    and their SDE path with the log-probability of every transition."""

    context: ChunkContext
    path: Transitions


@dataclass(frozen=True)
class RLEpisode:
    """One rolled-out episode of group member ``member`` from simulator ``seed``; ``dense`` (steps,)
    float64 holds M_t(Pi(p_t)) per executed step (empty for a model without a value stream)."""

    task: str
    seed: int
    member: int
    success: bool
    steps: int
    dense: Tensor
    chunks: tuple[SampledChunk, ...]


@torch.no_grad()
def sample_chunk(rollout: Rollout, schedule: SDESchedule,
                 generator: torch.Generator | None = None) -> tuple[ChunkContext, Transitions]:
    """The rollout's current chunk: video and value denoised, then actions sampled with the SDE
    (the noise drawn in :meth:`Rollout.predict_chunk`'s order)."""
    context, velocity = denoise_chunk(rollout, generator)
    shape = (rollout.batch, rollout.structure.actions_per_chunk, rollout.model.config.action_channels)
    noise = torch.randn(shape, generator=generator).to(context.video.device, context.video.dtype)
    return context, sample_transitions(velocity, noise, schedule, generator)


def run_rl_episode(policy: AIMPolicy, suite: Suite, task: str, seed: int, member: int, generator: torch.Generator,
                   schedule: SDESchedule, max_steps: int | None = None) -> RLEpisode:
    """Runs ``task`` from ``seed`` with ``policy``'s actions sampled by ``schedule``'s SDE from ``generator``."""
    bundle, stride = policy.bundle, policy.frame_stride
    image_size = tuple(bundle.image_size)
    env = suite.make(task, bundle.cameras, image_size)
    env.reset(seed)
    observation = observe(env)
    policy.reset(suite.instruction(task), observation, seed, generator, task=task)
    intrinsics = _per_camera(bundle.layout.cameras, observation.intrinsics)
    chunks, dense, steps, success = [], [], 0, False
    while True:
        context, path = sample_chunk(policy.rollout, schedule, generator)
        chunks.append(SampledChunk(context, path))
        actions = policy.environment_actions(path.actions)
        targets = suite.ee_targets(env, actions)
        frames, executed, cameras, finished = [], [], [], False
        for step in execute_chunk(env, suite, actions, stride, steps, max_steps):
            finished = step.finished
            executed.append(step.action)
            success = step.result.success
            if step.boundary or finished:
                cameras.append(_per_camera(bundle.layout.cameras, env.extrinsics()))
            if step.boundary and not finished:
                frames.append(observe(env))
        steps += len(executed)
        if context.value is not None:
            heat = torch.from_numpy(policy.decode_heat(context.value)).double()
            frame = torch.arange(len(executed)) // stride
            points = torch.from_numpy(np.asarray(targets[:len(executed)], dtype=np.float64)).reshape(len(executed), -1, 3)
            dense.append(dense_rewards(heat[frame], points, intrinsics, torch.stack(cameras)[frame], bundle.layout,
                                       image_size))
        if finished:
            break
        policy.observe(frames, np.stack(executed))
    dense_per_step = torch.cat(dense) if dense else torch.zeros(0, dtype=torch.float64)
    return RLEpisode(task, seed, member, success, steps, dense_per_step, tuple(chunks))


def _per_camera(cameras: tuple[str, ...] | list[str], matrices: dict[str, np.ndarray]) -> Tensor:
    """(V, r, c) float64 of per-camera matrices in ``cameras`` order."""
    return torch.from_numpy(np.stack([np.asarray(matrices[c], dtype=np.float64) for c in cameras]))
