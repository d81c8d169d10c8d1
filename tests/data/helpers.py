"""Synthetic episodes for the data tests: random frames, heat, actions and moving cameras; and a
dataset laid out as LeRobot's own writer lays it out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aim.data import Episode
from aim.data import lerobot_format as fmt
from aim.data.stats import episode_stats, merge_stats
from aim.data.video import VideoCodec, encode_video

CAMERAS = ("head", "left_wrist", "right_wrist")


def synthetic_episode(rng: np.random.Generator, length: int, height: int = 16, width: int = 24,
                      task: str = "pick-place", instruction: str = "pick up the block",
                      value_maps: bool = True) -> Episode:
    intrinsics = np.array([[20.0, 0, (width - 1) / 2], [0, 20.0, (height - 1) / 2], [0, 0, 1]])
    extrinsics = np.tile(np.eye(4), (length, 1, 1))
    extrinsics[:, :3, 3] = rng.normal(size=(length, 3))
    return Episode(
        task=task,
        instruction=instruction,
        images={c: rng.integers(0, 256, (length, height, width, 3), dtype=np.uint8) for c in CAMERAS},
        value_maps={c: rng.random((length, height, width)).astype(np.float32) for c in CAMERAS} if value_maps else {},
        actions=rng.normal(size=(length, 4)).astype(np.float32),
        proprio=rng.normal(size=(length, 5)).astype(np.float32),
        intrinsics={c: intrinsics for c in CAMERAS},
        extrinsics={c: extrinsics for c in CAMERAS},
    )


def write_lerobot_style_dataset(root, lengths=(14, 17, 12), cameras=("top", "wrist"), size=16, fps=10,
                                seed: int = 0):
    """A v3.0 dataset laid out as LeRobot's own writer (``LeRobotDataset.create``, ``add_frame``,
    ``save_episode``) lays it out: AV1 videos with every episode of a camera in one mp4, one data
    parquet for all episodes, per-episode stats columns, and no camera calibration, end poses or
    value maps. Returns the written actions per episode."""
    root, rng = Path(root), np.random.default_rng(seed)
    actions = [rng.normal(size=(n, 6)).astype(np.float32) for n in lengths]
    states = [rng.normal(size=(n, 6)).astype(np.float32) for n in lengths]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    av1 = VideoCodec("libsvtav1", "yuv420p", {"crf": "30", "preset": "10"})
    for camera in cameras:
        frames = rng.integers(0, 256, (int(starts[-1]), size, size, 3), dtype=np.uint8)
        encode_video(fmt.video_file(root, fmt.image_key(camera), 0), frames, fps, av1)
    columns = {
        "action": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(actions).reshape(-1)), 6),
        "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(states).reshape(-1)), 6),
        "timestamp": pa.array(np.concatenate([np.arange(n) / fps for n in lengths]).astype(np.float32)),
        "frame_index": pa.array(np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)),
        "episode_index": pa.array(np.concatenate([np.full(n, e) for e, n in enumerate(lengths)]).astype(np.int64)),
        "index": pa.array(np.arange(starts[-1], dtype=np.int64)),
        "task_index": pa.array(np.concatenate([np.full(n, e % 2) for e, n in enumerate(lengths)]).astype(np.int64)),
    }
    data = fmt.data_file(root, 0)
    data.parent.mkdir(parents=True)
    pq.write_table(pa.table(columns), data)
    tasks = ["fold the towel", "open the drawer"]
    episodes = []
    for e, n in enumerate(lengths):
        row = {"episode_index": e, "tasks": [tasks[e % 2]], "length": n, "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": int(starts[e]), "dataset_to_index": int(starts[e + 1]),
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for camera in cameras:
            key = f"videos/{fmt.image_key(camera)}/"
            row.update({key + "chunk_index": 0, key + "file_index": 0, key + "from_timestamp": starts[e] / fps,
                        key + "to_timestamp": starts[e + 1] / fps})
        for stat, value in episode_stats(actions[e]).items():
            row[f"stats/action/{stat}"] = value.tolist()
        episodes.append(row)
    (root / fmt.EPISODES_PATH).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / fmt.EPISODES_PATH)
    pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(tasks, name="task")).to_parquet(root / fmt.TASKS_PATH)
    stats = {"action": merge_stats([episode_stats(a) for a in actions]),
             "observation.state": merge_stats([episode_stats(s) for s in states])}
    fmt.write_json_atomic(root / fmt.STATS_PATH, {f: {k: v.tolist() for k, v in s.items()} for f, s in stats.items()})
    video = {"dtype": "video", "shape": [size, size, 3], "names": ["height", "width", "channels"],
             "info": {"video.codec": "av1", "video.pix_fmt": "yuv420p", "video.fps": fps}}
    features = {"action": {"dtype": "float32", "shape": [6], "names": [f"motor_{i}" for i in range(6)]},
                "observation.state": {"dtype": "float32", "shape": [6], "names": [f"motor_{i}" for i in range(6)]},
                **{fmt.image_key(c): video for c in cameras},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None},
                **{k: {"dtype": "int64", "shape": [1], "names": None}
                   for k in ("frame_index", "episode_index", "index", "task_index")}}
    fmt.write_json_atomic(root / fmt.INFO_PATH, {
        "codebase_version": "v3.0", "robot_type": "so100", "total_episodes": len(lengths),
        "total_frames": int(starts[-1]), "total_tasks": 2, "chunks_size": 1000, "fps": fps,
        "splits": {"train": f"0:{len(lengths)}"}, "data_path": fmt.DATA_PATH, "video_path": fmt.VIDEO_PATH,
        "features": features, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500})
    return actions
