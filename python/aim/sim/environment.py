"""The environment interface the data pipeline collects from: seeded resets, steps, camera views
with their calibration every frame, the end-effector pose, contacts and success.

Conventions (those of ``aim.ops.value_maps``, so labels render without conversion): images are
(H, W, 3) uint8 RGB with row 0 at the top, as the model sees them; intrinsics (3, 3) in pixels
with pixel centres at integer coordinates; extrinsics (4, 4) world-to-camera in OpenCV axes
(x right, y down, z forward). Cameras attached to the robot move, so calibration is per frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Contact:
    """Two bodies touching at ``position`` (world, metres): the raw material of docs/method.md §4's events."""

    body1: str
    body2: str
    position: np.ndarray


@dataclass(frozen=True)
class StepResult:
    """The policy's input after a step: the low-dimensional observation, and episode status."""

    observation: np.ndarray
    success: bool
    done: bool


class Environment(ABC):
    """A manipulation task with calibrated cameras; one instance, one episode at a time."""

    cameras: tuple[str, ...]

    @abstractmethod
    def reset(self, seed: int) -> np.ndarray:
        """Start an episode; the same seed gives the same initial state. Returns the observation."""

    @abstractmethod
    def step(self, action: np.ndarray) -> StepResult:
        """Apply one action."""

    @abstractmethod
    def render(self) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 RGB per camera at the current state."""

    @abstractmethod
    def intrinsics(self) -> dict[str, np.ndarray]:
        """(3, 3) pixels per camera."""

    @abstractmethod
    def extrinsics(self) -> dict[str, np.ndarray]:
        """(4, 4) world-to-camera (OpenCV axes) per camera at the current state."""

    @abstractmethod
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector (tool centre) position (3,) and orientation quaternion (4,) w, x, y, z, world frame."""

    @abstractmethod
    def contacts(self) -> list[Contact]:
        """Active contacts at the current state."""
