"""A tiny dataset and config shared by the training tests: three cameras of 16 x 16 pixels (shrunk
to 8 x 8 on the canvas), two tasks, the two-layer tiny model; a step takes well under a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aim.data import DatasetWriter, VideoCodec
from aim.train import TrainConfig, load_config
from tests.data.helpers import synthetic_episode

EPISODE_LENGTHS = (14, 17, 12)


def make_dataset(root: Path, seed: int = 0) -> Path:
    """Three random episodes of two tasks with value maps, 16 x 16 views, lossless videos."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, 10, codec=VideoCodec.lossless()) as writer:
        for i, length in enumerate(EPISODE_LENGTHS):
            task = "reach" if i % 2 else "push"
            writer.add_episode(synthetic_episode(rng, length, 16, 16, task=task, instruction=f"{task} the block"))
    return root


def tiny_overrides(root: Path) -> list[str]:
    return [
        f"data.root={root}", "data.view_size=[8, 8]", "data.frame_stride=2", "data.cache_clips=true",
        "train.steps=6", "train.batch_size=4", "train.micro_batch_size=2",
        "schedule.warmup_steps=2", "checkpoint.every=2", "log.every=1", "log.sample_every=0", "log.progress=false",
    ]


def tiny_config(root: Path, *overrides: str) -> TrainConfig:
    """The tiny model on the dataset at ``root`` (6 steps of 4 clips, checkpoints every 2 steps)."""
    return load_config(overrides=[*tiny_overrides(root), *overrides])
