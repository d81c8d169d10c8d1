"""RoboTwin end to end, as the README's recipe runs it: episodes in RoboTwin's layout -> converted
with value maps (qpos, and ee relative to the first pose) -> the model with the value stream trains
a few steps -> the written policy folder acts through two episodes of a stand-in of RoboTwin's
harness loop under an unseen instruction."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch
import yaml

from aim.data import ee_poses
from aim.data.robotwin import RoboTwinSettings, convert_robotwin
from aim.eval.policy import AIMPolicy
from aim.eval.robotwin import (
    RoboTwinPolicy,
    endpose_vector,
    robotwin_observation,
    write_policy_folder,
)
from aim.model.sampler import SamplerConfig
from aim.model.text_encoders import TextEncoder
from aim.runtime.bundle import load_bundle
from aim.runtime.monitor import read_metrics
from aim.train import load_config, train
from tests.data.robotwin_helpers import HEIGHT, UNSEEN, WIDTH, write_task

from .helpers import tiny_bundle
from .test_robotwin import RecordingTaskEnv, run_episode

SAMPLER = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=2)
TASK = "place_block"  # write_task's task folder
STEP_LIMIT = 11  # not a multiple of a chunk: the last chunk is cut by the limit


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained run per action space, from the same RoboTwin episodes."""
    root = tmp_path_factory.mktemp("robotwin")
    source, _ = write_task(root / "raw", lengths=(18, 20, 16))
    spaces = {"qpos": RoboTwinSettings(), "ee": RoboTwinSettings(action_space="ee", relative_ee=True)}
    out = {}
    for name, settings in spaces.items():
        report = convert_robotwin(source, root / f"data-{name}", fps=25, settings=settings)
        assert report.labels == {"gripper": [0, 1, 2]}
        # The README's preset, at the test episodes' 24 x 32 views (RoboTwin's are 240 x 320).
        config = load_config("tiny-robotwin", overrides=[
            f"data.root={root / f'data-{name}'}", "data.view_size=[24, 32]", "train.steps=3", "train.batch_size=2",
            "train.micro_batch_size=2", "schedule.warmup_steps=1", "checkpoint.every=3", "log.every=1",
            "log.sample_every=0", "log.progress=false"])
        train(config, root / f"run-{name}")
        out[name] = root / f"run-{name}"
    return out


def test_the_value_stream_trains_on_converted_robotwin_data(runs):
    for run in runs.values():
        metrics = read_metrics(run)
        assert len(metrics) == 3
        assert all(np.isfinite(m["loss/value"]) and m["loss/value"] > 0 for m in metrics)
        bundle = load_bundle(run)
        assert bundle.model.config.value_stream and bundle.text_encoder.tasks == {TASK: 0}


def _endposed(observation: dict, rng: np.random.Generator) -> dict:
    """RoboTwin's observation with an ee pose per arm (unit quaternions), as its harness gives it."""
    for arm in ("left", "right"):
        q = rng.normal(size=4)
        observation["endpose"][f"{arm}_endpose"] = np.r_[rng.normal(scale=0.2, size=3), q / np.linalg.norm(q)]
    return observation


class HarnessEnv(RecordingTaskEnv):
    """The recording TASK_ENV at the converted data's image size, with end poses in its observations."""

    def __init__(self, step_lim: int, instruction: str):
        super().__init__(step_lim, instruction=instruction, image_size=(HEIGHT, WIDTH))
        self.first = _endposed(self.first, self.rng)

    def get_obs(self) -> dict:
        observation = super().get_obs()
        return observation if observation is self.first else _endposed(observation, self.rng)


@pytest.fixture
def policy_folder(tmp_path, monkeypatch):
    """policy/AIM/ of a RoboTwin checkout, imported as RoboTwin's eval_policy.py imports it."""
    (tmp_path / "policy").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "policy"))

    def make(run):
        folder = write_policy_folder(tmp_path, run, sampler_config=SAMPLER, device="cpu")
        module = importlib.import_module("AIM")
        return module, yaml.safe_load((folder / "deploy_policy.yml").read_text())

    yield make
    for name in [n for n in sys.modules if n == "AIM" or n.startswith("AIM.")]:
        del sys.modules[name]


@pytest.mark.parametrize("space", ["qpos", "ee"])
def test_the_policy_folder_acts_through_two_episodes_under_an_unseen_instruction(runs, policy_folder, space, caplog):
    module, usr_args = policy_folder(runs[space])
    assert usr_args["instruction_type"] == "unseen"
    usr_args.update(task_name=TASK, task_config="demo_clean", ckpt_setting="ci", seed=0, left_arm_dim=6,
                    right_arm_dim=6)
    model = module.get_model(usr_args)
    assert model.action_type == space and model.relative == (space == "ee")
    with caplog.at_level("INFO", logger="aim"):
        for episode, instruction in enumerate(UNSEEN):
            task_env = HarnessEnv(STEP_LIMIT, instruction)
            run_episode(module, model, task_env)
            assert len(task_env.actions) == STEP_LIMIT
            actions = np.stack([a for a, t in task_env.actions])
            assert all(t == space for _, t in task_env.actions) and np.isfinite(actions).all()
            if space == "ee":
                _check_ee_episode(model, task_env, actions, episode)
    assert model.episodes == 2
    assert f"conditions on its embedding of task {TASK!r}" in caplog.text and UNSEEN[0] in caplog.text


def _check_ee_episode(model: RoboTwinPolicy, task_env: HarnessEnv, actions: np.ndarray, episode: int) -> None:
    """The first chunk is the model's prediction made relative to the episode's first end pose, moved
    back into the world frame: unit quaternions, grippers in RoboTwin's range, poses near the start."""
    for quaternion in (slice(3, 7), slice(11, 15)):
        np.testing.assert_allclose(np.linalg.norm(actions[:, quaternion], axis=1), 1.0, atol=1e-6)
    assert actions[:, [7, 15]].min() >= 0 and actions[:, [7, 15]].max() <= 1
    reference = AIMPolicy(model.policy.bundle, SAMPLER, seed=0)
    first = task_env.first
    reference.reset(UNSEEN[episode], robotwin_observation(first, model.cameras), episode, task=TASK)
    predicted = reference.predict().actions
    world = ee_poses.from_first_pose_frame(predicted, endpose_vector(first))
    world[:, [7, 15]] = world[:, [7, 15]].clip(0, 1)
    for quaternion in (slice(3, 7), slice(11, 15)):
        world[:, quaternion] /= np.linalg.norm(world[:, quaternion], axis=1, keepdims=True)
    chunk = model.policy.actions_per_chunk
    np.testing.assert_allclose(actions[:chunk], world, atol=1e-5)


class RecordingTextEncoder(TextEncoder):
    """A text encoder (what umT5 is to the model) that records the prompts it reads."""

    def __init__(self, dim: int):
        self.dim, self.prompts = dim, []

    def encode(self, prompts):
        self.prompts += list(prompts)
        generator = torch.Generator().manual_seed(len(prompts))
        return torch.randn(len(prompts), 3, self.dim, generator=generator)


def test_a_model_with_a_text_encoder_reads_the_harness_instruction():
    bundle = tiny_bundle(image_size=(HEIGHT, WIDTH), view_size=(12, 16), action_channels=14)
    bundle.text_encoder = RecordingTextEncoder(bundle.model.config.text_dim)
    model = RoboTwinPolicy(bundle, SAMPLER, task="any task: a text encoder does not need one")
    assert model.task is None
    task_env = RecordingTaskEnv(5, instruction=UNSEEN[1], image_size=(HEIGHT, WIDTH))
    run_episode(sys.modules[RoboTwinPolicy.__module__], model, task_env)
    assert bundle.text_encoder.prompts == [UNSEEN[1]] and len(task_env.actions) == 5
