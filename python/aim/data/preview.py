"""A picture for people to check value-map labels: each view as recorded and with its heat in magenta.

``aim dataset preview PATH --episode E --frame T --out picture.png`` writes a labelled grid, one
column per camera: the frame, then the frame blended towards ``HEAT_COLOUR`` by ``ALPHA * heat``,
so where the label is 0 the frame shows unchanged and a peak of 1 is clearly magenta (red would
vanish on Meta-World's red Sawyer arm). Views are upscaled by whole pixels
(``aim.data.picture_grid``) to at least ``VIEW_PIXELS`` a side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aim.data import lerobot_format as fmt
from aim.data.picture_grid import labelled_grid, scale_to, upscale
from aim.data.reader import DatasetReader
from aim.errors import UsageError

ALPHA = 0.7
HEAT_COLOUR = np.array([255.0, 0.0, 255.0])  # magenta
VIEW_PIXELS = 256  # the shortest side of a view in the preview, pixels


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``frame`` (H, W, 3) uint8 blended towards HEAT_COLOUR by ALPHA * heat (H, W) in [0, 1]."""
    weight = ALPHA * np.clip(heat, 0.0, 1.0)[..., None]
    return np.rint(frame * (1.0 - weight) + HEAT_COLOUR * weight).astype(np.uint8)


def preview(root: str | Path, episode: int, frame: int) -> np.ndarray:
    """(H, W, 3) uint8: a grid with a column per camera, rows the frame and the frame with its value map."""
    return labelled_grid(*preview_grid(root, episode, frame))


def preview_grid(root: str | Path, episode: int, frame: int) -> tuple[list[list[np.ndarray]], list[str], list[str], str]:
    """The cells (upscaled views), row labels, column labels (cameras) and title of :func:`preview`."""
    reader = DatasetReader(root)
    if not reader.has_value_maps:
        raise UsageError(f"{reader.root}: the dataset has no value maps to preview")
    if not 0 <= episode < len(reader) or not 0 <= frame < reader.episode_length(episode):
        raise UsageError(f"{reader.root}: no frame {frame} in episode {episode}")
    index = np.array([frame])
    frames = [reader.frames(episode, fmt.image_key(c), index)[0] for c in reader.cameras]
    heats = [reader.value_maps(episode, c, index)[0] for c in reader.cameras]
    factor = scale_to(VIEW_PIXELS, min(min(f.shape[:2]) for f in frames))
    rows = [[upscale(f, factor) for f in frames], [upscale(overlay(f, h), factor) for f, h in zip(frames, heats)]]
    height, width = frames[0].shape[:2]
    title = (f"{reader.root.name} · episode {episode} · frame {frame} · \"{reader.instruction(episode)}\" · "
             f"{width}x{height} px views shown {factor}x")
    return rows, ["frame", "value-map label"], list(reader.cameras), title
