"""One closed-loop episode: the policy acts chunk by chunk until success or the step limit.

Within a chunk every action is executed (clipped by the suite); the environment is rendered
every ``frame_stride`` steps, which are the frames the policy observes after the chunk. The
episode ends at the first success, when the environment says it is done, or after
``max_steps``. With a video path, each observed frame is drawn with the value map the chunk
predicted for it and the end-effector target its actions command by then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aim.eval.observation import Observation
from aim.eval.overlay import rollout_picture
from aim.eval.policy import AIMPolicy
from aim.eval.suite import Suite
from aim.eval.videos import write_video
from aim.sim.environment import Environment, StepResult


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one episode; ``steps`` counts executed actions; ``video`` is the file written, if any."""

    task: str
    seed: int
    success: bool
    steps: int
    chunk_latencies_s: list[float] = field(default_factory=list)
    video: str | None = None


@dataclass(frozen=True)
class ChunkStep:
    """One executed action of a chunk: ``index`` in the chunk, the ``action`` as executed, the
    environment's ``result``; ``boundary``: the policy observes the frame after it; ``finished``:
    the episode ends with it."""

    index: int
    action: np.ndarray
    result: StepResult
    boundary: bool
    finished: bool


def observe(env: Environment) -> Observation:
    """The environment's current views and calibration."""
    return Observation(env.render(), env.intrinsics(), env.extrinsics())


def execute_chunk(env: Environment, suite: Suite, actions: np.ndarray, stride: int, steps_before: int,
                  max_steps: int | None) -> Iterator[ChunkStep]:
    """Executes a chunk's ``actions`` (through ``Suite.executable``) one by one, the episode
    having run ``steps_before`` steps, and stops after the step that ends the episode (success,
    the environment done, or ``max_steps``). Evaluation and Stage II rollouts share this rule."""
    for i, action in enumerate(actions):
        action = suite.executable(action)
        result = env.step(action)
        finished = result.success or result.done or (max_steps is not None and steps_before + i + 1 >= max_steps)
        yield ChunkStep(i, action, result, (i + 1) % stride == 0, finished)
        if finished:
            return


def run_episode(policy: AIMPolicy, suite: Suite, task: str, seed: int, max_steps: int | None = None,
                video_path: str | Path | None = None) -> EpisodeResult:
    """Runs ``task`` from ``seed`` with ``policy``; writes a rollout video when ``video_path`` is given."""
    bundle, stride = policy.bundle, policy.frame_stride
    image_size = tuple(bundle.image_size)
    env = suite.make(task, bundle.cameras, image_size)
    env.reset(seed)
    observation = observe(env)
    policy.reset(suite.instruction(task), observation, seed, task=task)
    record = video_path is not None
    pictures = [rollout_picture(bundle.layout, observation, image_size)] if record else []
    steps, success, latencies = 0, False, []
    while True:
        chunk = policy.predict(value_maps=record)
        latencies.append(chunk.latency_s)
        targets = suite.ee_targets(env, chunk.actions) if record else None
        frames, executed, finished = [], [], False
        for step in execute_chunk(env, suite, chunk.actions, stride, steps, max_steps):
            i, finished = step.index, step.finished
            executed.append(step.action)
            success = step.result.success
            draw = record and (step.boundary or finished)
            if step.boundary and not finished or draw:
                frames.append(observe(env))
            if draw:
                has_heat = step.boundary and chunk.value_maps is not None
                heat = chunk.value_maps[(i + 1) // stride - 1] if has_heat else None
                pictures.append(rollout_picture(bundle.layout, frames[-1], image_size, heat, targets[i:i + 1]))
        steps += len(executed)
        if finished:
            break
        policy.observe(frames, np.stack(executed))
    video = None
    if record:
        video = str(write_video(video_path, np.stack(pictures), suite.fps / stride))
    return EpisodeResult(task, seed, success, steps, latencies, video)
