"""``DatasetWriter``: episodes in, a LeRobot v3.0 dataset (``aim.data.lerobot_format``) out.

Video files: consecutive episodes share one mp4 per video key (LeRobot v3.0) until a file holds
``episodes_per_video_file`` episodes or would grow past ``video_file_mb``; all keys start a new
file together. An episode is encoded on its own, then its packets are appended to the current
file (``aim.data.video.append_video``: no re-encoding, but the file is copied, so an append costs
the file's size; the limits bound it). ``episodes_per_video_file=1`` gives one file per episode.

Crash safety: an episode's data parquet and videos are written first (each under a temporary
name, then renamed); the metadata is rewritten after them, ``meta/info.json`` last and by
rename. ``info.json``'s totals are what readers trust, so a crash never leaves a dataset that
claims an episode whose files are not complete; leftovers of an unfinished episode are
overwritten by the next append. A writer that appends to an existing dataset starts a new video
file, so it never rewrites the files of episodes already claimed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aim.data import lerobot_format as fmt
from aim.data.episode import Episode
from aim.data.stats import STATS, episode_stats, merge_stats
from aim.data.video import VideoCodec, append_video, encode_video
from aim.errors import AlreadyExistsError, UsageError

MODES = ("create", "overwrite", "append")


class DatasetWriter:
    """Writes episodes to ``root``; use as a context manager or call :meth:`close`.

    mode: "create" (``root`` must be missing or empty), "overwrite" (the dataset folders
    ``meta/``, ``data/``, ``videos/`` under ``root`` are removed first) or "append" (continue an
    existing dataset; cameras, shapes and fps must match). ``meta_every`` rewrites the metadata
    after that many episodes (1: after every episode, the safest; larger: fewer rewrites).
    ``episodes_per_video_file`` and ``video_file_mb`` limit how many episodes share an mp4.
    ``frame_every`` k > 1 records that the images were rendered every k-th step only, the rows in
    between repeating the last rendered row's images, value maps and extrinsics (``meta/info.json``,
    ``aim.frame_every``; readers start clips on rendered rows only). ``render`` records the
    simulator's rendering settings (``aim.render``: evaluation renders as the data was rendered);
    ``action_space`` what the actions are, beyond their channel names (``aim.action_space``, e.g.
    ``{"kind": "ee", "frame": "first_pose"}``: evaluation acts in the same space). Appending to a
    dataset recorded with other ``frame_every``, ``render`` or ``action_space`` is refused.
    """

    def __init__(self, root: str | Path, fps: int, *, mode: str = "create", codec: VideoCodec | None = None,
                 robot_type: str = "unknown", meta_every: int = 1, episodes_per_video_file: int = 20,
                 video_file_mb: float = 100.0, frame_every: int = 1, render: dict | None = None,
                 action_space: dict | None = None) -> None:
        if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
            raise UsageError(f"DatasetWriter: fps must be a positive integer, got {fps!r}")
        if mode not in MODES:
            raise UsageError(f"DatasetWriter: mode must be one of {MODES}, got {mode!r}")
        if frame_every < 1:
            raise UsageError(f"DatasetWriter: frame_every must be >= 1, got {frame_every}")
        if episodes_per_video_file < 1 or video_file_mb <= 0:
            raise UsageError(f"DatasetWriter: episodes_per_video_file must be >= 1 and video_file_mb > 0, got "
                             f"{episodes_per_video_file} and {video_file_mb}")
        self.root = Path(root)
        self.fps = int(fps)
        self.frame_every = int(frame_every)
        self.render = dict(render or {})
        self.action_space = dict(action_space or {})
        self.codec = codec or VideoCodec()
        self.robot_type = robot_type
        self.meta_every = max(1, int(meta_every))
        self.episodes_per_video_file = int(episodes_per_video_file)
        self.video_file_mb = float(video_file_mb)
        # The mp4 the next episode joins (number n is chunk n // CHUNKS_SIZE, file n % CHUNKS_SIZE),
        # how many episodes and frames it holds; None: the next episode starts a new file.
        self._video_file = -1
        self._video_file_episodes: int | None = None
        self._video_file_frames = 0
        self._episodes: list[dict] = []
        self._tasks: dict[str, int] = {}
        self._features: dict | None = None
        self._cameras: list[str] = []
        self._unflushed = 0
        self._prepare(mode)

    def _prepare(self, mode: str) -> None:
        has_content = self.root.is_dir() and any(self.root.iterdir())
        if mode == "create" and has_content:
            raise AlreadyExistsError(f"{self.root}: not empty; pass mode='overwrite' or mode='append'")
        if mode == "overwrite":
            for sub in ("meta", "data", "videos"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        if mode == "append" and (self.root / fmt.INFO_PATH).is_file():
            self._load_existing()
        self.root.mkdir(parents=True, exist_ok=True)

    def _load_existing(self) -> None:
        info = fmt.read_info(self.root)
        if int(info["fps"]) != self.fps:
            raise ValueError(f"{self.root / fmt.INFO_PATH}: fps {info['fps']} differs from the writer's {self.fps}")
        existing_every = fmt.frame_every(info)
        if existing_every != self.frame_every:
            raise ValueError(f"{self.root / fmt.INFO_PATH}: images rendered every {existing_every} steps, but the "
                             f"writer renders every {self.frame_every}")
        existing_render = fmt.render_settings(info)
        if existing_render != self.render:
            raise ValueError(f"{self.root / fmt.INFO_PATH}: views rendered with {existing_render or 'the defaults'}, but "
                             f"the writer's episodes were rendered with {self.render or 'the defaults'}")
        existing_actions = fmt.action_space(info)
        if existing_actions != self.action_space:
            raise ValueError(f"{self.root / fmt.INFO_PATH}: actions recorded as {existing_actions or 'unspecified'}, but "
                             f"the writer's are {self.action_space or 'unspecified'}")
        self._features = info["features"]
        self._cameras = list(info.get("aim", {}).get("cameras", []))
        tasks = pd.read_parquet(self.root / fmt.TASKS_PATH)
        self._tasks = {str(task): int(i) for task, i in zip(tasks.index, tasks["task_index"])}
        table = pq.read_table(self.root / fmt.EPISODES_PATH).to_pylist()
        self._episodes = table[: int(info["total_episodes"])]
        key = fmt.image_key(self._cameras[0])
        self._video_file = max((fmt.file_number(e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"])
                                for e in self._episodes), default=-1)

    def add_episode(self, episode: Episode) -> int:
        """Write one episode's files, then (every ``meta_every`` episodes) the metadata; returns its index."""
        episode.validate()
        index = len(self._episodes)
        self._check_features(episode)
        task_index = self._tasks.setdefault(episode.instruction, len(self._tasks))
        start = sum(int(e["length"]) for e in self._episodes)
        row = self._write_data(episode, index, start, task_index)
        row.update(self._write_videos(episode))
        self._episodes.append(row)
        self._unflushed += 1
        if self._unflushed >= self.meta_every:
            self.flush()
        return index

    def _write_videos(self, episode: Episode) -> dict:
        """Encode the episode's videos, append them to the current files; its ``videos/...`` columns."""
        encoded = {}
        for cam in self._cameras:
            for key, frames in self._video_frames(episode, cam):
                encoded[key] = self.root / "videos" / key / "incoming.mp4"
                encode_video(encoded[key], frames, self.fps, self.codec)
        number = self._video_file
        if self._video_file_is_full(encoded):
            number, self._video_file_episodes, self._video_file_frames = number + 1, 0, 0
            for key in encoded:  # leftovers of a crashed run that no episode claims
                fmt.video_file(self.root, key, number).unlink(missing_ok=True)
        offset = self._video_file_frames / self.fps
        chunk, file = fmt.chunk_and_file(number)
        columns = {}
        for key, path in encoded.items():
            append_video(fmt.video_file(self.root, key, number), path, offset)
            columns.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                            f"videos/{key}/from_timestamp": offset,
                            f"videos/{key}/to_timestamp": offset + episode.length / self.fps})
        self._video_file = number
        self._video_file_episodes += 1
        self._video_file_frames += episode.length
        return columns

    def _video_file_is_full(self, incoming: dict[str, Path]) -> bool:
        """Whether the next episode's videos (``incoming``, by key) must start a new file."""
        if self._video_file_episodes is None or self._video_file_episodes >= self.episodes_per_video_file:
            return True
        limit = self.video_file_mb * 2**20
        return any(fmt.video_file(self.root, key, self._video_file).stat().st_size + path.stat().st_size > limit
                   for key, path in incoming.items())

    def _video_frames(self, episode: Episode, cam: str):
        yield fmt.image_key(cam), episode.images[cam]
        if episode.value_maps:
            heat = np.clip(np.asarray(episode.value_maps[cam], dtype=np.float32), 0.0, 1.0)
            grey = np.rint(heat * 255.0).astype(np.uint8)
            yield fmt.value_map_key(cam), np.repeat(grey[..., None], 3, axis=-1)

    def _check_features(self, episode: Episode) -> None:
        features = self._features_of(episode)
        if self._features is None:
            self._features = features
            self._cameras = sorted(episode.images)
        elif features != self._features:
            changed = sorted(k for k in set(features) | set(self._features)
                             if features.get(k) != self._features.get(k))
            raise ValueError(f"{self.root}: episode features differ from the dataset's in {changed}")

    def _features_of(self, episode: Episode) -> dict:
        def vector(dim: int, names=None) -> dict:
            return {"dtype": "float32", "shape": [dim], "names": names}

        features = {
            fmt.ACTION: vector(episode.actions.shape[1], None if episode.action_names is None
                               else list(episode.action_names)),
            fmt.STATE: vector(episode.proprio.shape[1]),
        }
        for cam in sorted(episode.images):
            h, w = episode.images[cam].shape[1:3]
            keys = [fmt.image_key(cam)] + ([fmt.value_map_key(cam)] if episode.value_maps else [])
            for key in keys:
                features[key] = {
                    "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                    "info": {"video.height": h, "video.width": w, "video.codec": self.codec.name,
                             "video.pix_fmt": self.codec.pix_fmt, "video.is_depth_map": False,
                             "video.fps": self.fps, "video.channels": 3, "has_audio": False},
                }
            features[fmt.extrinsics_key(cam)] = vector(16)
        features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
        for name in ("frame_index", "episode_index", "index", "task_index"):
            features[name] = {"dtype": "int64", "shape": [1], "names": None}
        return features

    def _write_data(self, episode: Episode, index: int, start: int, task_index: int) -> dict:
        t = episode.length
        frame_index = np.arange(t, dtype=np.int64)
        columns = {
            fmt.ACTION: _fixed_list(episode.actions),
            fmt.STATE: _fixed_list(episode.proprio),
            **{fmt.extrinsics_key(cam): _fixed_list(np.asarray(episode.extrinsics[cam]).reshape(t, 16))
               for cam in self._cameras},
            "timestamp": pa.array((frame_index / self.fps).astype(np.float32)),
            "frame_index": pa.array(frame_index),
            "episode_index": pa.array(np.full(t, index, dtype=np.int64)),
            "index": pa.array(start + frame_index),
            "task_index": pa.array(np.full(t, task_index, dtype=np.int64)),
        }
        path = fmt.data_file(self.root, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(pa.table(columns), tmp)
        tmp.replace(path)
        chunk, file = fmt.chunk_and_file(index)  # one data file per episode
        row = {
            "episode_index": index, "tasks": [episode.instruction], "task_name": episode.task, "seed": episode.seed,
            "source": episode.source,
            "instructions": [episode.instruction, *episode.paraphrases],
            "unseen_instructions": list(episode.unseen_instructions),
            "length": t,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": start, "dataset_to_index": start + t,
        }
        for cam in self._cameras:
            row[fmt.intrinsics_column(cam)] = np.asarray(episode.intrinsics[cam], dtype=np.float64).reshape(9).tolist()
        for feature, values in ((fmt.ACTION, episode.actions), (fmt.STATE, episode.proprio)):
            for stat, value in episode_stats(values).items():
                row[f"stats/{feature}/{stat}"] = value.tolist()
        return row

    def flush(self) -> None:
        """Rewrite tasks, episodes and stats, then ``meta/info.json`` (last: it carries the totals)."""
        if not self._episodes:
            return
        meta = self.root / "meta"
        tasks = pd.DataFrame({"task_index": list(self._tasks.values())},
                             index=pd.Index(list(self._tasks), name="task"))
        _replace(meta / "tasks.parquet", lambda p: tasks.to_parquet(p))
        episodes = pa.Table.from_pylist(self._episodes)
        _replace(self.root / fmt.EPISODES_PATH, lambda p: pq.write_table(episodes, p))
        stats = {}
        for feature in fmt.STATS_FEATURES:
            parts = [{s: np.asarray(e[f"stats/{feature}/{s}"]) for s in STATS} for e in self._episodes]
            stats[feature] = {k: v.tolist() for k, v in merge_stats(parts).items()}
        fmt.write_json_atomic(self.root / fmt.STATS_PATH, stats)
        total_frames = sum(int(e["length"]) for e in self._episodes)
        fmt.write_json_atomic(self.root / fmt.INFO_PATH, {
            "codebase_version": fmt.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self._episodes),
            "total_frames": total_frames,
            "total_tasks": len(self._tasks),
            "chunks_size": fmt.CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": self.video_file_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self._episodes)}"},
            "data_path": fmt.DATA_PATH,
            "video_path": fmt.VIDEO_PATH,
            "features": self._features,
            "aim": {"cameras": self._cameras,
                    "frame_every": self.frame_every,
                    "render": self.render,
                    "action_space": self.action_space,
                    "value_maps": "grey uint8 = round(255 * heat), heat in [0, 1], replicated to RGB",
                    "extrinsics": "world-to-camera, OpenCV axes, 4x4 row-major per frame",
                    "intrinsics": "pixels, 3x3 row-major per episode (episodes table)"},
        })
        self._unflushed = 0

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """(T, D) floats as a parquet fixed-size list column of float32, the form LeRobot reads."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)
