"""One closed-loop episode: the policy acts chunk by chunk until success or the step limit.

Within a chunk every action is executed (clipped by the suite); the environment is rendered
every ``frame_stride`` steps, which are the frames the policy observes after the chunk. The
episode ends at the first success, when the environment says it is done, or after
``max_steps``. With a video path, a :class:`~aim.eval.videos.RolloutRecorder` takes renders for
people every few steps (the simulation is unchanged by them) and draws on them what the
current chunk predicted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aim.eval.observation import Observation
from aim.eval.policy import AIMPolicy
from aim.eval.suite import Suite
from aim.eval.videos import RolloutRecorder
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
                video_path: str | Path | None = None, video_size: int = 256, video_every: int = 2) -> EpisodeResult:
    """Runs ``task`` from ``seed`` with ``policy``; writes a rollout video when ``video_path`` is
    given, rendered ``video_size`` pixels high every ``video_every`` steps."""
    bundle, stride = policy.bundle, policy.frame_stride
    image_size = tuple(bundle.image_size)
    env = suite.make(task, bundle.cameras, image_size)
    env.reset(seed)
    observation = observe(env)
    policy.reset(suite.instruction(task), observation, seed, task=task)
    recorder = None
    if video_path is not None:
        recorder = RolloutRecorder(bundle.layout, image_size, video_size, video_every, suite.fps)
    steps, success, latencies = 0, False, []
    while True:
        chunk = policy.predict(value_maps=recorder is not None)
        latencies.append(chunk.latency_s)
        targets = suite.ee_targets(env, chunk.actions) if recorder else None
        if recorder and steps == 0:
            recorder.add(0, suite.view(env, *recorder.view_size), observation, _heat(chunk, 0, stride), targets)
        frames, executed, finished = [], [], False
        for step in execute_chunk(env, suite, chunk.actions, stride, steps, max_steps):
            i, finished = step.index, step.finished
            executed.append(step.action)
            success = step.result.success
            if step.boundary and not finished:
                frames.append(observe(env))
                observation = frames[-1]
            if recorder and recorder.wants(steps + i + 1, finished):
                # The state after action i leads to the chunk's next observed frame, i // stride.
                recorder.add(steps + i + 1, suite.view(env, *recorder.view_size), observation,
                             _heat(chunk, i, stride), targets[i:])
        steps += len(executed)
        if finished:
            break
        policy.observe(frames, np.stack(executed))
    video = None
    if recorder:
        video = str(recorder.write(video_path, task, seed, success, steps))
    return EpisodeResult(task, seed, success, steps, latencies, video)


def _heat(chunk, action: int, stride: int) -> np.ndarray | None:
    """The chunk's predicted value map (Hc, Wc) for the frame observed after ``action``'s frame stride."""
    return None if chunk.value_maps is None else chunk.value_maps[action // stride]
