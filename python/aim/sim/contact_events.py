"""Interaction events from simulator contacts (docs/method.md §4), for value-map labels.

Events, found offline over a recorded episode (per-step contacts and object positions):

* grasp: the first step from which the gripper's two finger pads both touch the object for
  ``hold_steps`` consecutive steps (the grasp holds); its points are the pad-object contacts at
  that step;
* place: once the grasped object has left its supports (touches nothing but the gripper), the
  first step at which it touches a support again (any body neither the gripper nor the object)
  while at rest (centre-of-mass speed below ``rest_speed``); its points are the object-support
  contacts;
* without a grasp (press, push, turn, open): the first gripper-object contact.

``aim.data.value_map_labels`` turns the events into maps.
"""

from __future__ import annotations

import numpy as np

from aim.data.value_map_labels import Event
from aim.sim.environment import Contact

# Our choices (docs/method.md §4 leaves the numbers open): a grasp held 3 steps, an object at
# rest below 2 cm/s.
HOLD_STEPS = 3
REST_SPEED = 0.02


def detect_events(contacts: list[list[Contact]], object_positions: np.ndarray, dt: float, obj: str,
                  gripper: tuple[str, ...], pads: tuple[str, str], hold_steps: int = HOLD_STEPS,
                  rest_speed: float = REST_SPEED) -> list[Event]:
    """The episode's events in time order (see the module docstring); ``contacts[t]`` are step t's,
    ``object_positions`` (T, 3) the object's centre of mass, ``dt`` the seconds per step."""
    steps = len(contacts)

    def touching(t: int, bodies: tuple[str, ...]) -> list[Contact]:
        return [c for c in contacts[t] if obj in (c.body1, c.body2) and ({c.body1, c.body2} - {obj}) & set(bodies)]

    def grasped(t: int) -> bool:
        return all(touching(t, (pad,)) for pad in pads)

    grasp = next((t for t in range(steps - hold_steps + 1) if all(grasped(t + k) for k in range(hold_steps))), None)
    if grasp is None:
        first = next((t for t in range(steps) if touching(t, gripper)), None)
        return [] if first is None else [Event(first, "contact", _points(touching(first, gripper)))]
    events = [Event(grasp, "grasp", _points(touching(grasp, pads)))]
    speed = np.linalg.norm(np.diff(object_positions, axis=0), axis=1) / dt
    lifted = False
    for t in range(grasp + 1, steps):
        support = [c for c in contacts[t] if obj in (c.body1, c.body2) and not ({c.body1, c.body2} - {obj}) & set(gripper)]
        if not support:
            lifted = True
        elif lifted and speed[t - 1] < rest_speed:
            events.append(Event(t, "place", _points(support)))
            break
    return events


def _points(contacts: list[Contact]) -> np.ndarray:
    return np.stack([c.position for c in contacts])
