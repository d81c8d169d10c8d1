"""A toy task for Stage II tests: push a point past a line to its right, seen in tiny images.

Spawned rollout workers import this module by name, so everything a worker unpickles lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.eval.helpers import PointEnv, PointSuite, save_bundle, tiny_bundle

TASK = "reach"  # one of tests.eval.helpers.TASKS, which the tiny bundle's text embedding knows
LINE = 0.4  # how far right of its start the point must get


class LineEnv(PointEnv):
    """:class:`PointEnv` that succeeds once the point is ``LINE`` right of where it started."""

    def step(self, action: np.ndarray):
        result = super().step(action)
        return type(result)(result.observation, bool(self.position[0] - self.start[0] > LINE), False)


@dataclass(frozen=True)
class LineSuite(PointSuite):
    def make(self, task, cameras, image_size) -> LineEnv:
        return LineEnv(cameras, image_size)


def stage_one_checkpoint(directory, seed: int = 0, **changes):
    """A random tiny model saved as a Stage I checkpoint: 8-action chunks (frame stride 4)."""
    bundle = tiny_bundle(frame_stride=4, seed=seed, **changes)
    save_bundle(bundle, directory)
    return directory
