"""Meta-World as an evaluation :class:`~aim.eval.suite.Suite`.

Actions are in one of ``aim.sim.metaworld_env.ACTION_SPACES``: the hand's mocap target in world
coordinates (``"target"``) or Meta-World's displacement command (``"delta"``), plus the gripper
effort; a model is evaluated in the action space of the dataset it was trained on
(:func:`suite_for_run`). The environment turns the actions into end-effector targets. The
gripper effort (and a delta) is clipped to [-1, 1], as the data collector clips the expert's; a
target is passed on as predicted (the environment moves towards it at Meta-World's speed limit).
Views are rendered as the model's training data was (``multisample``, from the dataset's record);
views for people (:meth:`MetaWorldSuite.view`) are rendered anew, larger and anti-aliased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aim.eval.observation import Observation
from aim.sim.collect import FPS
from aim.sim.metaworld_env import MetaWorldEnv, action_space_of, check_task, instruction

_ENVIRONMENTS: dict[tuple, MetaWorldEnv] = {}


@dataclass(frozen=True)
class MetaWorldSuite:
    """Meta-World tasks by id (e.g. ``"pick-place-v3"``), acting in ``action_space``, rendered with
    ``multisample`` anti-aliasing samples per pixel (None: Meta-World's own)."""

    action_space: str = "target"
    fps: float = float(FPS)
    multisample: int | None = None

    def make(self, task: str, cameras: Sequence[str], image_size: tuple[int, int]) -> MetaWorldEnv:
        """One environment per task, views and size per process, reused across episodes
        (building one takes seconds)."""
        key = (task, tuple(cameras), tuple(image_size), self.action_space, self.multisample)
        if key not in _ENVIRONMENTS:
            _ENVIRONMENTS[key] = MetaWorldEnv(task, tuple(cameras), *image_size, action_space=self.action_space,
                                              multisample=self.multisample)
        return _ENVIRONMENTS[key]

    def check_task(self, task: str) -> None:
        check_task(task)

    def instruction(self, task: str) -> str:
        return instruction(task)

    def executable(self, action: np.ndarray) -> np.ndarray:
        if self.action_space == "delta":
            return np.clip(action, -1.0, 1.0)
        return np.append(action[:3], np.clip(action[3], -1.0, 1.0))

    def ee_targets(self, env: MetaWorldEnv, actions: np.ndarray) -> np.ndarray:
        return env.ee_targets(actions)

    def view(self, env: MetaWorldEnv, height: int, width: int) -> Observation:
        images, intrinsics = env.render_for_people(height, width)
        return Observation(images, intrinsics, env.extrinsics())


def suite_for_run(bundle) -> MetaWorldSuite:
    """The Meta-World suite in the action space, and rendering as, the data ``bundle`` (a
    ModelBundle, or a run or checkpoint directory) was trained on."""
    from aim.runtime.bundle import read_bundle_metadata

    if isinstance(bundle, (str, Path)):
        meta = read_bundle_metadata(bundle)
        names, render = meta.get("action_names"), meta.get("render", {})
    else:
        names, render = bundle.action_names, bundle.render
    return MetaWorldSuite(action_space_of(names), multisample=render.get("multisample"))
