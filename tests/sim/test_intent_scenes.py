"""Intent scenes: two identical objects, the same scenes for both goals, the expert and the success
test on the chosen object only, value-map labels on it, and ``aim collect`` taking the task ids."""

from __future__ import annotations

import numpy as np
import pytest

# Before metaworld is imported anywhere: this import (through aim.sim.metaworld_env) selects MuJoCo's EGL backend.
from aim.sim.collect import CollectSettings, collect, labelled_expert_episode
from aim.sim import intent_scenes
from aim.sim.intent_scenes import DECOY, INTENT_TASKS, SCENES
from aim.sim.metaworld_env import MetaWorldEnv, instruction

pytest.importorskip("metaworld")

CAMERAS = ("topview", "corner3")


def _pair(scene: str) -> tuple[MetaWorldEnv, MetaWorldEnv]:
    return tuple(MetaWorldEnv(f"twin-{scene}-{goal}", CAMERAS, 32, 32, multisample=0) for goal in ("left", "right"))


@pytest.mark.parametrize("scene", list(SCENES))
def test_both_goals_see_the_same_scene_and_the_objects_look_alike(scene, rng):
    """From the same seed the left and right tasks start from the same views (nothing but the task
    id tells them apart); the two objects have the same geoms, colours and joint state, one on each side."""
    left, right = _pair(scene)
    seed = int(rng.integers(0, 1000))
    left.reset(seed), right.reset(seed)
    for camera in CAMERAS:
        np.testing.assert_array_equal(left.render()[camera], right.render()[camera])
    root = SCENES[scene].root
    model, data = left._sim.model, left._sim.data
    chosen, decoy = model.body(root).id, model.body(DECOY + root).id
    assert data.body(root).xpos[0] < 0 < data.body(DECOY + root).xpos[0]  # left goal: the chosen one on the left
    geoms = [np.nonzero(model.geom_bodyid == b)[0] for b in range(model.nbody)]
    subtree = {b: [c for c in range(model.nbody) if _descends(model, c, b)] for b in (chosen, decoy)}
    first, second = (np.concatenate([geoms[b] for b in subtree[r]]) for r in (chosen, decoy))
    assert len(first) == len(second) > 0
    for field in ("geom_type", "geom_size", "geom_rgba", "geom_pos"):
        np.testing.assert_array_equal(getattr(model, field)[first], getattr(model, field)[second])
    np.testing.assert_array_equal(model.mat_rgba[model.geom_matid[first]], model.mat_rgba[model.geom_matid[second]])
    qpos_chosen, qpos_decoy = left._sim._joint_pairs
    np.testing.assert_array_equal(data.qpos[qpos_chosen], data.qpos[qpos_decoy])
    assert (model.site_rgba[:, 3] == 0).all()  # goal markers would show which object counts


def _descends(model, body: int, root: int) -> bool:
    while body > 0 and body != root:
        body = model.body_parentid[body]
    return body == root


@pytest.mark.parametrize("scene", list(SCENES))
def test_only_the_chosen_object_succeeds(scene, rng):
    """The expert of each goal succeeds in its own task; replayed in the other goal's task (same
    scene), its actions work the other object and do not succeed."""
    left, right = _pair(scene)
    seed = int(rng.integers(0, 1000))
    for own, other in ((left, right), (right, left)):
        observation = own.reset(seed)
        expert, actions = own.expert(), []
        for _ in range(150):
            actions.append(expert(observation))
            result = own.step(actions[-1])
            observation = result.observation
            if result.success:
                break
        assert result.success, f"{own.task} expert failed from seed {seed}"
        other.reset(seed)
        assert not any(other.step(a).success for a in actions)


@pytest.mark.parametrize("task", INTENT_TASKS)
def test_value_map_labels_mark_the_chosen_object(task, rng):
    scene, goal = intent_scenes.scene_of(task)
    seed = int(rng.integers(0, 1000))
    settings = CollectSettings(cameras=CAMERAS, height=32, width=32, frame_every=4, multisample=0)
    episode, events = labelled_expert_episode(task, seed, settings)
    assert events and episode.instruction == instruction(task) == scene.instruction.format(goal=goal)
    x = np.concatenate([e.points for e in events])[:, 0]
    assert (x < 0).all() if goal == "left" else (x > 0).all()
    topview = episode.value_maps["topview"][0]
    columns = np.nonzero(topview > 0.5 * topview.max())[1]
    # The chosen object's half of the top view holds the label (topview shows world -x on the image's left).
    assert (columns < 16).all() if goal == "left" else (columns >= 16).all()


def test_collect_takes_intent_task_ids(tmp_path):
    from aim.data import DatasetReader

    tasks = [t for t in INTENT_TASKS if "handle-press" in t]
    report = collect(tmp_path / "ds", tasks, [0], CollectSettings(cameras=CAMERAS, height=32, width=32,
                                                                   frame_every=4, multisample=0), progress=False)
    assert (report.written, report.failed) == (2, 0)
    reader = DatasetReader(tmp_path / "ds")
    assert list(reader.episodes["task_name"]) == tasks
    assert [reader.instruction(e) for e in range(2)] == ["press the left handle", "press the right handle"]


def test_unknown_intent_tasks_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown intent task 'twin-handle-press-middle'.*twin-drawer-close-left"):
        MetaWorldEnv("twin-handle-press-middle", CAMERAS, 16, 16)
    assert intent_scenes.expert_task("drawer-close-v3") == "drawer-close-v3"
    assert intent_scenes.expert_task("twin-drawer-close-right") == "drawer-close-v3"
