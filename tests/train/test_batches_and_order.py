"""Preprocessing (canvas shrink, action window, latents) and the resumable data order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aim.data import CanvasLayout, ClipDataset
from aim.data.reader import DatasetReader
from aim.model.video_tokenizers import PixelPatchTokenizer
from aim.runtime.optim import lr_factor
from aim.runtime.preprocessing import (
    canvas_layout,
    clip_structure,
    clip_tensors,
    future_action_steps,
)
from aim.train.config import ScheduleConfig
from aim.train.data_order import StepBatches, micro_batch_generator
from aim.train.fresh_bundle import build_bundle
from tests.train.helpers import make_dataset, tiny_config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("batches") / "ds")


def test_shrunk_canvas_equals_pooling_the_full_canvas():
    views = {c: torch.rand(2, 3, 16, 24) for c in ("head", "left_wrist", "right_wrist")}
    full = CanvasLayout.head_and_wrists(16, 24).pack(views)
    small = canvas_layout(["head", "left_wrist", "right_wrist"], (16, 24), [4, 6]).pack(views)
    torch.testing.assert_close(small, F.avg_pool2d(full, 4))
    with pytest.raises(ValueError, match="integer factor"):
        canvas_layout(["head", "left_wrist", "right_wrist"], (16, 24), [6, 6])


def test_future_actions_are_those_leading_to_each_future_frame():
    # Frame i sits at step i s; the s actions leading to it are steps (i - 1) s .. i s - 1.
    tokenizer, stride = PixelPatchTokenizer(2), 3
    structure = clip_structure(tokenizer, stride, observation_frames=2, num_chunks=2, frames_per_chunk=2)
    window = future_action_steps(tokenizer, structure, stride)
    steps = list(range(window.start, window.stop))
    leading = [step for frame in range(2, structure.total_frames) for step in range((frame - 1) * stride, frame * stride)]
    assert steps == leading and structure.actions_per_frame == stride


def test_clip_tensors_encode_frames_value_maps_and_normalised_actions(dataset):
    config = tiny_config(dataset)
    reader = DatasetReader(dataset)
    bundle = build_bundle(config, reader)
    clips = ClipDataset(reader, bundle.structure.total_frames, frame_stride=bundle.frame_stride, layout=bundle.layout)
    batch = torch.utils.data.default_collate([clips[3], clips[7]])
    video, value, actions = clip_tensors(bundle, batch, "cpu")
    s = bundle.structure
    assert video.shape == (2, 12, s.total_frames, 6, 4) and value.shape == (2, 12, s.future_frames, 6, 4)
    # Pixel-patch latents are a reshaping: channel 0 is the top-left pixel of each 2 x 2 red block.
    torch.testing.assert_close(video[:, 0], batch["frames"][:, :, 0, ::2, ::2] * 2 - 1)
    torch.testing.assert_close(value[:, 0], batch["value_maps"][:, s.observation_frames:, 0, ::2, ::2] * 2 - 1)
    episode, start = clips.index[3]
    raw = reader.episode_data(episode)["action"][start:start + s.future_frames * s.actions_per_frame]
    mean, std = np.array(reader.stats["action"]["mean"]), np.array(reader.stats["action"]["std"])
    torch.testing.assert_close(actions[0], torch.from_numpy((raw - mean) / std).float())


def test_step_order_is_independent_of_processes_and_resumes():
    size, seed, steps = 7, 3, 5
    single = list(StepBatches(size, seed, 0, steps, 4, 2, world_size=1, rank=0))
    ranks = [list(StepBatches(size, seed, 0, steps, 4, 2, world_size=2, rank=r)) for r in range(2)]
    assert [b for pair in zip(*ranks) for b in pair] == single  # slot a P + r
    resumed = list(StepBatches(size, seed, 2, steps, 4, 2, world_size=1, rank=0))
    assert resumed == single[4:]
    stream = [i for b in single for i in b]
    assert sorted(stream[:7]) == list(range(7)) and sorted(stream[7:14]) == list(range(7))  # epochs are permutations
    assert stream[:7] != stream[7:14]
    a, b = micro_batch_generator(seed, 1, 0), micro_batch_generator(seed, 1, 1)
    assert not torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))


def test_schedule_warms_up_then_decays_to_the_floor():
    cosine = ScheduleConfig("cosine", warmup_steps=4, min_lr_ratio=0.1)
    factors = [lr_factor(s, cosine, 20) for s in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(x >= y for x, y in itertools.pairwise(factors[3:])) and factors[-1] == pytest.approx(0.1)
    assert lr_factor(15, ScheduleConfig("constant", 4), 20) == 1.0
