"""Intent scenes: Meta-World tasks whose scene holds two identical objects, of which only the
instruction says which one to act on.

In Meta-World every scene shows which task it is, so a policy that sees only the current views
and its past actions can act without knowing the instruction. Here one scene holds the task's
object twice, one on the left of the table (world -x, the robot's left) and one on the right,
looking exactly alike (same meshes, materials and joint state; every site, some of which mark
goals, is invisible), and each goal is its own task id with the same scenes:
``twin-handle-press-left`` and ``twin-handle-press-right`` draw the same two handle positions
from the same seed and differ only in which handle counts.

Each scene is built on the Meta-World task it doubles, whose logic is reused unchanged: the
chosen object keeps the task's body, joint and site names, so its reset, reward, success test,
observation (object position at ``obs[4:7]``) and scripted expert act on it; the other object is
an attached copy prefixed ``decoy_``, placed and posed as the chosen one is after every reset.
Value-map labels (``aim.sim.collect``) follow the expert's contacts, so they mark the chosen
object. ``aim.sim.metaworld_env.MetaWorldEnv`` builds these scenes for their task ids, so
``aim collect`` and ``aim eval`` take them like Meta-World's own tasks.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass

import numpy as np

from aim.errors import UsageError

DECOY = "decoy_"
GOALS = ("left", "right")
PREFIX = "twin-"


@dataclass(frozen=True)
class TwinScene:
    """The Meta-World task ``base_task`` with its object (body ``root`` and its subtree) doubled:
    each copy's centre is drawn with |x| in ``x_range`` on its side, y in ``y_range``, at ``z``.
    ``instruction`` has a ``{goal}`` slot ("left" or "right")."""

    base_task: str
    root: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    z: float
    instruction: str


# Ranges: the objects never overlap (a handle-press base is 0.14 m wide, a drawer case 0.24 m),
# and both stay inside the hand's reach and the fixed views (benchmarks/RESULTS.md shows frames).
SCENES = {
    "handle-press": TwinScene("handle-press-v3", "box", (0.12, 0.2), (0.8, 0.9), 0.0, "press the {goal} handle"),
    "drawer-close": TwinScene("drawer-close-v3", "drawer", (0.14, 0.2), (0.9, 0.9), 0.0, "close the {goal} drawer"),
}
INTENT_TASKS = tuple(f"{PREFIX}{scene}-{goal}" for scene in SCENES for goal in GOALS)


def is_intent_task(task: str) -> bool:
    return task.startswith(PREFIX)


def scene_of(task: str) -> tuple[TwinScene, str]:
    """The scene and goal ("left"/"right") of an intent task id such as ``twin-handle-press-left``."""
    name, _, goal = task.removeprefix(PREFIX).rpartition("-")
    if not is_intent_task(task) or name not in SCENES or goal not in GOALS:
        raise UsageError(f"unknown intent task {task!r}; the intent tasks are {', '.join(INTENT_TASKS)}")
    return SCENES[name], goal


def instruction(task: str) -> str:
    scene, goal = scene_of(task)
    return scene.instruction.format(goal=goal)


def expert_task(task: str) -> str:
    """The Meta-World task whose scripted expert acts in ``task``: an intent task's base task (its
    expert acts on the chosen object), any other task itself."""
    return scene_of(task)[0].base_task if is_intent_task(task) else task


def gym_env(task: str):
    """The scene of ``task`` wrapped as Meta-World's MT1 environments are (a step limit, and a
    task-selecting wrapper holding its one configured task), for ``MetaWorldEnv``."""
    import gymnasium
    from metaworld.types import Task
    from metaworld.wrappers import RandomTaskSelectWrapper

    scene, goal = scene_of(task)
    twin = _twin_class(scene.base_task)
    sim = twin(scene, goal)
    data = {"env_cls": twin.base_class, "rand_vec": np.zeros(3), "partially_observable": True}
    env = gymnasium.wrappers.TimeLimit(sim, sim.max_path_length)
    return RandomTaskSelectWrapper(env, [Task(env_name=task, data=pickle.dumps(data))], sample_tasks_on_reset=False)


class _Twin:
    """Mixed into a Meta-World task class: the doubled model, both positions drawn at each reset,
    the decoy placed and posed like the chosen object."""

    def __init__(self, scene: TwinScene, goal: str) -> None:
        self.scene, self.chosen_side = scene, goal
        super().__init__()

    def _initialize_simulation(self):
        import mujoco

        chosen, decoy = (mujoco.MjSpec.from_file(self.fullpath) for _ in range(2))
        chosen.worldbody.add_frame().attach_body(decoy.body(self.scene.root), DECOY, "")
        model = chosen.compile()
        model.site_rgba[:, 3] = 0.0  # sites mark goals (the drawer's); both objects must look alike
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        self._joint_pairs = _subtree_qpos(model, self.scene.root), _subtree_qpos(model, DECOY + self.scene.root)
        return model, mujoco.MjData(model)

    def _get_state_rand_vec(self) -> np.ndarray:
        """The chosen object's centre; the decoy's is kept for :meth:`reset_model`. Both are drawn
        (left, then right) whatever the goal, so the two goals of a scene see the same scenes."""
        s = self.scene
        low = np.array([-s.x_range[1], s.y_range[0], s.z, s.x_range[0], s.y_range[0], s.z])
        high = np.array([-s.x_range[0], s.y_range[1], s.z, s.x_range[1], s.y_range[1], s.z])
        left, right = np.split(self.np_random.uniform(low, high), 2)
        chosen, self._decoy_position = (left, right) if self.chosen_side == "left" else (right, left)
        self._last_rand_vec = chosen
        return chosen

    def reset_model(self) -> np.ndarray:
        super().reset_model()
        self.model.body(DECOY + self.scene.root).pos = self._decoy_position
        chosen, decoy = self._joint_pairs
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
        qpos[decoy], qvel[decoy] = qpos[chosen], 0.0
        self.set_state(qpos, qvel)
        return self._get_obs()


@functools.cache
def _twin_class(base_task: str) -> type:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    base = ALL_V3_ENVIRONMENTS[base_task]
    return type(f"Twin{base.__name__}", (_Twin, base), {"base_class": base})


def _subtree_qpos(model, root: str) -> np.ndarray:
    """qpos addresses of the (one-dimensional) joints of body ``root`` and its descendants, in model order."""
    top = model.body(root).id

    def below(body: int) -> bool:
        while body > 0 and body != top:
            body = model.body_parentid[body]
        return body == top

    return np.array([model.jnt_qposadr[j] for j in range(model.njnt) if below(model.jnt_bodyid[j])], dtype=int)
