"""Convert RoboTwin 2.0's collected HDF5 episodes into our LeRobot v3.0 layout, with value maps.

Source layout, as RoboTwin writes it (``envs/utils/pkl2hdf5.py`` of RoboTwin-Platform/RoboTwin,
read November 2026): a task folder ``data/<task>/<config>/`` holds ``data/episode{i}.hdf5`` and
``instructions/episode{i}.json`` (``{"seen": [...], "unseen": [...]}``). Each HDF5 file is the
per-step observation dict stacked over time:

* ``observation/<camera>/rgb``: (T,) fixed-length byte strings, JPEG encoded by
  ``cv2.imencode`` from an RGB array (so the JPEG's own colour order is swapped: a standard
  decoder such as PIL returns BGR, which we reverse);
* ``observation/<camera>/intrinsic_cv`` (T, 3, 3) pixels and ``extrinsic_cv`` (T, 3, 4)
  world-to-camera, OpenCV axes (the conventions of ``aim.ops.value_maps``); the wrist cameras'
  extrinsics change every step;
* ``joint_action/vector`` (T, 14 for aloha-agilex): the joints and gripper of each arm, left first
  (``joint_action/left_arm`` (T, J) says how many joints an arm has; 6 where it is absent);
* ``endpose/{left,right}_endpose`` (T, 7): x, y, z, qw, qx, qy, qz in the world frame, the pose
  ``take_action(..., action_type='ee')`` commands, and ``endpose/{left,right}_gripper`` (T,):
  the gripper command, 0 closed and 1 open.

As peers train on it, proprio is the state at t and the action the state at t + 1, so an episode
of T recorded steps becomes T - 1 steps. The action space is ``qpos`` (``joint_action/vector``)
or ``ee`` (per arm x, y, z, qw, qx, qy, qz, gripper from ``endpose``, quaternions made continuous
by ``aim.data.ee_poses``; optionally relative to the episode's first pose), recorded in
``meta/info.json`` (``aim.action_space``) so evaluation acts in the same space.

RoboTwin records no contacts, so the value maps come from the grippers
(``aim.data.gripper_events``): each grasp and release of either arm, projected into every
camera with that step's calibration. Every instruction of the episode is kept: the first "seen"
one is its LeRobot task, the other "seen" ones are paraphrases to train on, the "unseen" ones are
kept for evaluation.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aim.data import ee_poses
from aim.data.episode import Episode
from aim.data.gripper_events import ArmSignals, GripperEventSettings, gripper_value_maps
from aim.data.lerobot_format import INFO_PATH, DatasetFormatError
from aim.data.reader import DatasetReader
from aim.data.video import VideoCodec
from aim.data.writer import DatasetWriter
from aim.errors import UsageError

# RoboTwin camera name -> our camera name (the default canvas packs head, left_wrist, right_wrist).
DEFAULT_CAMERAS = {"head_camera": "head", "left_camera": "left_wrist", "right_camera": "right_wrist"}
ARMS = ("left", "right")
ACTION_SPACES = ("qpos", "ee")
EE_NAMES = ee_poses.ee_names(ARMS)
FIRST_POSE, WORLD = "first_pose", "world"


@dataclass(frozen=True)
class RoboTwinSettings:
    """How episodes are converted: RoboTwin camera -> our camera name, the action space ("qpos" or
    "ee"), ee poses relative to the episode's first pose or not, whether value maps are made and
    how their gripper events are found."""

    cameras: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAMERAS))
    action_space: str = "qpos"
    relative_ee: bool = False
    value_maps: bool = True
    events: GripperEventSettings = GripperEventSettings()

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise UsageError(f"RoboTwin action space must be one of {list(ACTION_SPACES)}, got {self.action_space!r}")
        if self.relative_ee and self.action_space != "ee":
            raise UsageError("relative ee poses need the ee action space (--action-space ee)")
        if not self.cameras or len(set(self.cameras.values())) != len(self.cameras):
            raise UsageError(f"RoboTwin cameras must map to distinct names, got {self.cameras}")

    @property
    def action_record(self) -> dict:
        """What the dataset records of its actions (``meta/info.json``, ``aim.action_space``)."""
        record = {"robot": "robotwin", "kind": self.action_space}
        if self.action_space == "ee":
            record["frame"] = FIRST_POSE if self.relative_ee else WORLD
        return record


@dataclass(frozen=True)
class RoboTwinEpisode:
    """A converted episode and how its value maps were made ("gripper", "reach", "none", or None
    without value maps)."""

    episode: Episode
    labels: str | None


@dataclass(frozen=True)
class ConversionReport:
    """Episodes written, the episodes by how their value maps were labelled, and the source
    episodes skipped because the dataset already held them."""

    written: int
    labels: dict[str, list[int]]
    skipped: int = 0

    def summary(self) -> str:
        """One line a person reads: what was written and which episodes fell back or got empty maps."""
        line = f"wrote {self.written} episodes" + (f" ({self.skipped} already converted)" if self.skipped else "")
        if self.labels:
            counts = ", ".join(f"{len(v)} {LABEL_WORDS[k]}" for k, v in sorted(self.labels.items()))
            line += f" (value maps: {counts})"
        for kind in ("reach", "none"):
            if self.labels.get(kind):
                line += f"; {LABEL_WORDS[kind]}: episodes {_ranges(self.labels[kind])}"
        return line


LABEL_WORDS = {"gripper": "from gripper events", "reach": "no gripper event, labelled at the farthest reach",
               "none": "no gripper event and no reach, empty maps"}


def read_robotwin_episode(path: str | Path, task: str, instructions: dict[str, list[str]] | None = None,
                          settings: RoboTwinSettings = RoboTwinSettings()) -> RoboTwinEpisode:
    """One RoboTwin HDF5 episode as an :class:`Episode` with value maps (see the module docstring).

    ``instructions``: the episode's ``{"seen": [...], "unseen": [...]}`` (the task name with spaces
    when there is no seen one). Missing keys, lengths that disagree and undecodable frames raise
    ``DatasetFormatError`` naming the file and key.
    """
    import h5py

    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DatasetFormatError(f"{path}: cannot open HDF5 ({err})") from err
    with handle:
        vector = _dataset(handle, path, "joint_action/vector").astype(np.float64)
        if vector.ndim != 2 or len(vector) < 2:
            raise DatasetFormatError(f"{path}: joint_action/vector must be (T, D) with T >= 2, got {vector.shape}")
        recorded = len(vector)
        action_names = _qpos_names(handle, path, vector.shape[1]) if settings.action_space == "qpos" else EE_NAMES
        arms = _arm_signals(handle, path, recorded) if settings.value_maps or settings.action_space == "ee" else None
        cameras = {name: _camera(handle, path, source, recorded) for source, name in settings.cameras.items()}
    steps = recorded - 1
    state = vector if settings.action_space == "qpos" else _ee_state(arms, settings.relative_ee)
    labels = value_maps = None
    if settings.value_maps:
        height, width = next(iter(cameras.values()))[0].shape[1:3]
        made = gripper_value_maps(arms, {n: c[1] for n, c in cameras.items()}, {n: c[2] for n, c in cameras.items()},
                                  height, width, settings.events)
        value_maps, labels = {n: m[:steps] for n, m in made.maps.items()}, made.source
    seen, unseen = _instruction_lists(instructions, task)
    episode = Episode(
        task=task, instruction=seen[0], paraphrases=tuple(seen[1:]), unseen_instructions=tuple(unseen),
        images={n: c[0][:steps] for n, c in cameras.items()},
        value_maps=value_maps or {},
        actions=state[1:].astype(np.float32), proprio=state[:-1].astype(np.float32),
        intrinsics={n: c[1][0] for n, c in cameras.items()},
        extrinsics={n: c[2][:steps] for n, c in cameras.items()},
        action_names=action_names, source=path.name,
    )
    return RoboTwinEpisode(episode, labels)


def convert_robotwin(source: str | Path, target: str | Path, *, fps: int, task: str | None = None,
                     settings: RoboTwinSettings = RoboTwinSettings(), mode: str = "create",
                     codec: VideoCodec | None = None, progress: bool = False) -> ConversionReport:
    """Convert every ``source/data/episode{i}.hdf5`` (in order of i) into a dataset at ``target``.

    ``source`` is a RoboTwin ``<task>/<config>`` folder; ``task`` defaults to its parent folder's
    name. Instructions come from ``instructions/episode{i}.json`` where it exists. ``mode``
    "append" continues a conversion into an existing dataset: source files it already holds
    (its episodes table's ``source`` column) are skipped, so an interrupted conversion resumes.
    """
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise UsageError(f"convert_robotwin: fps must be a positive integer (the rate the episodes were saved at), "
                         f"got {fps!r}")
    source = Path(source)
    task = task or source.resolve().parent.name
    files = sorted((source / "data").glob("episode*.hdf5"), key=_episode_number)
    if not files:
        raise DatasetFormatError(f"{source / 'data'}: no episode*.hdf5 files")
    labels: dict[str, list[int]] = {}
    done = _converted_sources(Path(target)) if mode == "append" else set()
    files = [f for f in files if f.name not in done]
    with DatasetWriter(target, fps, mode=mode, codec=codec, robot_type="aloha-agilex",
                       action_space=settings.action_record) as writer:
        for path in _progress(files, progress):
            number = _episode_number(path)
            instructions = _read_instructions(source / "instructions" / f"episode{number}.json")
            converted = read_robotwin_episode(path, task, instructions, settings)
            index = writer.add_episode(converted.episode)
            if converted.labels is not None:
                labels.setdefault(converted.labels, []).append(index)
    return ConversionReport(len(files), labels, len(done))


def _converted_sources(target: Path) -> set[str]:
    """The source files a dataset at ``target`` already holds (none when it does not exist yet)."""
    if not (target / INFO_PATH).is_file():
        return set()
    episodes = DatasetReader(target).episodes
    return {str(s) for s in episodes["source"] if isinstance(s, str)} if "source" in episodes else set()


def _camera(handle, path: Path, source: str, recorded: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (T, H, W, 3) uint8 RGB, intrinsics (T, 3, 3), world-to-camera (T, 4, 4)) of one camera."""
    group = f"observation/{source}"
    jpegs = _dataset(handle, path, f"{group}/rgb")
    k = _dataset(handle, path, f"{group}/intrinsic_cv").astype(np.float64)
    e = _dataset(handle, path, f"{group}/extrinsic_cv").astype(np.float64)
    for key, value in (("rgb", jpegs), ("intrinsic_cv", k), ("extrinsic_cv", e)):
        if len(value) != recorded:
            raise DatasetFormatError(f"{path}: {group}/{key} has {len(value)} steps, joint_action/vector has {recorded}")
    if k.shape[1:] != (3, 3) or e.shape[1:] != (3, 4):
        raise DatasetFormatError(f"{path}: {group}/intrinsic_cv must be (T, 3, 3) and extrinsic_cv (T, 3, 4), got "
                                 f"{k.shape} and {e.shape}")
    if not np.allclose(k, k[0], rtol=1e-6, atol=1e-9):
        raise DatasetFormatError(f"{path}: {group}/intrinsic_cv changes within the episode; a dataset holds one "
                                 "intrinsics matrix per episode and camera")
    world_to_camera = np.tile(np.eye(4), (recorded, 1, 1))
    world_to_camera[:, :3, :] = e
    images = np.stack([_decode_jpeg(bytes(b), path, f"{group}/rgb") for b in jpegs])
    return images, k, world_to_camera


def qpos_names(left_joints: int, right_joints: int) -> tuple[str, ...]:
    """Channel names of a qpos action: each arm's joints, then its gripper, left first."""
    return tuple(f"{arm}_{part}" for arm, joints in zip(ARMS, (left_joints, right_joints))
                 for part in (*(f"joint{j}" for j in range(joints)), "gripper"))


def _qpos_names(handle, path: Path, width: int) -> tuple[str, ...]:
    joints = [handle[f"joint_action/{arm}_arm"].shape[-1] if f"joint_action/{arm}_arm" in handle else 6 for arm in ARMS]
    if sum(joints) + 2 != width:
        raise DatasetFormatError(f"{path}: joint_action/vector has {width} channels, but arms of {joints} joints and "
                                 f"a gripper each make {sum(joints) + 2}")
    return qpos_names(*joints)


def _arm_signals(handle, path: Path, recorded: int) -> list[ArmSignals]:
    arms = []
    for arm in ARMS:
        poses = _dataset(handle, path, f"endpose/{arm}_endpose").astype(np.float64)
        gripper = _dataset(handle, path, f"endpose/{arm}_gripper").astype(np.float64).reshape(-1)
        if poses.shape != (recorded, 7) or gripper.shape != (recorded,):
            raise DatasetFormatError(f"{path}: endpose/{arm}_endpose must be ({recorded}, 7) and "
                                     f"endpose/{arm}_gripper ({recorded},), got {poses.shape} and {gripper.shape}")
        try:
            arms.append(ArmSignals(arm, poses, gripper))
        except ValueError as err:
            raise DatasetFormatError(f"{path}: endpose/{arm}: {err}") from err
    return arms


def _ee_state(arms: list[ArmSignals], relative: bool) -> np.ndarray:
    """(T, 16) ee vectors (per arm pose and gripper) with continuous quaternions."""
    state = ee_poses.continuous_ee(np.concatenate([np.concatenate([a.poses, a.gripper[:, None]], 1) for a in arms], 1))
    return ee_poses.to_first_pose_frame(state, state[0]) if relative else state


def _instruction_lists(instructions: dict[str, list[str]] | None, task: str) -> tuple[list[str], list[str]]:
    instructions = instructions or {}
    seen = [str(s) for s in instructions.get("seen") or []] or [task.replace("_", " ")]
    return list(dict.fromkeys(seen)), [str(s) for s in instructions.get("unseen") or []]


def _read_instructions(path: Path) -> dict[str, list[str]] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetFormatError(f"{path}: unreadable instructions JSON ({err})") from err
    if not isinstance(value, dict) or not all(isinstance(value.get(k, []), list) for k in ("seen", "unseen")):
        raise DatasetFormatError(f'{path}: instructions must look like {{"seen": [...], "unseen": [...]}}')
    return value


def _episode_number(path: Path) -> int:
    match = re.fullmatch(r"episode(\d+)\.hdf5", path.name)
    if not match:
        raise DatasetFormatError(f"{path}: expected a name episode<i>.hdf5")
    return int(match.group(1))


def _dataset(handle, path: Path, key: str) -> np.ndarray:
    if key not in handle:
        raise DatasetFormatError(f"{path}: key {key!r} is missing")
    return handle[key][()]


def _decode_jpeg(data: bytes, path: Path, key: str) -> np.ndarray:
    """RGB (H, W, 3) uint8 from RoboTwin's JPEG bytes (encoded by OpenCV from RGB: channels swapped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetFormatError(f"{path}: {key} holds an undecodable JPEG ({err})") from err
    return np.ascontiguousarray(image[..., ::-1])


def _ranges(indices: list[int]) -> str:
    """"0-3, 7" for [0, 1, 2, 3, 7]."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def _progress(files: list[Path], enabled: bool):
    if not enabled:
        return files
    from tqdm import tqdm

    return tqdm(files, desc="convert", unit="episode")


