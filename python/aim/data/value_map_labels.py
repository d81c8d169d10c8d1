"""Value-map labels (docs/method.md §4): interaction events in time, then heat maps per camera.

An :class:`Event` is an interaction at a step with its world points. Where the events come from
is the caller's: a simulator's contacts (``aim.sim.contact_events``) or a recording's gripper
commands (``aim.data.gripper_events``). Frame t shows the next upcoming event (the grasp region until the grasp happens, then the
place region until placement, then the last event held); with no event at all the maps stay 0.
Events may belong to several tracks (the two arms of a bimanual robot, ``Event.track``): frame t
then shows each track's next event, both when both have one ahead, and once no track has one
ahead, the episode's last event held. The points are rendered in every view with
``aim.ops.render_value_maps`` (depth-adaptive Gaussians, moving cameras re-projected every
frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aim.ops.value_maps import render_value_maps

# Our choices (docs/method.md §4 leaves the numbers open): a 2 cm interaction region, blobs
# 1.5 px to 1/8 of the image wide.
R_WORLD = 0.02
SIGMA_MIN = 1.5
SIGMA_MAX_FRACTION = 1 / 8
LABEL_PIXELS_PER_CALL = 1 << 24  # float64 maps of one render call: 128 MiB


@dataclass(frozen=True)
class Event:
    """An interaction at ``step``: ``kind`` names it ("grasp", "place", "contact", "release",
    "reach"); ``points`` (P, 3) world; ``track`` says whose it is (e.g. "left" and "right" for
    two arms; one track by default)."""

    step: int
    kind: str
    points: np.ndarray
    track: str = ""


def points_per_frame(events: list[Event], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(points (T, P, 3), mask (T, P)): frame t holds the next upcoming event of every track that
    has one ahead; once none has, the episode's last event (all events of its step)."""
    tracks: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.step):
        tracks.setdefault(event.track, []).append(event)
    last_step = max((e.step for e in events), default=None)
    held = [e for e in events if e.step == last_step]
    shown = []
    for t in range(steps):
        ahead = [e for track in tracks.values() if (e := next((e for e in track if e.step >= t), None)) is not None]
        shown.append(ahead or held)
    width = max((sum(len(e.points) for e in frame) for frame in shown), default=1) or 1
    points, mask = np.zeros((steps, width, 3)), np.zeros((steps, width), dtype=bool)
    for t, frame in enumerate(shown):
        if frame:
            stacked = np.concatenate([e.points for e in frame])
            points[t, : len(stacked)] = stacked
            mask[t, : len(stacked)] = True
    return points, mask


def render_labels(points: np.ndarray, mask: np.ndarray, intrinsics: dict[str, np.ndarray],
                  extrinsics: dict[str, np.ndarray], height: int, width: int,
                  r_world: float = R_WORLD) -> dict[str, np.ndarray]:
    """(T, H, W) float32 heat per camera: ``points_per_frame``'s output drawn in each view.

    intrinsics[camera] (3, 3) or, for cameras whose intrinsics change, (T, 3, 3) pixels;
    extrinsics[camera] (T, 4, 4) world-to-camera, OpenCV axes. Frames are rendered independently
    (each frame is one batch entry), a block of frames at a time to bound memory.
    """
    cameras = list(intrinsics)
    steps = len(points)
    per_frame = np.stack([np.broadcast_to(np.asarray(intrinsics[c], dtype=np.float64), (steps, 3, 3)) for c in cameras],
                         axis=1)
    views = np.stack([np.asarray(extrinsics[c], dtype=np.float64) for c in cameras], axis=1)
    out = {c: np.zeros((steps, height, width), dtype=np.float32) for c in cameras}
    block = max(1, LABEL_PIXELS_PER_CALL // (len(cameras) * height * width))
    for lo in range(0, steps, block):
        hi = min(steps, lo + block)
        maps = render_value_maps(
            torch.from_numpy(points[lo:hi, None]).double(),
            torch.from_numpy(mask[lo:hi, None]),
            torch.from_numpy(per_frame[lo:hi]),
            torch.from_numpy(views[lo:hi, None]),
            height, width, r_world=r_world, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX_FRACTION * min(height, width),
        )[:, 0]
        for v, c in enumerate(cameras):
            out[c][lo:hi] = maps[:, v].float().numpy()
    return out
