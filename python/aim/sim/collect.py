"""Expert data collection: scripted Meta-World experts rolled out in worker processes, labelled
with value maps from their contacts (docs/method.md §4), and written as a LeRobot v3.0 dataset.

Each (task, seed) is one episode: the expert acts until success or the step limit; a failed
episode is dropped and counted. Frame t holds the views and calibration seen before action t,
and proprio t is Meta-World's hand position and gripper opening (the first 4 observation
values); actions are in the settings' action space (``aim.sim.metaworld_env.ACTION_SPACES``),
whose channel names the dataset's action feature records. Collection resumes: (task, seed) pairs
already in the dataset are not rolled out again.
Workers are spawned (MuJoCo's EGL contexts do not survive a fork); the main process writes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aim.data import lerobot_format as fmt
from aim.data.episode import Episode
from aim.data.reader import DatasetReader
from aim.data.value_map_labels import Event, points_per_frame, render_labels
from aim.data.writer import DatasetWriter
from aim.errors import UsageError
from aim.sim.contact_events import detect_events
from aim.sim.environment import Contact
from aim.sim.metaworld_env import (
    ACTION_SPACES,
    DEFAULT_CAMERAS,
    GRIPPER_BODIES,
    MetaWorldEnv,
    check_multisample,
    check_task,
    instruction,
)

PROPRIO_DIM = 4  # Meta-World observation[:4]: hand xyz and gripper opening
PADS = ("leftpad", "rightpad")
FPS = 80  # Meta-World steps at 12.5 ms of simulated time
MOVED = 0.005  # metres: a touched body that moves less than this is scenery, not the object


@dataclass(frozen=True)
class CollectSettings:
    """What every episode shares: views, resolution, the step limit (None: the task's own), the
    action space, and how often the views are rendered: ``frame_every`` k renders every k-th step
    and repeats that row's images, value maps and extrinsics until the next (k times less
    rendering, which bounds collection; training at a frame stride that is a multiple of k never
    reads a repeated row). ``multisample``: anti-aliasing samples per pixel (None: Meta-World's
    own; see ``MetaWorldEnv``), recorded in the dataset."""

    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    height: int = 128
    width: int = 128
    max_steps: int | None = None
    action_space: str = "target"
    frame_every: int = 1
    multisample: int | None = None

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise UsageError(f"CollectSettings: image size must be >= 1 pixel, got {self.height}x{self.width}")
        if self.frame_every < 1:
            raise UsageError(f"CollectSettings.frame_every must be >= 1, got {self.frame_every}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"CollectSettings.max_steps must be >= 1 (or None: the task's own), got {self.max_steps}")
        check_multisample(self.multisample, "CollectSettings")
        if self.action_space not in ACTION_SPACES:
            raise UsageError(f"CollectSettings.action_space must be one of {sorted(ACTION_SPACES)}, "
                             f"got {self.action_space!r}")


@dataclass(frozen=True)
class CollectReport:
    """Episodes written, expert failures dropped, and (task, seed) pairs already in the dataset."""

    written: int
    failed: int
    skipped: int


def collect(root: str | Path, tasks: list[str], seeds: list[int], settings: CollectSettings = CollectSettings(),
            workers: int = 1, progress: bool = True) -> CollectReport:
    """Roll out every (task, seed) not yet in the dataset at ``root`` and append the successes.
    The arguments are checked (tasks, cameras, seeds, workers) before anything is written."""
    check_collection(tasks, seeds, settings, workers)
    root = Path(root)
    done = set()
    if (root / fmt.INFO_PATH).is_file():
        episodes = DatasetReader(root).episodes
        if "seed" in episodes:
            done = {(str(t), int(s)) for t, s in zip(episodes["task_name"], episodes["seed"]) if pd.notna(s)}
    jobs = [(task, seed, settings) for task in tasks for seed in seeds if (task, seed) not in done]
    written = failed = 0
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else contextlib.nullcontext()
    render = {} if settings.multisample is None else {"multisample": settings.multisample}
    with DatasetWriter(root, FPS, mode="append", robot_type="sawyer", frame_every=settings.frame_every,
                       render=render) as writer, \
            pool:
        # imap keeps the job order, so the dataset's episode order does not depend on the workers.
        results = pool.imap(_expert_job, jobs) if workers > 1 else map(_expert_job, jobs)
        for episode in _progress(results, len(jobs), progress):
            if episode is None:
                failed += 1
            else:
                writer.add_episode(episode)
                written += 1
    return CollectReport(written, failed, len(tasks) * len(seeds) - len(jobs))


def check_collection(tasks: list[str], seeds: list[int], settings: CollectSettings, workers: int) -> None:
    """Refuses, by name, a task, camera, seed or worker count a collection cannot run with."""
    if workers < 1:
        raise UsageError(f"collect: workers must be >= 1, got {workers}")
    if not tasks or not seeds:
        raise UsageError("collect: give at least one task and one seed")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise UsageError(f"collect: seeds must be >= 0 (Meta-World draws object positions from them), got {negative}")
    for task in tasks:
        check_task(task)
    _environment(tasks[0], settings)  # builds the views: an unknown camera is named here


def expert_episode(task: str, seed: int, settings: CollectSettings) -> Episode | None:
    """One expert episode with value-map labels, or None when the expert fails."""
    labelled = labelled_expert_episode(task, seed, settings)
    return None if labelled is None else labelled[0]


def labelled_expert_episode(task: str, seed: int, settings: CollectSettings) -> tuple[Episode, list[Event]] | None:
    """:func:`expert_episode` with the interaction events its value maps show (``aim.data.value_map_labels``).

    The manipulated object is the first body a finger pad touches that then moves (more than
    ``MOVED``): the pads also brush static scenery (the table, in button-press-v3, before the
    button), which the expert never acts on.
    """
    env = _environment(task, settings)
    observation = env.reset(seed)
    expert = env.expert()
    images = {c: [] for c in env.cameras}
    extrinsics = {c: [] for c in env.cameras}
    actions, proprio, contacts = [], [], []
    tracks: dict[str, list[np.ndarray]] = {}  # bodies a finger pad touched -> positions since then
    for step in range(settings.max_steps or env.max_steps):
        if step % settings.frame_every == 0:
            views, view_extrinsics = env.render(), env.extrinsics()
        for camera, image in views.items():
            images[camera].append(image)
        for camera, matrix in view_extrinsics.items():
            extrinsics[camera].append(matrix)
        action = expert(observation)
        proprio.append(observation[:PROPRIO_DIM])
        actions.append(action)
        result = env.step(action)
        observation = result.observation
        contacts.append(env.contacts())
        for body in _touched_by_pads(contacts[-1]):
            tracks.setdefault(body, [])
        for body, track in tracks.items():
            track.append(env.body_position(body))
        if result.success or result.done:
            break
    if not result.success:
        return None
    obj = next((body for body, track in tracks.items() if _displacement(track) > MOVED), None)
    events = []
    if obj:
        # Before the first touch the object rests where it was first touched.
        track = np.stack(tracks[obj])
        positions = np.concatenate([np.repeat(track[:1], len(contacts) - len(track), axis=0), track])
        events = detect_events(contacts, positions, env.dt, obj, GRIPPER_BODIES, PADS)
    points, mask = points_per_frame(events, len(actions))
    extrinsics = {c: np.stack(m) for c, m in extrinsics.items()}
    intrinsics = env.intrinsics()
    rendered = slice(None, None, settings.frame_every)
    labels = render_labels(points[rendered], mask[rendered], intrinsics, {c: m[rendered] for c, m in extrinsics.items()},
                           settings.height, settings.width)
    repeat = np.arange(len(actions)) // settings.frame_every  # a repeated row shows its rendered row's label
    episode = Episode(
        task=task, instruction=instruction(task),
        images={c: np.stack(v) for c, v in images.items()},
        value_maps={c: heat[repeat] for c, heat in labels.items()},
        actions=np.stack(actions).astype(np.float32), proprio=np.stack(proprio).astype(np.float32),
        intrinsics=intrinsics, extrinsics=extrinsics, seed=seed, action_names=ACTION_SPACES[settings.action_space],
    )
    return episode, events


def _touched_by_pads(contacts: list[Contact]) -> list[str]:
    """Bodies outside the gripper that a finger pad touches, in contact order."""
    touched: list[str] = []
    for contact in contacts:
        pair = (contact.body1, contact.body2)
        if set(pair) & set(PADS):
            touched += [b for b in pair if b not in GRIPPER_BODIES and b not in touched]
    return touched


def _displacement(track: list[np.ndarray]) -> float:
    """How far (metres) a body got from where it was first touched."""
    return float(np.linalg.norm(np.stack(track) - track[0], axis=1).max())


_ENVIRONMENTS: dict[tuple, MetaWorldEnv] = {}


def _environment(task: str, settings: CollectSettings) -> MetaWorldEnv:
    """One environment per task and settings per process, reused across seeds (building one is slow)."""
    key = (task, settings.cameras, settings.height, settings.width, settings.action_space, settings.multisample)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = MetaWorldEnv(task, settings.cameras, settings.height, settings.width,
                                          action_space=settings.action_space, multisample=settings.multisample)
    return _ENVIRONMENTS[key]


def _expert_job(job: tuple[str, int, CollectSettings]) -> Episode | None:
    return expert_episode(*job)


def _progress(results, total: int, enabled: bool):
    if not enabled:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, desc="collect", unit="episode")
