"""The Meta-World suite: target units against the simulator, and a short recorded episode."""

import numpy as np
import pytest

from aim.eval.episode import run_episode
from aim.eval.metaworld_suite import MetaWorldSuite
from aim.eval.policy import AIMPolicy
from aim.eval.runner import EvalSettings, evaluate
from aim.model.sampler import SamplerConfig

from .helpers import save_bundle, tiny_bundle

pytest.importorskip("metaworld")

TASK = "reach-v3"
SAMPLER = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=2)


def _bundle():
    return tiny_bundle(image_size=(16, 16), cameras=["corner"], frame_stride=2, tasks=[TASK])


@pytest.mark.parametrize("action_space", ["delta", "target"])
def test_targets_follow_the_simulated_hand(action_space, rng):
    """Commanding a constant displacement (or a target 15 cm away), the tool centre travels (with
    some lag) where the predicted targets say: the targets use the simulator's action scale."""
    suite = MetaWorldSuite(action_space)
    env = suite.make(TASK, ("corner",), (16, 16))
    env.reset(0)
    direction = rng.choice([-1.0, 1.0])
    start, _ = env.ee_pose()
    if action_space == "delta":
        actions = np.tile([0.0, direction, 0.0, 0.0], (25, 1))
    else:  # the mocap target that puts the tool centre 15 cm away
        offset = suite.ee_targets(env, np.zeros((1, 4)))[0]
        actions = np.tile([*(start + [0.0, 0.15 * direction, 0.0] - offset), 0.0], (25, 1))
    targets = suite.ee_targets(env, actions)
    for action in actions:
        env.step(suite.executable(action))
    moved = env.ee_pose()[0] - start
    planned = targets[-1] - start
    assert abs(planned[1]) > 0.1 and abs(planned[[0, 2]]).max() < 1e-12
    assert moved[1] == pytest.approx(planned[1], rel=0.3)


def test_a_run_is_evaluated_in_the_action_space_of_its_data(tmp_path):
    from aim.eval.metaworld_suite import suite_for_run
    from aim.sim.metaworld_env import ACTION_SPACES

    bundle = _bundle()
    for space, names in ACTION_SPACES.items():
        bundle.action_names = list(names)
        save_bundle(bundle, tmp_path / space)
        assert suite_for_run(tmp_path / space).action_space == space
        assert suite_for_run(bundle).action_space == space


def test_a_run_is_evaluated_rendering_as_its_data_was_rendered(tmp_path):
    from aim.eval.metaworld_suite import suite_for_run

    bundle = _bundle()
    assert suite_for_run(bundle).multisample is None  # data that kept the simulator's anti-aliasing
    bundle.render = {"multisample": 0}
    save_bundle(bundle, tmp_path / "run")
    suite = suite_for_run(tmp_path / "run")
    assert suite.multisample == 0 and suite_for_run(bundle).multisample == 0
    assert suite.make(TASK, ("corner",), (16, 16)).multisample == 0
    from aim.runtime.bundle import load_bundle

    assert load_bundle(tmp_path / "run").render == {"multisample": 0}


def test_short_episode_with_video_leaves_the_episode_unchanged(tmp_path):
    from PIL import Image

    bundle, suite = _bundle(), MetaWorldSuite()
    env = suite.make(TASK, tuple(bundle.cameras), (16, 16))
    plain = run_episode(AIMPolicy(bundle, SAMPLER), suite, TASK, seed=1_000_000, max_steps=6)
    pose = env.ee_pose()[0]
    result = run_episode(AIMPolicy(bundle, SAMPLER), suite, TASK, seed=1_000_000, max_steps=6,
                         video_path=tmp_path / "r.gif", video_size=256, video_every=2)
    assert result.steps == 6 and not result.success and len(result.chunk_latencies_s) == 2
    assert (plain.steps, plain.success) == (result.steps, result.success)
    np.testing.assert_array_equal(env.ee_pose()[0], pose)  # rendering for people moved nothing
    gif = Image.open(result.video)
    assert gif.n_frames == 1 + 6 // 2
    assert gif.size[0] >= 256 and gif.size[1] >= 256


def test_views_for_people_show_what_the_model_sees_larger():
    """The render for people comes from the same camera: shrunk back to the model's 16 pixels it
    matches the model's own view (up to anti-aliasing); its intrinsics are those of its size."""
    suite = MetaWorldSuite()
    env = suite.make(TASK, ("corner",), (16, 16))
    env.reset(3)
    small = env.render()["corner"].astype(float)
    view = suite.view(env, 256, 256)
    large = view.images["corner"]
    assert large.shape == (256, 256, 3) and large.dtype == np.uint8
    shrunk = large.astype(float).reshape(16, 16, 16, 16, 3).mean(axis=(1, 3))
    assert np.abs(shrunk - small).mean() < 12, np.abs(shrunk - small).mean()
    np.testing.assert_allclose(view.intrinsics["corner"], env.intrinsics()["corner"] * [[16], [16], [1]] +
                               [[0, 0, 7.5], [0, 0, 7.5], [0, 0, 0]])
    np.testing.assert_array_equal(view.extrinsics["corner"], env.extrinsics()["corner"])


def test_same_seeds_give_the_same_episodes_in_one_process(tmp_path):
    settings = EvalSettings(tasks=(TASK,), episodes=2, sampler=SAMPLER, max_steps=4, videos_per_task=0)
    runs = [evaluate(_bundle(), settings, tmp_path, MetaWorldSuite(), progress=False) for _ in range(2)]
    assert [(r.seed, r.success, r.steps) for r in runs[0]] == [(r.seed, r.success, r.steps) for r in runs[1]]


def test_a_seed_gives_the_same_initial_state_in_every_environment():
    from aim.sim.metaworld_env import MetaWorldEnv

    starts = [MetaWorldEnv(TASK, ("corner",), 16, 16).reset(1_000_000) for _ in range(2)]
    np.testing.assert_array_equal(starts[0], starts[1])


def test_held_out_seeds_start_from_states_no_training_seed_starts_from():
    from aim.eval.seeds import eval_seeds

    env = MetaWorldSuite().make(TASK, ("corner",), (16, 16))
    training = [env.reset(seed) for seed in range(3)]
    for held_out in eval_seeds(3):
        start = env.reset(held_out)
        assert all(np.abs(start - t).max() > 1e-6 for t in training)


def test_intent_tasks_are_evaluated_like_meta_worlds_own(tmp_path):
    """An intent task id (aim.sim.intent_scenes) builds its scene and instruction in the suite and runs."""
    task = "twin-drawer-close-right"
    bundle = tiny_bundle(image_size=(16, 16), cameras=["topview"], frame_stride=2, tasks=[task])
    assert MetaWorldSuite().instruction(task) == "close the right drawer"
    settings = EvalSettings(tasks=(task,), episodes=2, sampler=SAMPLER, max_steps=4, videos_per_task=0)
    results = evaluate(bundle, settings, tmp_path, MetaWorldSuite(), progress=False)
    assert [(r.task, r.steps, r.success) for r in results] == [(task, 4, False)] * 2
