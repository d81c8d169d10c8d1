"""The training data loader: the dataset's clips, in the resumable order of aim.train.data_order.

Clips come from :class:`aim.data.ClipDataset` with the bundle's canvas layout and as many pixel
frames as the clip structure needs; actions stay raw here and are normalised by
aim.runtime.preprocessing, the one place evaluation shares. ``data.cache_clips`` keeps decoded clips in
memory (per worker process), for small datasets trained for many epochs, where video decoding
would otherwise dominate the step.
"""

from __future__ import annotations

import torch

from aim.data import ClipDataset
from aim.data.reader import DatasetReader
from aim.errors import ConfigError
from aim.runtime.distributed import Distributed
from aim.runtime.preprocessing import clip_pixel_frames
from aim.train.config import TrainConfig
from aim.train.data_order import StepBatches


class CachedClips(torch.utils.data.Dataset):
    """``dataset`` with each item decoded once."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset
        self.items: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        if i not in self.items:
            self.items[i] = self.dataset[i]
        return self.items[i]


def clip_dataset(bundle, reader: DatasetReader, config: TrainConfig) -> torch.utils.data.Dataset:
    """The clips of the dataset at ``reader`` as the bundle's model takes them."""
    frames = clip_pixel_frames(bundle.tokenizer, bundle.structure)
    clips = ClipDataset(reader, frames, frame_stride=bundle.frame_stride, clip_step=config.data.clip_step,
                        layout=bundle.layout)
    if len(clips) == 0:
        longest = max((reader.episode_length(e) for e in reader.valid_episodes), default=0)
        raise ConfigError(f"{reader.root}: no episode is long enough for one clip of {frames * bundle.frame_stride} "
                          f"steps ({frames} frames, frame stride {bundle.frame_stride}; the longest episode has "
                          f"{longest} steps): lower data.num_chunks, data.frames_per_chunk or data.frame_stride")
    return CachedClips(clips) if config.data.cache_clips else clips


def training_loader(dataset: torch.utils.data.Dataset, config: TrainConfig, start_step: int,
                    info: Distributed) -> tuple[torch.utils.data.DataLoader, StepBatches]:
    """This process's micro-batches from ``start_step`` on, and the sampler that orders them."""
    t = config.train
    order = StepBatches(len(dataset), t.seed, start_step, t.steps, t.batch_size, t.micro_batch_size,
                        info.world_size, info.rank)
    workers = config.data.workers
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=order, num_workers=workers,
                                         persistent_workers=False, prefetch_factor=4 if workers else None)
    return loader, order
