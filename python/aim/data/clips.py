"""``ClipDataset``: training clips (multi-view canvas frames, value maps, actions, proprio, instruction).

A clip covers ``frames_per_clip * frame_stride`` consecutive steps of one episode (clips never
cross episodes): frames (and value maps, extrinsics) at every ``frame_stride``-th step from the
start, actions and proprio at every step. This lets the video run slower than the actions, as
in the reference setup (docs/method.md §2: video 12.5 Hz, actions 50 Hz, ``frame_stride`` 4). In a dataset
whose images were rendered every k-th step only (``DatasetReader.frame_every``), clips start on
rendered rows (every lcm(clip_step, k) steps) and ``frame_stride`` must be a multiple of k, so a
clip never reads a repeated row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from aim.data import lerobot_format as fmt
from aim.data.canvas import CanvasLayout
from aim.data.reader import DatasetReader
from aim.data.video_backends import VideoBackend

Tensor = torch.Tensor


class ClipDataset(torch.utils.data.Dataset):
    """Clips of a dataset, indexed by (episode, start step) with starts ``clip_step`` apart.

    Item (T = frames_per_clip, S = T * frame_stride, V cameras in layout order):
    ``frames`` (T, 3, Hc, Wc) float in [0, 1], the views packed by ``layout``; ``value_maps``
    (T, 3, Hc, Wc), the heat replicated to 3 channels (docs/method.md §4), when the dataset has them;
    ``actions`` (S, A) and ``proprio`` (S, P), z-scored with ``meta/stats.json`` when
    ``normalize``; ``intrinsics`` (V, 3, 3) and ``extrinsics`` (T, V, 4, 4) of each view's own
    image, when the dataset has calibration (``reader.has_calibration``; only value maps and the
    Stage II reward need it); ``task`` (the task id), ``instruction`` (str: one of the episode's
    instructions, drawn per clip from (episode, start), so a clip reads the same one every time and
    the clips of an episode with paraphrases cover them all), ``task_index``, ``episode_index``, ``start`` (int).

    ``video_backend`` and ``skip_bad`` go to the :class:`DatasetReader` opened for a path (see
    there); with ``skip_bad``, clips come from ``reader.valid_episodes`` only and
    ``reader.skipped`` says what was left out and why.
    """

    def __init__(self, root: str | Path | DatasetReader, frames_per_clip: int, *, frame_stride: int = 1,
                 clip_step: int = 1, layout: CanvasLayout | None = None, normalize: bool = False,
                 video_backend: str | VideoBackend | None = None, skip_bad: bool = False) -> None:
        if isinstance(root, DatasetReader):
            self.reader = root
        else:
            self.reader = DatasetReader(root, video_backend=video_backend, skip_bad=skip_bad)
        if frames_per_clip < 1 or frame_stride < 1 or clip_step < 1:
            raise ValueError("ClipDataset: frames_per_clip, frame_stride and clip_step must be >= 1")
        self.frames_per_clip, self.frame_stride = frames_per_clip, frame_stride
        self.steps = frames_per_clip * frame_stride
        self.layout = layout or self._default_layout()
        missing = set(self.layout.cameras) - set(self.reader.cameras)
        if missing:
            raise ValueError(f"ClipDataset: layout cameras {sorted(missing)} are not in {self.reader.root} "
                             f"(cameras: {self.reader.cameras})")
        self.normalize = normalize
        if normalize and not all(f in self.reader.stats for f in fmt.STATS_FEATURES):
            raise ValueError(f"ClipDataset: normalize needs {self.reader.root / fmt.STATS_PATH} with "
                             f"{list(fmt.STATS_FEATURES)}")
        every = self.reader.frame_every
        if frame_stride % every:
            raise ValueError(f"ClipDataset: {self.reader.root} has images rendered every {every} steps, so "
                             f"frame_stride must be a multiple of {every}, got {frame_stride}")
        start_step = math.lcm(clip_step, every)
        self.index = [(e, s) for e in self.reader.valid_episodes
                      for s in range(0, self.reader.episode_length(e) - self.steps + 1, start_step)]

    def _default_layout(self) -> CanvasLayout:
        """The paper's head-and-wrists packing when the dataset has exactly those three cameras."""
        feature = self.reader.info["features"][fmt.image_key(self.reader.cameras[0])]
        h, w = feature["shape"][:2]
        layout = CanvasLayout.head_and_wrists(h, w)
        if sorted(layout.cameras) != sorted(self.reader.cameras):
            raise ValueError(f"ClipDataset: cameras {self.reader.cameras} need an explicit layout "
                             f"(the default packs {layout.cameras})")
        return layout

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        episode, start = self.index[i]
        reader = self.reader
        steps = np.arange(start, start + self.steps)
        frame_steps = steps[:: self.frame_stride]
        cameras = self.layout.cameras
        images = {c: _to_chw(reader.frames(episode, fmt.image_key(c), frame_steps)) / 255.0 for c in cameras}
        data = reader.episode_data(episode)
        instructions = reader.instructions(episode)
        item = {
            "frames": self.layout.pack(images),
            "actions": self._vector(data, fmt.ACTION, steps),
            "proprio": self._vector(data, fmt.STATE, steps),
            "task": reader.task_name(episode),
            "instruction": instructions[int(np.random.default_rng([episode, start]).integers(len(instructions)))],
            "task_index": int(data["task_index"][start]),
            "episode_index": episode,
            "start": start,
        }
        if reader.has_calibration:
            item["intrinsics"] = torch.stack([torch.from_numpy(reader.intrinsics(episode, c)) for c in cameras]).float()
            item["extrinsics"] = torch.stack([torch.from_numpy(reader.extrinsics(episode, c)[frame_steps])
                                              for c in cameras], dim=1).float()
        if reader.has_value_maps:
            heat = {c: torch.from_numpy(reader.value_maps(episode, c, frame_steps))[:, None].expand(-1, 3, -1, -1)
                    for c in cameras}
            item["value_maps"] = self.layout.pack(heat)
        return item

    def _vector(self, data: dict, feature: str, steps: np.ndarray) -> Tensor:
        values = torch.from_numpy(data[feature][steps].astype(np.float32))
        if self.normalize:
            stats = self.reader.stats[feature]
            mean, std = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
            values = ((values - mean) / std.clamp_min(1e-8)).float()
        return values


def _to_chw(frames: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 to (N, 3, H, W) float32."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float()
