"""Value-map labels from contacts (docs/method.md §4): event detection, next-event schedule, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from aim.data.value_map_labels import points_per_frame, render_labels
from aim.sim.contact_events import detect_events
from aim.sim.environment import Contact

GRIPPER = ("hand", "leftpad", "rightpad")
PADS = ("leftpad", "rightpad")
GRASP_AT, LIFT_AT, PLACE_AT = 3, 6, 10


def _pick_and_place(steps=14):
    """Object on the table; both pads touch from step 3; lifted from 6; set down on the shelf at 10."""
    contacts, positions = [], np.zeros((steps, 3))
    for t in range(steps):
        now = []
        if t < LIFT_AT:
            now.append(Contact("obj", "table", np.array([0.0, 0.0, 0.0])))
        if t >= GRASP_AT:
            now += [Contact("leftpad", "obj", np.array([-0.02, 0.0, 0.02])),
                    Contact("obj", "rightpad", np.array([0.02, 0.0, 0.02]))]
        if t >= PLACE_AT:
            now.append(Contact("shelf", "obj", np.array([0.3, 0.1, 0.2])))
        contacts.append(now)
        positions[t] = [0.0, 0.0, 0.02] if t < LIFT_AT else [0.3, 0.1, 0.22] if t >= PLACE_AT - 1 else [0.1, 0.0, 0.1 * (t - 5)]
    return contacts, positions


def test_grasp_then_place_events():
    contacts, positions = _pick_and_place()
    events = detect_events(contacts, positions, dt=0.1, obj="obj", gripper=GRIPPER, pads=PADS)
    assert [(e.kind, e.step) for e in events] == [("grasp", GRASP_AT), ("place", PLACE_AT)]
    np.testing.assert_allclose(events[0].points, [[-0.02, 0, 0.02], [0.02, 0, 0.02]])
    np.testing.assert_allclose(events[1].points, [[0.3, 0.1, 0.2]])


def test_a_brief_touch_is_not_a_grasp_and_falls_back_to_first_contact():
    contacts = [[], [Contact("leftpad", "obj", np.array([0.0, 0.0, 0.1]))], [], []]
    events = detect_events(contacts, np.zeros((4, 3)), dt=0.1, obj="obj", gripper=GRIPPER, pads=PADS)
    assert [(e.kind, e.step) for e in events] == [("contact", 1)]
    assert detect_events([[], []], np.zeros((2, 3)), dt=0.1, obj="obj", gripper=GRIPPER, pads=PADS) == []


def test_each_frame_shows_the_next_event():
    contacts, positions = _pick_and_place()
    events = detect_events(contacts, positions, dt=0.1, obj="obj", gripper=GRIPPER, pads=PADS)
    points, mask = points_per_frame(events, len(contacts))
    assert points.shape == (14, 2, 3)
    assert mask[: GRASP_AT + 1].all() and np.allclose(points[GRASP_AT, 0], [-0.02, 0, 0.02])
    assert (mask[GRASP_AT + 1:].sum(1) == 1).all() and np.allclose(points[-1, 0], [0.3, 0.1, 0.2])
    empty_points, empty_mask = points_per_frame([], 5)
    assert empty_points.shape == (5, 1, 3) and not empty_mask.any()


def _render_point(depth):
    k = np.array([[40.0, 0, 32.0], [0, 40.0, 24.0], [0, 0, 1]])  # projections land on pixel centres
    fixed = np.tile(np.eye(4), (3, 1, 1))
    moving = fixed.copy()
    moving[:, 0, 3] = [0.0, 0.1, 0.2]  # a wrist camera sliding sideways
    points = np.tile(np.array([[[0.0, 0.0, depth]]]), (3, 1, 1))
    maps = render_labels(points, np.ones((3, 1), dtype=bool), {"head": k, "wrist": k},
                         {"head": fixed, "wrist": moving}, 48, 64, r_world=0.05)
    return maps, moving


@pytest.mark.parametrize("depth", [0.5, 2.0])
def test_rendered_labels_follow_the_moving_camera(depth):
    maps, moving = _render_point(depth)
    assert maps["head"].shape == (3, 48, 64) and maps["head"].dtype == np.float32
    for t in range(3):
        u = 32.0 + 40.0 * moving[t, 0, 3] / depth
        row, col = np.unravel_index(np.argmax(maps["wrist"][t]), (48, 64))
        assert (row, col) == (24, round(u)) and maps["wrist"][t].max() > 0.999


def test_rendered_blob_width_adapts_to_depth():
    """sigma = f r / z, clamped: 4 px at 0.5 m, the 1.5 px floor at 2 m."""
    near, far = ((_render_point(depth)[0]["head"][0] > 0.5).sum() for depth in (0.5, 2.0))
    assert near > 4 * far > 0


def test_button_press_labels_the_first_contact_with_the_button():
    """A Meta-World task without a grasp: the expert's finger pads brush the table before they
    press the button, so the object must be the body that then moves (the button), and the label
    a first-contact event drawn where the button is touched."""
    from aim.sim.collect import CollectSettings, _environment, labelled_expert_episode
    from aim.sim.metaworld_env import GRIPPER_BODIES

    pytest.importorskip("metaworld")

    settings = CollectSettings(cameras=("corner",), height=48, width=48)
    episode, events = labelled_expert_episode("button-press-v3", 0, settings)
    assert [e.kind for e in events] == ["contact"]
    event = events[0]
    # Replayed (the stored actions are float32, hence 1 mm), the gripper touches the button there.
    env = _environment("button-press-v3", settings)
    env.reset(0)
    for action in episode.actions[: event.step + 1]:
        env.step(action)
    on_button = [c.position for c in env.contacts()
                 if "button" in (c.body1, c.body2) and {c.body1, c.body2} & set(GRIPPER_BODIES)]
    assert on_button
    distances = np.linalg.norm(event.points[:, None] - np.stack(on_button)[None], axis=-1)
    assert distances.min(axis=1).max() < 1e-3
    heat = episode.value_maps["corner"]
    intrinsics, extrinsics = episode.intrinsics["corner"], episode.extrinsics["corner"]
    for frame in (0, event.step):  # the upcoming event is shown from the first frame on
        camera = extrinsics[frame] @ np.append(event.points.mean(axis=0), 1.0)
        u, v = (intrinsics @ camera[:3])[:2] / camera[2]
        row, col = round(v), round(u)
        assert 0 <= row < 48 and 0 <= col < 48
        assert heat[frame, row, col] > 0.5
        assert heat[frame].sum() < 0.05 * heat[frame].size  # a blob, not the whole view
    assert heat[-1].max() > 0.5  # after the last event, it is held
