"""``Suite``: what a simulator benchmark supplies to closed-loop evaluation, so the episode loop
and the runner are written once for every simulator (Meta-World here; a test suite in tests).

A suite is picklable (it travels to worker processes) and builds its environments there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from aim.eval.observation import Observation
from aim.sim.environment import Environment


class Suite(Protocol):
    """Environments, instructions and action semantics of one benchmark."""

    fps: float  # simulator steps per second of simulated time

    def make(self, task: str, cameras: Sequence[str], image_size: tuple[int, int]) -> Environment:
        """An environment for ``task`` rendering ``cameras`` at ``image_size`` (H, W)."""

    def check_task(self, task: str) -> None:
        """Refuses, with an :class:`aim.errors.UsageError` naming it, a task the suite does not have."""

    def instruction(self, task: str) -> str:
        """The instruction the model was trained with for ``task``."""

    def executable(self, action: np.ndarray) -> np.ndarray:
        """The action as the environment takes it (e.g. clipped to its bounds); also what the
        policy is told was executed."""

    def ee_targets(self, env: Environment, actions: np.ndarray) -> np.ndarray:
        """(N, 3) world positions the end effector is commanded to by ``actions`` (N, A) from its
        current pose, one per action."""

    def view(self, env: Environment, height: int, width: int) -> Observation:
        """The current state of ``env`` rendered for people from the same cameras at ``height`` x
        ``width`` (rollout videos), with the calibration of that size; not the model's input,
        and rendering it leaves the episode unchanged."""
