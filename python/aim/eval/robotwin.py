"""RoboTwin 2.0 policy adapter: evaluate an ``aim`` run inside RoboTwin's own harness.

RoboTwin's ``script/eval_policy.py`` (branch ``stable_2.0``) imports ``policy/<Name>/`` and calls
``get_model(usr_args)`` once, ``reset_model(model)`` before each episode, and
``eval(TASK_ENV, model, observation)`` until the step limit or success.
:func:`write_policy_folder` writes that folder (``__init__.py``, ``deploy_policy.py``,
``deploy_policy.yml``, ``eval.sh``); its ``deploy_policy.py`` re-exports the functions below.

One ``eval`` call runs one chunk: predict it, call ``TASK_ENV.take_action`` once per action,
fetch an observation every ``frame_stride`` steps, and hand the frames and executed actions back
to the policy. It stops early when RoboTwin reports success or the step limit (its
``take_action`` ignores calls by then).

Observations: ``observation/<camera>/{rgb (240, 320, 3) uint8, intrinsic_cv (3, 3),
extrinsic_cv (3, 4) world-to-camera, OpenCV axes}``; cameras are renamed as
``aim.data.robotwin`` renames them for training (``head_camera`` -> ``head``, ...).

Actions are in the space the training data recorded (the bundle's ``action_space``; for bundles
without one, the width decides: 14 -> ``qpos``, 16 -> ``ee``): ``qpos`` (each arm's joints and
gripper, left first, the ``joint_action/vector`` converted datasets train on) or ``ee`` (per arm
x, y, z, qw, qx, qy, qz, gripper in the world frame; a model trained on poses relative to the
episode's first pose has that pose, read from the first observation's ``endpose``, added back).
Grippers are clipped to RoboTwin's [0 closed, 1 open] and ``ee`` quaternions normalised; the
model observes the actions as executed, in its own space.

Instructions: a model with a text encoder reads the harness's ``get_instruction()`` (an unseen
paraphrase under RoboTwin's standard evaluation). A model conditioned on a per-task embedding
cannot read text; it conditions on the task the harness names (``usr_args["task_name"]``), checked
at :func:`get_model` against the tasks it was trained on, and logs that it does.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import numpy as np
import torch

from aim.data import ee_poses
from aim.data.robotwin import ARMS, DEFAULT_CAMERAS, FIRST_POSE
from aim.errors import NotFoundError, UsageError
from aim.eval.observation import Observation
from aim.eval.policy import AIMPolicy
from aim.model.sampler import SamplerConfig
from aim.model.text_encoders import TaskEmbedding

ACTION_TYPES = {14: "qpos", 16: "ee"}
EE_GRIPPERS = (7, 15)  # each arm's gripper in an ee action, left then right
log = logging.getLogger("aim")


def robotwin_observation(observation: dict, cameras: dict[str, str] = DEFAULT_CAMERAS) -> Observation:
    """RoboTwin's observation dict as an :class:`Observation` with ``cameras`` renamed
    (RoboTwin name -> the name the model was trained with)."""
    images, intrinsics, extrinsics = {}, {}, {}
    for source, name in cameras.items():
        try:
            camera = observation["observation"][source]
            rgb, k, e = camera["rgb"], camera["intrinsic_cv"], camera["extrinsic_cv"]
        except KeyError as err:
            raise KeyError(f"RoboTwin observation has no observation/{source}/{err.args[0]}") from err
        world_to_camera = np.eye(4)
        world_to_camera[:3] = np.asarray(e, dtype=np.float64).reshape(3, 4)
        images[name] = np.asarray(rgb)
        intrinsics[name] = np.asarray(k, dtype=np.float64)
        extrinsics[name] = world_to_camera
    return Observation(images, intrinsics, extrinsics)


class RoboTwinPolicy:
    """An :class:`AIMPolicy` speaking RoboTwin's deploy-policy protocol (one episode at a time).

    ``task`` is the harness's task name: what a model with a per-task embedding conditions on (it
    must be one of the model's tasks); a model with a text encoder reads the instruction instead.
    """

    def __init__(self, bundle, sampler_config: SamplerConfig = SamplerConfig(), seed: int = 0,
                 cameras: dict[str, str] = DEFAULT_CAMERAS, task: str | None = None) -> None:
        width = bundle.model.config.action_channels
        self.action_type = bundle.action_space.get("kind") or ACTION_TYPES.get(width)
        if self.action_type not in ("qpos", "ee") or (self.action_type == "ee" and width != 16):
            raise UsageError(f"RoboTwinPolicy: the model's actions are {width}-d "
                             f"{self.action_type or 'unnamed'}; RoboTwin takes 16-d ee or qpos (14-d on aloha-agilex)")
        self.relative = bundle.action_space.get("frame") == FIRST_POSE
        missing = set(bundle.cameras) - set(cameras.values())
        if missing:
            raise UsageError(f"RoboTwinPolicy: the model was trained on cameras {sorted(missing)} that no RoboTwin "
                             f"camera maps to (mapping: {cameras})")
        self.task = _conditioning_task(bundle.text_encoder, task)
        self.policy = AIMPolicy(bundle, sampler_config, seed)
        self.cameras = {source: name for source, name in cameras.items() if name in bundle.cameras}
        self.grippers = EE_GRIPPERS if self.action_type == "ee" else _qpos_grippers(bundle.action_names, width)
        self.episodes = 0
        self.started = False
        self.first_pose: np.ndarray | None = None

    def reset(self) -> None:
        """Before each episode: the next :meth:`step` starts a new rollout."""
        self.started = False

    def step(self, task_env, observation: dict) -> None:
        """One chunk in ``task_env`` (RoboTwin's ``eval``)."""
        policy = self.policy
        if not self.started:
            instruction = task_env.get_instruction()
            if self.task is not None and self.episodes == 0:
                log.info("aim: the model conditions on its embedding of task %r (it cannot read text; "
                         "the harness's instruction %r is not used)", self.task, instruction)
            self.first_pose = endpose_vector(observation) if self.relative else None
            policy.reset(instruction, robotwin_observation(observation, self.cameras), self.episodes, task=self.task)
            self.episodes += 1
            self.started = True
        actions = self.robotwin_actions(policy.predict().actions)
        frames, executed = [], []
        for i, action in enumerate(actions):
            if task_env.eval_success or task_env.take_action_cnt >= task_env.step_lim:
                return
            task_env.take_action(action, action_type=self.action_type)
            executed.append(action)
            if (i + 1) % policy.frame_stride == 0:
                frames.append(robotwin_observation(task_env.get_obs(), self.cameras))
        policy.observe(frames, self.model_actions(np.stack(executed)))

    def robotwin_actions(self, actions: np.ndarray) -> np.ndarray:
        """(N, A) model actions as RoboTwin takes them: world-frame poses, grippers in [0, 1], unit
        quaternions."""
        out = actions.copy()
        if self.relative:
            out = ee_poses.from_first_pose_frame(out, self.first_pose)
        out[:, list(self.grippers)] = np.clip(out[:, list(self.grippers)], 0.0, 1.0)
        if self.action_type == "ee":
            for arm in range(len(ARMS)):
                quaternion = slice(arm * ee_poses.ARM_WIDTH + 3, arm * ee_poses.ARM_WIDTH + 7)
                out[:, quaternion] /= np.linalg.norm(out[:, quaternion], axis=1, keepdims=True).clip(min=1e-8)
        return out

    def model_actions(self, actions: np.ndarray) -> np.ndarray:
        """Executed RoboTwin actions in the model's space (the inverse of :meth:`robotwin_actions`)."""
        return ee_poses.to_first_pose_frame(actions, self.first_pose) if self.relative else actions


def endpose_vector(observation: dict) -> np.ndarray:
    """(16,) ee vector (per arm x, y, z, qw, qx, qy, qz, gripper) of a RoboTwin observation's ``endpose``."""
    try:
        endpose = observation["endpose"]
        parts = [np.r_[np.asarray(endpose[f"{arm}_endpose"], dtype=np.float64), float(endpose[f"{arm}_gripper"])]
                 for arm in ARMS]
    except KeyError as err:
        raise KeyError(f"RoboTwin observation has no endpose/{err.args[0]}: a model trained on poses relative to "
                       "the first pose needs the endpose observation") from err
    return np.concatenate(parts)


def _conditioning_task(text_encoder, task: str | None) -> str | None:
    """The task a per-task embedding conditions on (None for a text encoder); unknown ones are refused."""
    if not isinstance(text_encoder, TaskEmbedding):
        return None
    known = sorted(text_encoder.tasks)
    if text_encoder.keyed_by == "instruction":
        raise UsageError(f"AIM: this model's task embedding is keyed by instruction texts ({known}), so it cannot "
                         "follow RoboTwin's instructions; retrain it with this version of aim (it keys tasks by name)")
    if task not in text_encoder.tasks:
        raise UsageError(f"AIM: the model was trained on tasks {known}, not {task!r}; evaluate it on one of those "
                         "(eval.sh <task_name> ...) or train it on this task")
    return task


def _qpos_grippers(names: list[str] | None, width: int) -> tuple[int, ...]:
    """Indices of the grippers in a qpos action: named, else the last channel of each arm's half."""
    if names:
        return tuple(i for i, name in enumerate(names) if name.endswith("gripper"))
    return (width // 2 - 1, width - 1)


# ---------------------------------------------------------------------------------------------
# RoboTwin's deploy-policy functions (named as its harness looks them up).

def get_model(usr_args: dict) -> RoboTwinPolicy:
    """``usr_args``: the policy folder's deploy_policy.yml with RoboTwin's overrides; ours are
    ``run_dir`` (required), ``device``, ``video_steps``, ``action_steps``, ``guidance_scale``, ``seed``."""
    from aim.runtime.bundle import load_bundle

    if not usr_args.get("run_dir"):
        raise UsageError("AIM deploy_policy.yml: set run_dir to the aim run (or checkpoint) directory")
    device = usr_args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    defaults = SamplerConfig()
    sampler = SamplerConfig(
        video_steps=int(usr_args.get("video_steps") or defaults.video_steps),
        guidance_scale=float(usr_args.get("guidance_scale") or defaults.guidance_scale),
        action_steps=int(usr_args.get("action_steps") or defaults.action_steps),
    )
    bundle = load_bundle(usr_args["run_dir"], device)
    model = RoboTwinPolicy(bundle, sampler, int(usr_args.get("seed") or 0), task=usr_args.get("task_name"))
    arms = (usr_args.get("left_arm_dim"), usr_args.get("right_arm_dim"))
    width = bundle.model.config.action_channels
    if model.action_type == "qpos" and None not in arms and sum(arms) + 2 != width:
        raise UsageError(f"AIM: the model acts with {width}-d qpos, the robot's arms have {arms} joints")
    return model


def reset_model(model: RoboTwinPolicy) -> None:
    model.reset()


def eval(TASK_ENV, model: RoboTwinPolicy, observation: dict) -> None:  # noqa: A001 (RoboTwin's name)
    model.step(TASK_ENV, observation)


# ---------------------------------------------------------------------------------------------
# The policy folder.

_INIT = '"""aim (AIM world-action model) as a RoboTwin policy."""\n\nfrom .deploy_policy import eval, get_model, reset_model\n'
_DEPLOY = '"""RoboTwin deploy-policy functions, served by aim.eval.robotwin."""\n\nfrom aim.eval.robotwin import eval, get_model, reset_model\n'
_EVAL_SH = """#!/bin/bash
# Evaluate an aim run in RoboTwin: bash eval.sh <task_name> <task_config> <ckpt_setting> [seed] [gpu_id]
# (run from policy/{name}/; the aim package must be importable in RoboTwin's Python environment)
policy_name={name}
task_name=${{1:?task_name}}
task_config=${{2:?task_config, e.g. demo_clean}}
ckpt_setting=${{3:?ckpt_setting (a label for the results folder)}}
seed=${{4:-0}}
gpu_id=${{5:-0}}

export CUDA_VISIBLE_DEVICES=${{gpu_id}}
cd ../..
PYTHONWARNINGS=ignore::UserWarning python script/eval_policy.py --config policy/${{policy_name}}/deploy_policy.yml \\
    --overrides \\
    --task_name ${{task_name}} \\
    --task_config ${{task_config}} \\
    --ckpt_setting ${{ckpt_setting}} \\
    --seed ${{seed}} \\
    --policy_name ${{policy_name}}
"""


def write_policy_folder(robotwin_root: str | Path, run_dir: str | Path, name: str = "AIM",
                        sampler_config: SamplerConfig = SamplerConfig(), device: str | None = None) -> Path:
    """Writes ``robotwin_root/policy/<name>/`` serving the run at ``run_dir``; returns the folder."""
    import yaml

    root = Path(robotwin_root)
    if not (root / "policy").is_dir():
        raise NotFoundError(f"{root} has no policy/ folder: give the root of a RoboTwin checkout (stable_2.0)")
    folder = root / "policy" / name
    folder.mkdir(exist_ok=True)
    settings = {
        # Keys RoboTwin's eval_policy.py reads (eval.sh overrides the nulls).
        "task_name": None, "policy_name": name, "task_config": None, "ckpt_setting": None, "seed": 0,
        "instruction_type": "unseen",
        # Ours, read by aim.eval.robotwin.get_model.
        "run_dir": str(Path(run_dir).resolve()), "device": device,
        "video_steps": sampler_config.video_steps, "action_steps": sampler_config.action_steps,
        "guidance_scale": sampler_config.guidance_scale,
    }
    (folder / "__init__.py").write_text(_INIT)
    (folder / "deploy_policy.py").write_text(_DEPLOY)
    (folder / "deploy_policy.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    script = folder / "eval.sh"
    script.write_text(_EVAL_SH.format(name=name))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder
