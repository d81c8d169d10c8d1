"""The LeRobot v3.0 dataset layout as `aim` writes and reads it: names, paths and version checks.

LeRobot's own reader (0.4.x, which reads v3.0 only) is the contract; the fields below are the
ones it requires, found by opening hand-written datasets with it (``docs/data.md`` lists them).
We never import ``lerobot`` (it pins an old torch); this module is the single place that knows
the layout, so the writer and the reader cannot drift apart.

Layout (``root/``)::

    meta/info.json                              format version, fps, totals, features, templates
    meta/tasks.parquet                          task_index, indexed by the instruction text
    meta/episodes/chunk-000/file-000.parquet    one row per episode (lengths, file locations,
                                                task id, instructions, camera intrinsics,
                                                per-episode stats)
    meta/stats.json                             mean/std/min/max/count/q01..q99 of actions, proprio
    data/chunk-XXX/file-YYY.parquet             one row per frame (file YYY = episode's slot)
    videos/<key>/chunk-XXX/file-YYY.mp4         consecutive episodes of one video key, each at its
                                                from_timestamp .. to_timestamp (episodes table)

Video keys: ``observation.images.<camera>`` (RGB) and ``observation.value_maps.<camera>`` (the
docs/method.md §4 heat in [0, 1], stored as grey uint8 round(255 * heat) replicated to 3 channels).
Per-frame camera extrinsics (world-to-camera, OpenCV axes, 4x4 row-major, the convention of
``aim.ops.value_maps``) are the parquet column ``observation.extrinsics.<camera>`` (16 floats);
intrinsics (pixels, 3x3 row-major) are per episode in the episodes table, column
``cameras/<camera>/intrinsics`` (9 floats). The episodes table also names each episode's task
(``task_name``, e.g. "pick-place-v3"), lists the instructions a model may train on
(``instructions``: the episode's LeRobot task text first, then paraphrases) and those kept for
evaluation (``unseen_instructions``). ``meta/info.json``'s ``aim`` section records how the views
were rendered and what the actions are (``render``, ``action_space``). Plain LeRobot datasets
have none of these extras; readers fall back to the task text and treat them as uncalibrated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aim.errors import DatasetFormatError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # LeRobot's default number of files per chunk folder
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
STATS_PATH = "meta/stats.json"

ACTION = "action"
STATE = "observation.state"
STATS_FEATURES = (ACTION, STATE)


def image_key(camera: str) -> str:
    """The video feature holding ``camera``'s RGB frames."""
    return f"observation.images.{camera}"


def value_map_key(camera: str) -> str:
    """The video feature holding ``camera``'s value maps (docs/method.md §4)."""
    return f"observation.value_maps.{camera}"


def extrinsics_key(camera: str) -> str:
    """The per-frame parquet column holding ``camera``'s world-to-camera matrix (16 floats)."""
    return f"observation.extrinsics.{camera}"


def intrinsics_column(camera: str) -> str:
    """The episodes-table column holding ``camera``'s 3x3 intrinsics (9 floats, pixels)."""
    return f"cameras/{camera}/intrinsics"


def chunk_and_file(number: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the ``number``-th file of a kind (files fill a chunk folder in turn)."""
    return number // CHUNKS_SIZE, number % CHUNKS_SIZE


def file_number(chunk_index: int, file_index: int) -> int:
    """The inverse of :func:`chunk_and_file`."""
    return int(chunk_index) * CHUNKS_SIZE + int(file_index)


def data_file(root: Path, episode_index: int) -> Path:
    """The parquet holding an episode's frames: the writer gives each episode its own."""
    chunk, file = chunk_and_file(episode_index)
    return root / DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_file(root: Path, video_key: str, number: int) -> Path:
    """The ``number``-th mp4 of ``video_key`` (it may hold several consecutive episodes)."""
    chunk, file = chunk_and_file(number)
    return root / VIDEO_PATH.format(video_key=video_key, chunk_index=chunk, file_index=file)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def frame_every(info: dict) -> int:
    """How many steps apart the images of a dataset with ``info`` (meta/info.json) were rendered;
    rows in between repeat the last rendered one (1 for datasets that do not say)."""
    return int(info.get("aim", {}).get("frame_every", 1))


def render_settings(info: dict) -> dict:
    """How a dataset with ``info`` (meta/info.json) had its views rendered, beyond their size:
    the simulator settings its collector chose (e.g. ``{"multisample": 0}``); {} where it kept
    the simulator's own (and for datasets that do not say)."""
    return dict(info.get("aim", {}).get("render", {}))


def action_space(info: dict) -> dict:
    """What the actions of a dataset with ``info`` (meta/info.json) are beyond their channel names,
    e.g. ``{"kind": "ee", "frame": "first_pose"}`` (``aim.data.robotwin``); {} where unspecified."""
    return dict(info.get("aim", {}).get("action_space", {}))


def read_info(root: Path) -> dict:
    """``meta/info.json``, checked for the format version and the fields the reader relies on."""
    path = root / INFO_PATH
    if not path.is_file():
        raise DatasetFormatError(f"{path}: missing; is {root} a LeRobot v3.0 dataset?")
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetFormatError(f"{path}: unreadable JSON ({err})") from err
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        hint = "a newer format version" if _version_tuple(version) > _version_tuple(CODEBASE_VERSION) else "an older format"
        raise DatasetFormatError(
            f"{path}: codebase_version {version!r} is {hint}; aim reads {CODEBASE_VERSION} only"
        )
    for field in ("fps", "total_episodes", "total_frames", "total_tasks", "features", "data_path", "video_path"):
        if field not in info:
            raise DatasetFormatError(f"{path}: field {field!r} is missing")
    return info


def _version_tuple(version: Any) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(version).lstrip("v").split("."))
    except ValueError:
        return (0,)
