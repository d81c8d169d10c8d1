"""A picture for people to check value-map labels: each view with its heat overlaid in red.

``aim dataset preview PATH --episode E --frame T --out picture.png`` writes one row of views:
frame pixels blended towards red by ``ALPHA * heat``, so where the label is 0 the frame shows
unchanged and a peak of 1 is clearly red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aim.data import lerobot_format as fmt
from aim.data.reader import DatasetReader
from aim.errors import UsageError

ALPHA = 0.7
RED = np.array([255.0, 0.0, 0.0])


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``frame`` (H, W, 3) uint8 blended towards red by ALPHA * heat (H, W) in [0, 1]."""
    weight = ALPHA * np.clip(heat, 0.0, 1.0)[..., None]
    return np.rint(frame * (1.0 - weight) + RED * weight).astype(np.uint8)


def preview(root: str | Path, episode: int, frame: int) -> np.ndarray:
    """(H, sum of W, 3) uint8: every camera's frame with its value map overlaid, left to right."""
    reader = DatasetReader(root)
    if not reader.has_value_maps:
        raise UsageError(f"{reader.root}: the dataset has no value maps to preview")
    if not 0 <= episode < len(reader) or not 0 <= frame < reader.episode_length(episode):
        raise UsageError(f"{reader.root}: no frame {frame} in episode {episode}")
    index = np.array([frame])
    views = [overlay(reader.frames(episode, fmt.image_key(c), index)[0], reader.value_maps(episode, c, index)[0])
             for c in reader.cameras]
    height = max(v.shape[0] for v in views)
    return np.concatenate([np.pad(v, ((0, height - v.shape[0]), (0, 0), (0, 0))) for v in views], axis=1)
