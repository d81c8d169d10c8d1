"""Value-map labels from recorded robot signals (docs/method.md §4 without a simulator's contacts).

Recorded datasets (RoboTwin's HDF5 episodes, a real robot's logs) hold no contacts, but they
hold what the robot did with its grippers. Per arm, from its end-effector poses and gripper
commands:

* grasp: the command crossing from open to closed (below ``close_below`` after having been above
  ``open_above``: the band between them is hysteresis, so a command that wavers near one
  threshold makes one event, not many), at the gripper's grasp point;
* release: the command opening again (above ``open_above``) after a grasp; its point is where the
  held object is let go (a place);
* the grasp point is the recorded pose's position moved ``tcp_offset`` along the pose's x axis
  (the axis from wrist to fingers of RoboTwin's aloha-agilex end pose, whose tool centre sits
  0.12 m ahead of it; 0 by default: the recorded position itself).

An arm whose gripper never closes may still have acted (pressing, pushing, turning). For such
episodes :data:`FALLBACKS` offers "reach" (default): each arm that moved more than
``min_reach`` from its first position gets one event where it reached farthest from it, the
turning point of a reach-and-return and the end of a push; or "empty": no event (value maps of 0).
Episodes with neither a gripper event nor a reach are reported as unlabelled, never refused.

:func:`gripper_value_maps` turns the signals of all arms into maps: each arm is one track of
``aim.data.value_map_labels.points_per_frame`` (frame t shows each arm's next event, the last one
held after all), drawn with ``render_labels`` in every camera with that step's calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aim.data.value_map_labels import R_WORLD, Event, points_per_frame, render_labels
from aim.errors import UsageError

FALLBACKS = ("reach", "empty")


@dataclass(frozen=True)
class GripperEventSettings:
    """Thresholds of the gripper command (0 closed, 1 open, as RoboTwin records it), the tool-centre
    offset in metres along the pose's x axis, what episodes without a gripper event get, and the
    blob radius of the rendered maps (metres)."""

    close_below: float = 0.3
    open_above: float = 0.5
    tcp_offset: float = 0.0
    fallback: str = "reach"
    min_reach: float = 0.05
    r_world: float = R_WORLD

    def __post_init__(self) -> None:
        if not 0.0 <= self.close_below < self.open_above <= 1.0:
            raise UsageError(f"GripperEventSettings: need 0 <= close_below < open_above <= 1 (gripper 0 closed, "
                             f"1 open), got close_below {self.close_below} and open_above {self.open_above}")
        if self.fallback not in FALLBACKS:
            raise UsageError(f"GripperEventSettings.fallback must be one of {list(FALLBACKS)}, got {self.fallback!r}")
        if not (np.isfinite(self.tcp_offset) and self.min_reach >= 0 and self.r_world > 0):
            raise UsageError("GripperEventSettings: tcp_offset must be finite, min_reach >= 0 and r_world > 0")


@dataclass(frozen=True)
class ArmSignals:
    """One arm over an episode of T steps: ``poses`` (T, 7) world x, y, z and unit quaternion
    w, x, y, z; ``gripper`` (T,) command, 0 closed and 1 open."""

    name: str
    poses: np.ndarray
    gripper: np.ndarray

    def __post_init__(self) -> None:
        poses, gripper = np.asarray(self.poses), np.asarray(self.gripper)
        if poses.ndim != 2 or poses.shape[1] != 7 or gripper.shape != poses.shape[:1]:
            raise ValueError(f"arm {self.name!r}: poses must be (T, 7) and gripper (T,), got {poses.shape} and "
                             f"{gripper.shape}")
        if not (np.isfinite(poses).all() and np.isfinite(gripper).all()):
            raise ValueError(f"arm {self.name!r}: poses and gripper commands must be finite")


@dataclass(frozen=True)
class GripperLabels:
    """The maps per camera ((T, H, W) heat in [0, 1]), the events drawn, and how the episode was
    labelled: "gripper" (it has gripper events), "reach" (the fallback) or "none" (no event)."""

    maps: dict[str, np.ndarray]
    events: list[Event]
    source: str


def grasp_point(pose: np.ndarray, tcp_offset: float) -> np.ndarray:
    """The world point ``tcp_offset`` metres along the x axis of ``pose`` (x, y, z, qw, qx, qy, qz)."""
    w, x, y, z = np.asarray(pose[3:7], dtype=np.float64) / np.linalg.norm(pose[3:7])
    x_axis = np.array([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)])
    return np.asarray(pose[:3], dtype=np.float64) + tcp_offset * x_axis


def gripper_events(arm: ArmSignals, settings: GripperEventSettings = GripperEventSettings()) -> list[Event]:
    """The arm's grasps and releases in time order (see the module docstring)."""
    events, closed = [], arm.gripper[0] < settings.close_below
    for t, command in enumerate(arm.gripper):
        if not closed and command < settings.close_below:
            closed = True
            events.append(Event(t, "grasp", grasp_point(arm.poses[t], settings.tcp_offset)[None], arm.name))
        elif closed and command > settings.open_above:
            closed = False
            if events:
                events.append(Event(t, "release", grasp_point(arm.poses[t], settings.tcp_offset)[None], arm.name))
    return events


def reach_event(arm: ArmSignals, settings: GripperEventSettings = GripperEventSettings()) -> Event | None:
    """Where the arm got farthest from its first position, or None if it stayed within ``min_reach``."""
    distance = np.linalg.norm(arm.poses[:, :3] - arm.poses[0, :3], axis=1)
    step = int(np.argmax(distance))
    if distance[step] <= settings.min_reach:
        return None
    return Event(step, "reach", grasp_point(arm.poses[step], settings.tcp_offset)[None], arm.name)


def episode_events(arms: Sequence[ArmSignals], settings: GripperEventSettings = GripperEventSettings()
                   ) -> tuple[list[Event], str]:
    """All arms' events and the labelling source ("gripper", "reach" or "none")."""
    events = [e for arm in arms for e in gripper_events(arm, settings)]
    if events:
        return events, "gripper"
    if settings.fallback == "reach":
        events = [e for arm in arms if (e := reach_event(arm, settings)) is not None]
    return events, "reach" if events else "none"


def gripper_value_maps(arms: Sequence[ArmSignals], intrinsics: dict[str, np.ndarray],
                       extrinsics: dict[str, np.ndarray], height: int, width: int,
                       settings: GripperEventSettings = GripperEventSettings()) -> GripperLabels:
    """Value maps of an episode from its arms' signals, drawn in every camera.

    intrinsics[camera] (3, 3) or (T, 3, 3) pixels; extrinsics[camera] (T, 4, 4) world-to-camera,
    OpenCV axes; every arm's signals cover the same T steps.
    """
    steps = {len(arm.gripper) for arm in arms}
    if len(steps) != 1:
        raise ValueError(f"gripper_value_maps: the arms' signals cover different numbers of steps {sorted(steps)}")
    (length,) = steps
    events, source = episode_events(arms, settings)
    points, mask = points_per_frame(events, length)
    maps = render_labels(points, mask, intrinsics, extrinsics, height, width, settings.r_world)
    return GripperLabels(maps, events, source)
