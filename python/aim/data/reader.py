"""``DatasetReader``: random access to a LeRobot v3.0 dataset's episodes, frames and metadata.

Reads datasets written by ``aim.data.DatasetWriter`` and plain LeRobot v3.0 datasets alike
(cameras come from the ``observation.images.*`` features; several episodes may share one data
or video file). Every problem with the files (missing, unreadable, a newer format version,
lengths that disagree) raises ``DatasetFormatError`` naming the file. With ``skip_bad``, episodes
whose files are bad are found when the reader opens (a check of each episode's parquet rows and of
its videos' headers and frame counts; no pixels are decoded), left out of ``valid_episodes``, listed
in ``skipped`` and reported in one warning; a problem with the dataset as a whole (``meta/``, a
newer format version) still raises.

Frames are decoded by the backend of ``aim.data.video_backends`` (PyAV, torchcodec or DALI).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aim.data import lerobot_format as fmt
from aim.data import video_backends
from aim.data.lerobot_format import DatasetFormatError
from aim.data.video import frame_count
from aim.data.video_backends import VideoBackend
from aim.errors import UsageError

IMAGE_PREFIX = "observation.images."

log = logging.getLogger("aim.data")


class DatasetReader:
    """The dataset under ``root``: ``info``, ``episodes`` (a DataFrame), ``tasks``, ``stats``, frames.

    ``video_backend``: a backend name or instance (default: ``$AIM_VIDEO_BACKEND``, else automatic);
    ``skip_bad``: leave out bad episodes instead of raising (see the module docstring);
    ``cache_videos``: decode each episode's video once, whole, and keep it in memory (small
    datasets read many times: opening a decoder per clip cost more than a tiny model's step).
    """

    def __init__(self, root: str | Path, *, video_backend: str | VideoBackend | None = None,
                 skip_bad: bool = False, cache_videos: bool = False) -> None:
        self.root = Path(root)
        self._decoded: dict[tuple[int, str], np.ndarray] | None = {} if cache_videos else None
        self.video = video_backends.video_backend(video_backend)
        self.info = fmt.read_info(self.root)
        self.fps = int(self.info["fps"])
        self.frame_every = fmt.frame_every(self.info)
        features = self.info["features"]
        self.cameras = [k[len(IMAGE_PREFIX):] for k in features if k.startswith(IMAGE_PREFIX)]
        self.has_value_maps = all(fmt.value_map_key(c) in features for c in self.cameras) and bool(self.cameras)
        self.episodes = _read_parquet(self.root / fmt.EPISODES_PATH).to_pandas()
        total = int(self.info["total_episodes"])
        if len(self.episodes) < total:
            raise DatasetFormatError(f"{self.root / fmt.EPISODES_PATH}: {len(self.episodes)} episodes, "
                                     f"but meta/info.json claims {total}")
        self.episodes = self.episodes.iloc[:total]
        tasks_path = self.root / fmt.TASKS_PATH
        try:
            tasks = pd.read_parquet(tasks_path)
        except (OSError, pa.ArrowException) as err:
            raise DatasetFormatError(f"{tasks_path}: cannot read tasks ({err})") from err
        self.tasks = {int(i): str(task) for task, i in zip(tasks.index, tasks["task_index"])}
        stats_path = self.root / fmt.STATS_PATH
        self.stats = _read_stats(stats_path)
        self._data = lru_cache(maxsize=8)(self._read_data)
        self._frame_count = lru_cache(maxsize=None)(frame_count)  # episodes sharing an mp4 check it once
        self.video_keys = [k for k, f in features.items() if f.get("dtype") == "video"]
        self.skipped: dict[int, str] = {}
        if skip_bad:
            self.skipped = {e: problem for e in range(len(self)) if (problem := self.check_episode(e))}
            if self.skipped:
                log.warning("aim.data: %s: skipped %d of %d episodes: %s", self.root, len(self.skipped), len(self),
                            "; ".join(f"episode {e}: {p}" for e, p in self.skipped.items()))
        self.valid_episodes = [e for e in range(len(self)) if e not in self.skipped]

    def __len__(self) -> int:
        return len(self.episodes)

    def episode_length(self, episode: int) -> int:
        return int(self.episodes["length"].iloc[episode])

    def episode_data(self, episode: int) -> dict[str, np.ndarray]:
        """The episode's parquet columns as arrays: vectors (T, D), scalars (T,); checked against its length."""
        return self._data(episode)

    def _read_data(self, episode: int) -> dict[str, np.ndarray]:
        row = self.episodes.iloc[episode]
        path = self.root / self.info["data_path"].format(chunk_index=int(row["data/chunk_index"]),
                                                         file_index=int(row["data/file_index"]))
        table = _read_parquet(path)
        lo, hi = int(row["dataset_from_index"]), int(row["dataset_to_index"])
        index = table.column("index").to_numpy()
        rows = np.nonzero((index >= lo) & (index < hi))[0]
        if len(rows) != int(row["length"]) or hi - lo != int(row["length"]):
            raise DatasetFormatError(f"{path}: episode {episode} has {len(rows)} rows in [{lo}, {hi}), "
                                     f"but its length is {int(row['length'])}")
        table = table.take(pa.array(rows))
        out = {}
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
                out[name] = np.stack(column.to_numpy(zero_copy_only=False))
            else:
                out[name] = column.to_numpy(zero_copy_only=False)
        return out

    def check_episode(self, episode: int) -> str | None:
        """Why ``episode`` cannot be read (its parquet rows; each video present, readable and long
        enough), or None when it can. Reads video headers only."""
        try:
            self.episode_data(episode)
            row = self.episodes.iloc[episode]
            for key in self.video_keys:
                path, first = self.video_location(episode, key)
                available, needed = self._frame_count(path), first + int(row["length"])
                if available < needed:
                    raise DatasetFormatError(f"{path}: {available} frames, but episode {episode} needs {needed}")
        except DatasetFormatError as err:
            return str(err)
        return None

    def instruction(self, episode: int) -> str:
        """The episode's instruction (the LeRobot task text of its first frame)."""
        return self.tasks[int(self.episode_data(episode)["task_index"][0])]

    def instructions(self, episode: int) -> list[str]:
        """Every instruction a model may train on for the episode: its instruction first, then the
        paraphrases the dataset keeps (episodes-table column ``instructions``, where there is one)."""
        return _unique([self.instruction(episode), *self._strings("instructions", episode)])

    def unseen_instructions(self, episode: int) -> list[str]:
        """Instructions kept for evaluation only (RoboTwin's "unseen" paraphrases), where recorded."""
        return self._strings("unseen_instructions", episode)

    def task_name(self, episode: int) -> str:
        """The episode's task id (``task_name`` column, e.g. "pick-place-v3"); datasets without one
        (plain LeRobot datasets) name a task by its instruction."""
        if "task_name" in self.episodes:
            name = self.episodes["task_name"].iloc[episode]
            if isinstance(name, str) and name:
                return name
        return self.instruction(episode)

    def _strings(self, column: str, episode: int) -> list[str]:
        if column not in self.episodes:
            return []
        values = self.episodes[column].iloc[episode]
        return [] if values is None else [str(v) for v in values]

    @property
    def has_calibration(self) -> bool:
        """Whether every camera has intrinsics (episodes table) and extrinsics (per frame): what value
        maps, their projections and the Stage II reward need; plain LeRobot datasets have none."""
        features = self.info["features"]
        return bool(self.cameras) and all(
            fmt.intrinsics_column(c) in self.episodes and fmt.extrinsics_key(c) in features for c in self.cameras)

    def intrinsics(self, episode: int, camera: str) -> np.ndarray:
        """(3, 3) pixels, from the episodes table (``cameras/<camera>/intrinsics``)."""
        column = fmt.intrinsics_column(camera)
        if column not in self.episodes:
            raise DatasetFormatError(f"{self.root / fmt.EPISODES_PATH}: no column {column!r}")
        return np.array(self.episodes[column].iloc[episode], dtype=np.float64).reshape(3, 3)

    def extrinsics(self, episode: int, camera: str) -> np.ndarray:
        """(T, 4, 4) world-to-camera per frame, from the data column ``observation.extrinsics.<camera>``."""
        key = fmt.extrinsics_key(camera)
        data = self.episode_data(episode)
        if key not in data:
            raise DatasetFormatError(f"{self.root}: episode {episode} has no column {key!r}")
        return data[key].reshape(-1, 4, 4).astype(np.float64)

    def frames(self, episode: int, video_key: str, frame_indices: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames of ``video_key`` at the episode's ``frame_indices``: integers in
        [0, length), in any order and with repeats (each decoded once); any other index is refused
        by name, since a video file may hold the next episode's frames right after this one's."""
        indices = self._frame_indices(episode, frame_indices)
        if self._decoded is None:
            unique, inverse = np.unique(indices, return_inverse=True)
            return self._decode(episode, video_key, unique)[inverse]
        key = (episode, video_key)
        if key not in self._decoded:
            self._decoded[key] = self._decode(episode, video_key, np.arange(self.episode_length(episode)))
        return self._decoded[key][indices]

    def _frame_indices(self, episode: int, frame_indices) -> np.ndarray:
        if not 0 <= episode < len(self):
            raise UsageError(f"{self.root}: no episode {episode} (the dataset has episodes 0..{len(self) - 1})")
        indices = np.asarray(frame_indices)
        if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
            raise UsageError(f"{self.root}: frame indices must be a 1-D array of integers, got shape "
                             f"{indices.shape} of {indices.dtype}")
        length = self.episode_length(episode)
        bad = indices[(indices < 0) | (indices >= length)]
        if len(bad):
            raise UsageError(f"{self.root}: episode {episode} has frames 0..{length - 1}; frame index {int(bad[0])} "
                             "is outside it")
        return indices.astype(np.int64)

    def _decode(self, episode: int, video_key: str, frame_indices: np.ndarray) -> np.ndarray:
        path, first = self.video_location(episode, video_key)
        return self.video.decode(path, (first + frame_indices) / self.fps, self.fps)

    def video_location(self, episode: int, video_key: str) -> tuple[Path, int]:
        """The mp4 holding ``video_key`` of ``episode`` and the index of the episode's first frame in it."""
        row = self.episodes.iloc[episode]
        prefix = f"videos/{video_key}/"
        if prefix + "chunk_index" not in row:
            raise DatasetFormatError(f"{self.root / fmt.EPISODES_PATH}: no video {video_key!r}")
        path = self.root / self.info["video_path"].format(video_key=video_key,
                                                          chunk_index=int(row[prefix + "chunk_index"]),
                                                          file_index=int(row[prefix + "file_index"]))
        return path, round(float(row[prefix + "from_timestamp"]) * self.fps)

    def value_maps(self, episode: int, camera: str, frame_indices: np.ndarray) -> np.ndarray:
        """(N, H, W) float32 heat in [0, 1] (docs/method.md §4) decoded from ``observation.value_maps.<camera>``."""
        grey = self.frames(episode, fmt.value_map_key(camera), frame_indices)
        return grey.mean(axis=-1, dtype=np.float32) / 255.0


def _read_stats(path: Path) -> dict:
    """``meta/stats.json`` ({} where a dataset has none); a damaged one is refused by name."""
    if not path.is_file():
        return {}
    try:
        stats = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetFormatError(f"{path}: unreadable JSON ({err}); aim.data.DatasetWriter(root, fps, "
                                 "mode='append'), opened and closed, rewrites it from the episodes table") from err
    if not isinstance(stats, dict):
        raise DatasetFormatError(f"{path}: expected a mapping of feature -> statistics, got {type(stats).__name__}")
    return stats


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _read_parquet(path: Path) -> pa.Table:
    if not path.is_file():
        raise DatasetFormatError(f"{path}: parquet file is missing")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise DatasetFormatError(f"{path}: cannot read parquet ({err})") from err

