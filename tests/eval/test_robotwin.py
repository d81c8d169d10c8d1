"""The RoboTwin 2.0 adapter, driven as RoboTwin's eval_policy.py drives a policy folder: a
recorded observation in RoboTwin's documented format, and a TASK_ENV that records take_action."""

import importlib
import stat
import sys

import numpy as np
import pytest
import torch
import yaml

from aim.eval.policy import AIMPolicy
from aim.eval.robotwin import RoboTwinPolicy, robotwin_observation, write_policy_folder
from aim.model.sampler import SamplerConfig

from .helpers import tiny_bundle

CAMERAS = ("head_camera", "front_camera", "left_camera", "right_camera")
TASK = "reach"  # one of the tiny bundle's tasks
INSTRUCTION = "move the gripper over to the marker"  # what a per-task embedding cannot read
SAMPLER = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=2)


def recorded_observation(rng: np.random.Generator, image_size=(240, 320)) -> dict:
    """One step of RoboTwin's observation dict (aim.data.robotwin's docstring), aloha-agilex sizes."""
    cameras = {}
    for name in CAMERAS:
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        cameras[name] = {
            "rgb": rng.integers(0, 256, (*image_size, 3), dtype=np.uint8),
            "intrinsic_cv": np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]),
            "extrinsic_cv": np.concatenate([rotation, rng.normal(size=(3, 1))], axis=1),
            "cam2world_gl": np.eye(4),
        }
    left, right = rng.uniform(-1, 1, 6), rng.uniform(-1, 1, 6)
    return {
        "observation": cameras,
        "joint_action": {"left_arm": left, "left_gripper": 1.0, "right_arm": right, "right_gripper": 0.0,
                         "vector": np.concatenate([left, [1.0], right, [0.0]])},
        "endpose": {"left_endpose": np.r_[rng.normal(size=3), 1, 0, 0, 0], "left_gripper": 1.0,
                    "right_endpose": np.r_[rng.normal(size=3), 1, 0, 0, 0], "right_gripper": 0.0},
    }


class RecordingTaskEnv:
    """RoboTwin's TASK_ENV as the policy sees it: take_action records every call, and counts
    and acts only until the step limit or success, as RoboTwin's does."""

    def __init__(self, step_lim: int, succeed_at: int | None = None, instruction: str = INSTRUCTION,
                 image_size=(240, 320)):
        self.step_lim, self.succeed_at, self.instruction = step_lim, succeed_at, instruction
        self.take_action_cnt, self.eval_success = 0, False
        self.actions, self.get_obs_calls = [], 0
        # Seeded from torch's generator, which the test session seeds per test.
        self.rng, self.image_size = np.random.default_rng(int(torch.randint(2**31, ()))), image_size
        self.first = recorded_observation(self.rng, image_size)

    def get_instruction(self) -> str:
        return self.instruction

    def get_obs(self) -> dict:
        self.get_obs_calls += 1
        return self.first if self.get_obs_calls == 1 else recorded_observation(self.rng, self.image_size)

    def take_action(self, action, action_type="qpos"):
        self.actions.append((np.array(action), action_type))  # every call, ignored ones too
        if self.take_action_cnt == self.step_lim or self.eval_success:
            return
        self.take_action_cnt += 1
        self.eval_success = self.take_action_cnt == self.succeed_at


def run_episode(module, model, task_env):
    """The loop of RoboTwin's eval_policy.eval_policy for one episode."""
    module.reset_model(model)
    calls = 0
    while task_env.take_action_cnt < task_env.step_lim:
        module.eval(task_env, model, task_env.get_obs())
        calls += 1
        if task_env.eval_success:
            break
    return calls


@pytest.fixture
def policy_module(tmp_path, monkeypatch):
    """The generated policy/AIM folder imported as RoboTwin imports it (policy/ on sys.path)."""
    (tmp_path / "policy").mkdir()
    folder = write_policy_folder(tmp_path, tmp_path / "run", sampler_config=SAMPLER, device="cpu")
    monkeypatch.syspath_prepend(str(tmp_path / "policy"))
    module = importlib.import_module("AIM")
    yield module, folder
    for name in [n for n in sys.modules if n == "AIM" or n.startswith("AIM.")]:
        del sys.modules[name]


def _bundle(action_channels: int, gripper_dims: tuple[int, int]):
    mean, std = np.zeros(action_channels), np.ones(action_channels)
    mean[list(gripper_dims)], std[list(gripper_dims)] = 0.5, 3.0  # grippers often leave [0, 1]
    return tiny_bundle(image_size=(240, 320), view_size=(12, 16), action_channels=action_channels,
                       action_mean=mean, action_std=std)


def test_policy_folder_runs_a_qpos_episode(policy_module, monkeypatch, tmp_path):
    module, folder = policy_module
    bundle = _bundle(14, (6, 13))
    loaded = []
    monkeypatch.setattr("aim.runtime.bundle.load_bundle", lambda path, device: loaded.append((path, device)) or bundle)
    usr_args = yaml.safe_load((folder / "deploy_policy.yml").read_text())
    usr_args.update(task_name=TASK, task_config="demo_clean", ckpt_setting="v1", seed=0,
                    left_arm_dim=6, right_arm_dim=6)
    model = module.get_model(usr_args)
    assert loaded == [(str((tmp_path / "run").resolve()), "cpu")]

    task_env = RecordingTaskEnv(step_lim=10)
    calls = run_episode(module, model, task_env)
    per_chunk = bundle.structure.actions_per_chunk
    assert len(task_env.actions) == 10 and calls == -(-10 // per_chunk)  # one take_action per step, no more
    assert all(t == "qpos" and a.shape == (14,) for a, t in task_env.actions)
    # The harness's own get_obs per eval call, plus the adapter's every frame_stride steps.
    assert task_env.get_obs_calls == calls + 10 // bundle.frame_stride

    # The first chunk, in order, is what the policy predicts from the recorded first observation,
    # with RoboTwin's gripper range [0 closed, 1 open] enforced and nothing else touched.
    reference = AIMPolicy(bundle, SAMPLER, seed=0)
    reference.reset(INSTRUCTION, robotwin_observation(task_env.first), 0, task=TASK)
    predicted = reference.predict().actions
    executed = np.stack([a for a, _ in task_env.actions[:per_chunk]])
    grippers = [6, 13]
    np.testing.assert_allclose(executed[:, grippers], np.clip(predicted[:, grippers], 0, 1), atol=1e-6)
    np.testing.assert_allclose(np.delete(executed, grippers, 1), np.delete(predicted, grippers, 1), atol=1e-6)
    assert ((predicted[:, grippers] < 0) | (predicted[:, grippers] > 1)).any()  # the clip was exercised
    assert (np.abs(np.delete(predicted, grippers, 1)) > 1).any()  # joints are not clipped


def test_ee_actions_and_early_success(monkeypatch):
    import aim.eval.robotwin as adapter

    bundle = _bundle(16, (7, 15))
    monkeypatch.setattr("aim.runtime.bundle.load_bundle", lambda path, device: bundle)
    model = adapter.get_model({"run_dir": "run", "seed": 3, "video_steps": 2, "action_steps": 2, "task_name": TASK})
    assert model.action_type == "ee"
    task_env = RecordingTaskEnv(step_lim=50, succeed_at=3)
    assert run_episode(adapter, model, task_env) == 1
    assert len(task_env.actions) == 3
    actions = np.stack([a for a, t in task_env.actions if t == "ee"])
    assert actions.shape == (3, 16)
    for quaternion in (slice(3, 7), slice(11, 15)):
        np.testing.assert_allclose(np.linalg.norm(actions[:, quaternion], axis=1), 1.0, atol=1e-6)
    assert actions[:, [7, 15]].min() >= 0 and actions[:, [7, 15]].max() <= 1

    # A new episode starts a new rollout from its own first observation.
    second = RecordingTaskEnv(step_lim=2)
    run_episode(adapter, model, second)
    assert len(second.actions) == 2 and model.episodes == 2


def test_policy_folder_files(policy_module):
    module, folder = policy_module
    assert {p.name for p in folder.iterdir()} >= {"__init__.py", "deploy_policy.py", "deploy_policy.yml", "eval.sh"}
    for name in ("get_model", "reset_model", "eval"):
        assert callable(getattr(module, name))
    settings = yaml.safe_load((folder / "deploy_policy.yml").read_text())
    assert {"task_name", "policy_name", "task_config", "ckpt_setting", "seed", "instruction_type"} <= set(settings)
    assert settings["policy_name"] == "AIM" and settings["video_steps"] == SAMPLER.video_steps
    script = folder / "eval.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert "script/eval_policy.py --config policy/${policy_name}/deploy_policy.yml" in text and "policy_name=AIM" in text


def test_observation_mapping_and_errors(rng):
    observation = recorded_observation(rng)
    mapped = robotwin_observation(observation)
    assert set(mapped.images) == {"head", "left_wrist", "right_wrist"}
    np.testing.assert_array_equal(mapped.images["left_wrist"], observation["observation"]["left_camera"]["rgb"])
    e = mapped.extrinsics["head"]
    np.testing.assert_array_equal(e[:3], observation["observation"]["head_camera"]["extrinsic_cv"])
    np.testing.assert_array_equal(e[3], [0, 0, 0, 1])
    del observation["observation"]["right_camera"]["intrinsic_cv"]
    with pytest.raises(KeyError, match="observation/right_camera/intrinsic_cv"):
        robotwin_observation(observation)
    with pytest.raises(ValueError, match="RoboTwin takes"):
        RoboTwinPolicy(tiny_bundle(action_channels=4), task=TASK)
    with pytest.raises(ValueError, match="no RoboTwin camera maps to"):
        RoboTwinPolicy(tiny_bundle(action_channels=14, cameras=["head", "left_wrist", "top"]), task=TASK)
    with pytest.raises(ValueError, match=r"trained on tasks \['push', 'reach'\], not 'stack_blocks'"):
        RoboTwinPolicy(tiny_bundle(action_channels=14), task="stack_blocks")
