"""Meta-World (MuJoCo, CPU) behind :class:`aim.sim.Environment`, with its scripted experts.

Meta-World 3.x (``gymnasium.make("Meta-World/MT1", env_name=...)``, 50 tasks, 4-d actions,
500-step episodes) renders offscreen on a CPU through EGL: ``MUJOCO_GL`` must say so before
MuJoCo is first imported. That is a process-wide choice, made by entry points (the ``aim``
command, the test session, the benchmarks: ``aim.process_settings.use_offscreen_rendering``);
an environment made without a renderer chosen or a display to render on is refused with that
advice. An EGL error printed at interpreter exit is harmless.

Some of Meta-World's cameras (the corner ones) are mounted upside down: the world's up points
down their images. Such a camera is turned upright by a half turn about its optical axis
(image rotated 180 degrees, extrinsics pre-multiplied by diag(-1, -1, 1, 1); the centred
intrinsics are unchanged), decided at each reset from the camera's pose, so a person and the
model see the scene upright.

Default views: ``topview`` above the table (objects are largest there, which matters at the
16-pixel views of the tiny model), ``gripperPOV`` on the hand (it moves with the gripper and
looks where the fingers go), and ``corner3``, an oblique view of the whole workspace.

Actions (``ACTION_SPACES``): Meta-World steps its hand by moving a mocap target at most
``action_scale`` metres per axis and step. ``"delta"`` is its own command, the displacement in
units of ``action_scale`` plus the gripper effort. ``"target"`` (the default) is the mocap target
itself in world coordinates, plus the gripper effort: the expert's target is where its delta
moved the mocap, and a target is executed as the delta that moves the mocap there (clipped to
Meta-World's per-step limit), so an expert's target actions replay its delta actions exactly.
Like the absolute poses of RoboTwin's actions (docs/method.md §2), target actions tell a model where the
hand is from its past actions alone, and they are the end-effector targets docs/method.md §6 rewards.
"""

from __future__ import annotations

import atexit
import functools
import os
import warnings
import weakref

import numpy as np

from aim.errors import UsageError
from aim.sim import intent_scenes
from aim.sim.environment import Contact, Environment, StepResult
from aim.sim.mujoco_cameras import intrinsics_from_fovy, world_to_camera

DEFAULT_CAMERAS = ("topview", "gripperPOV", "corner3")
# Bodies of the Sawyer gripper in Meta-World's model: what "the gripper" is in contacts and masks.
GRIPPER_BODIES = ("hand", "rightclaw", "leftclaw", "rightpad", "leftpad")
# Action space -> the names of its four channels (written into a dataset's action feature).
ACTION_SPACES = {"target": ("x", "y", "z", "gripper"), "delta": ("dx", "dy", "dz", "gripper")}
# Anti-aliasing of the renders for people (rollout videos): Meta-World's own 4 samples per pixel;
# at 256 pixels three views take about 80 ms on a 2-core CPU (benchmarks/RESULTS.md).
VIEWING_MULTISAMPLE = 4


def check_task(task: str) -> None:
    """Refuses a name that is not one of Meta-World's tasks or an intent task (imports Meta-World, hence MuJoCo:
    the renderer must be chosen first, see the module docstring)."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        raise UsageError("Meta-World: MuJoCo has no display to render on; choose its offscreen renderer before "
                         "anything imports mujoco: MUJOCO_GL=egl, or aim.process_settings.use_offscreen_rendering() "
                         "at the top of your script")
    from metaworld.env_dict import (
        ALL_V3_ENVIRONMENTS,  # also registers the environments with gymnasium
    )

    if intent_scenes.is_intent_task(task):
        intent_scenes.scene_of(task)
    elif task not in ALL_V3_ENVIRONMENTS:
        raise UsageError(f"unknown Meta-World task {task!r}; its tasks are {', '.join(sorted(ALL_V3_ENVIRONMENTS))} "
                         f"and the intent tasks {', '.join(intent_scenes.INTENT_TASKS)}")


def check_multisample(multisample: int | None, owner: str) -> None:
    """Anti-aliasing samples per pixel must be None (the simulator model's own) or 0..16."""
    if multisample is not None and not 0 <= multisample <= 16:
        raise UsageError(f"{owner}: multisample must be None or 0..16 samples per pixel, got {multisample}")


def action_space_of(names) -> str:
    """The action space whose channel names are ``names``; a dataset without names predates
    target actions and holds Meta-World's deltas."""
    if names is None:
        return "delta"
    for space, known in ACTION_SPACES.items():
        if tuple(names) == known:
            return space
    raise ValueError(f"action channel names {list(names)} are none of Meta-World's action spaces {ACTION_SPACES}")


def instruction(task: str) -> str:
    """The instruction text of a Meta-World task ("pick-place-v3" -> "pick place") or of an intent
    task (``aim.sim.intent_scenes``), used by data collection and evaluation alike."""
    if intent_scenes.is_intent_task(task):
        return intent_scenes.instruction(task)
    return task.removesuffix("-v3").replace("-", " ")


class MetaWorldEnv(Environment):
    """One Meta-World task (e.g. "pick-place-v3") rendered at ``height`` x ``width`` in ``cameras``."""

    def __init__(self, task: str, cameras: tuple[str, ...] = DEFAULT_CAMERAS, height: int = 128,
                 width: int = 128, shadows: bool = False, action_space: str = "target",
                 multisample: int | None = None) -> None:
        """``shadows`` also renders shadows and reflections: in CPU (EGL software) rendering they
        take about 4/5 of a frame's time (the lights' 4096-pixel shadow maps), so they are off
        unless asked for; data and evaluation must use the same setting. ``action_space`` is a
        key of ``ACTION_SPACES`` (see the module docstring). ``multisample``: samples per pixel of
        the anti-aliasing (None: the model's own, 4 in Meta-World; 0: none, which renders in less
        than half the time on a CPU, with jagged edges); datasets record it (``aim.render``) and
        evaluation renders as the model's training data was rendered."""
        if action_space not in ACTION_SPACES:
            raise UsageError(f"MetaWorldEnv: action_space must be one of {sorted(ACTION_SPACES)}, got {action_space!r}")
        check_multisample(multisample, "MetaWorldEnv")
        check_task(task)
        self.action_space = action_space
        import mujoco

        self._mujoco = mujoco
        self.task = task
        self._env = _gym_env(task)
        self._sim = self._env.unwrapped
        model = self._sim.model
        names = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise UsageError(f"MetaWorldEnv({task!r}): unknown cameras {unknown}; the model has {names}")
        self.cameras = tuple(cameras)
        self.height, self.width = height, width
        if multisample is not None:
            model.vis.quality.offsamples = multisample
        self.multisample = int(model.vis.quality.offsamples)
        self._shadows = shadows
        self._renderer = self._make_renderer(height, width)
        self._viewing_renderer = None  # made by the first render_for_people
        # Meta-World's 50 fixed variations per task are drawn from numpy's unseeded global RNG when
        # the benchmark is built, so they differ between processes; reset draws the variation from
        # its seed instead. One set_task configures the task (observability and task data); the
        # flags after it make every reset draw object and goal positions from the env's seeded RNG.
        selector = _task_selector(self._env)
        selector.sample_tasks_on_reset = False
        self._sim.set_task(selector.tasks[0])
        self._sim._freeze_rand_vec = False
        self._sim.seeded_rand_vec = True
        self._intrinsics = self._intrinsics_at(height, width)
        self._done = True

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step."""
        return float(self._sim.dt)

    @property
    def action_scale(self) -> float:
        """Metres the hand's target moves per unit of the xyz action (Meta-World's mocap scale)."""
        return float(self._sim.action_scale)

    @property
    def max_steps(self) -> int:
        return int(self._sim.max_path_length)

    def reset(self, seed: int) -> np.ndarray:
        """Object and goal positions are drawn from ``seed`` (uniformly over the task's reset
        space, as Meta-World draws its variations): the same seed gives the same episode in every
        process, and distinct seeds give distinct initial states."""
        self._sim.seed(seed)
        observation, _ = self._env.reset(seed=seed)
        self._steps, self._done, self.success = 0, False, False
        # Row 1 of the rotation is the image's down axis in the world: positive z means world up
        # points down the image.
        self._upside_down = {c: bool(e[1, 2] > 0) for c, e in self._mujoco_extrinsics().items()}
        return observation

    def step(self, action: np.ndarray) -> StepResult:
        if self._done:
            raise RuntimeError(f"MetaWorldEnv({self.task!r}): step after the episode ended; call reset")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,):
            raise ValueError(f"MetaWorldEnv({self.task!r}): an action has 4 values (xyz, gripper), got shape {action.shape}")
        if self.action_space == "target":
            action = np.append(self._delta_to(action[:3]), action[3])
        observation, _, terminated, truncated, info = self._env.step(action)
        self._steps += 1
        self.success = bool(info["success"])
        self._done = bool(terminated or truncated) or self._steps >= self.max_steps
        return StepResult(observation, self.success, self._done)

    def expert(self):
        """Meta-World's scripted policy for this task: a callable observation -> action in this
        environment's action space, clipped to what the environment executes."""
        from metaworld.policies import ENV_POLICY_MAP

        policy = ENV_POLICY_MAP[intent_scenes.expert_task(self.task)]().get_action

        def act(observation: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():
                # Meta-World's proportional experts warn whenever their command exceeds [-1, 1]
                # (every few steps of every episode); the clip below is the bound they warn about.
                warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)
                delta = np.clip(policy(observation), -1.0, 1.0)
            if self.action_space == "delta":
                return delta
            target = np.clip(self._mocap() + delta[:3] * self.action_scale, self._sim.mocap_low, self._sim.mocap_high)
            return np.append(target, delta[3])

        return act

    def _mocap(self) -> np.ndarray:
        return self._sim.data.mocap_pos[0].copy()

    def _delta_to(self, target: np.ndarray) -> np.ndarray:
        """The delta command (clipped to [-1, 1]) that moves the mocap towards ``target``."""
        return np.clip((target - self._mocap()) / self.action_scale, -1.0, 1.0)

    def ee_targets(self, actions: np.ndarray) -> np.ndarray:
        """(N, 3) world positions of the tool centre (where value maps mark contacts) that
        ``actions`` (N, 4) command from the current state: each target moved by the tool centre's
        current offset from the mocap, or the tool centre plus the running sum of scaled deltas
        (workspace clipping and the hand's tracking lag left out: targets show intent)."""
        actions = np.asarray(actions, dtype=np.float64)
        tool_centre = np.array(self._sim.tcp_center)
        if self.action_space == "target":
            return actions[:, :3] + (tool_centre - self._mocap())
        return tool_centre + self.action_scale * np.cumsum(np.clip(actions[:, :3], -1.0, 1.0), axis=0)

    def render(self) -> dict[str, np.ndarray]:
        return self._render_with(self._renderer)

    def render_for_people(self, height: int, width: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The current state from the same cameras at ``height`` x ``width``, anti-aliased with
        ``VIEWING_MULTISAMPLE`` samples per pixel whatever the model's views use: images and the
        intrinsics of that size (the extrinsics are :meth:`extrinsics`). For rollout videos,
        never the model's input; rendering does not change the simulation. Its renderer is made
        on first use (and again when the size changes), so episodes never shown pay nothing."""
        renderer = self._viewing_renderer
        if renderer is None or (renderer.height, renderer.width) != (height, width):
            if renderer is not None:
                renderer.close()
            model = self._sim.model
            # Offscreen buffers are capped by the model's offwidth x offheight (640 x 480 in Meta-World).
            model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
            model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
            own = int(model.vis.quality.offsamples)
            model.vis.quality.offsamples = VIEWING_MULTISAMPLE  # read when the renderer's buffers are made
            try:
                self._viewing_renderer = renderer = self._make_renderer(height, width)
            finally:
                model.vis.quality.offsamples = own
        return self._render_with(renderer), self._intrinsics_at(height, width)

    def _make_renderer(self, height: int, width: int):
        renderer = self._mujoco.Renderer(self._sim.model, height, width)
        for flag in (self._mujoco.mjtRndFlag.mjRND_SHADOW, self._mujoco.mjtRndFlag.mjRND_REFLECTION):
            renderer.scene.flags[flag] = self._shadows
        _OPEN_RENDERERS.add(renderer)
        _close_renderers_at_exit()
        return renderer

    def _render_with(self, renderer) -> dict[str, np.ndarray]:
        images = {}
        for camera in self.cameras:
            renderer.update_scene(self._sim.data, camera=camera)
            images[camera] = self._upright(camera, renderer.render())
        return images

    def _intrinsics_at(self, height: int, width: int) -> dict[str, np.ndarray]:
        model = self._sim.model
        return {c: intrinsics_from_fovy(float(model.cam_fovy[model.camera(c).id]), height, width) for c in self.cameras}

    def body_masks(self, bodies: tuple[str, ...] = GRIPPER_BODIES) -> dict[str, np.ndarray]:
        """(H, W) bool per camera: pixels showing a geom of ``bodies`` (segmentation rendering)."""
        model = self._sim.model
        body_ids = [model.body(b).id for b in bodies]
        geoms = np.nonzero(np.isin(model.geom_bodyid, body_ids))[0]
        masks = {}
        self._renderer.enable_segmentation_rendering()
        try:
            for camera in self.cameras:
                self._renderer.update_scene(self._sim.data, camera=camera)
                seg = self._renderer.render()
                mask = np.isin(seg[..., 0], geoms) & (seg[..., 1] == self._mujoco.mjtObj.mjOBJ_GEOM)
                masks[camera] = self._upright(camera, mask)
        finally:
            self._renderer.disable_segmentation_rendering()
        return masks

    def intrinsics(self) -> dict[str, np.ndarray]:
        return {c: k.copy() for c, k in self._intrinsics.items()}

    def extrinsics(self) -> dict[str, np.ndarray]:
        half_turn = np.diag([-1.0, -1.0, 1.0, 1.0])
        return {c: half_turn @ e if self._upside_down[c] else e for c, e in self._mujoco_extrinsics().items()}

    def _mujoco_extrinsics(self) -> dict[str, np.ndarray]:
        data, model = self._sim.data, self._sim.model
        return {c: world_to_camera(data.cam_xpos[model.camera(c).id], data.cam_xmat[model.camera(c).id].reshape(3, 3))
                for c in self.cameras}

    def _upright(self, camera: str, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[::-1, ::-1] if self._upside_down[camera] else image)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Meta-World's tool centre (between the finger pads) and the hand body's orientation."""
        return np.array(self._sim.tcp_center), self._sim.data.body("hand").xquat.copy()

    def body_position(self, body: str) -> np.ndarray:
        """(3,) world position of a body's frame origin (e.g. "leftpad", "obj")."""
        return self._sim.data.body(body).xpos.copy()

    def contacts(self) -> list[Contact]:
        model, data = self._sim.model, self._sim.data
        out = []
        for i in range(data.ncon):
            contact = data.contact[i]
            body1 = model.body(model.geom_bodyid[contact.geom1]).name
            body2 = model.body(model.geom_bodyid[contact.geom2]).name
            out.append(Contact(body1, body2, contact.pos.copy()))
        return out

    def close(self) -> None:
        for renderer in (self._renderer, self._viewing_renderer):
            if renderer is not None:
                renderer.close()
                _OPEN_RENDERERS.discard(renderer)
        self._env.close()


_OPEN_RENDERERS: weakref.WeakSet = weakref.WeakSet()


@functools.cache
def _close_renderers_at_exit() -> None:
    """Closes at exit the renderers of environments nobody closed. Left to their own ``__del__``
    during interpreter teardown they call into a half-unloaded EGL and print tracebacks; registered
    after MuJoCo's first EGL context (whose atexit terminates EGL), this runs before it."""
    atexit.register(lambda: [renderer.close() for renderer in list(_OPEN_RENDERERS)])


def _gym_env(task: str):
    """Meta-World's MT1 environment of ``task``, or the intent scene of an intent task id."""
    if intent_scenes.is_intent_task(task):
        return intent_scenes.gym_env(task)
    import gymnasium

    return gymnasium.make("Meta-World/MT1", env_name=task, disable_env_checker=True)


def _task_selector(env):
    """Meta-World's ``RandomTaskSelectWrapper`` in the gymnasium wrapper chain (it holds the task variations)."""
    while not hasattr(env, "sample_tasks_on_reset"):
        if not hasattr(env, "env"):
            raise RuntimeError("MetaWorldEnv: no task-selecting wrapper found; unsupported metaworld version")
        env = env.env
    return env
