"""Training clips: episode boundaries, canvas packing geometry, value maps, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aim.data import CanvasLayout, ClipDataset, DatasetWriter, VideoCodec, ViewSlot
from aim.ops.value_maps import render_value_maps, sample_value_maps
from tests.data.helpers import CAMERAS, synthetic_episode

FPS = 10
LENGTHS = (5, 9, 3, 8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    episodes = [synthetic_episode(rng, n, instruction=f"task {i}") for i, n in enumerate(LENGTHS)]
    root = tmp_path_factory.mktemp("clips") / "ds"
    with DatasetWriter(root, FPS, codec=VideoCodec.lossless()) as writer:
        for ep in episodes:
            writer.add_episode(ep)
    return root, episodes


@pytest.mark.parametrize("frames_per_clip,frame_stride,clip_step", [(2, 2, 1), (4, 1, 2), (3, 3, 1)])
def test_clips_never_cross_episodes(dataset, frames_per_clip, frame_stride, clip_step):
    root, episodes = dataset
    clips = ClipDataset(root, frames_per_clip, frame_stride=frame_stride, clip_step=clip_step)
    steps = frames_per_clip * frame_stride
    expected = [(e, s) for e, n in enumerate(LENGTHS) for s in range(0, n - steps + 1, clip_step)]
    assert clips.index == expected
    last = clips[len(clips) - 1]
    e, s = expected[-1]
    assert last["episode_index"] == e and s + steps <= LENGTHS[e]
    torch.testing.assert_close(last["actions"], torch.from_numpy(episodes[e].actions[s:s + steps]))
    assert last["frames"].shape[0] == frames_per_clip and last["proprio"].shape[0] == steps


def test_item_packs_views_into_the_default_canvas(dataset):
    root, episodes = dataset
    item = ClipDataset(root, 2, frame_stride=2)[4]  # episode 0 has starts 0, 1; then episode 1 from 0
    ep, frames = episodes[1], [2, 4]
    assert item["instruction"] == "task 1" and item["frames"].shape == (2, 3, 24, 24)
    head = torch.from_numpy(ep.images["head"][frames]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(item["frames"][:, :, :16], head)
    left = torch.from_numpy(ep.images["left_wrist"][frames]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(item["frames"][:, :, 16:, :12], F.avg_pool2d(left, 2))
    heat = torch.from_numpy(ep.value_maps["right_wrist"][frames])[:, None]
    torch.testing.assert_close(item["value_maps"][:, :, 16:, 12:], F.avg_pool2d(heat, 2).expand(-1, 3, -1, -1),
                               atol=1 / 255, rtol=0)
    assert item["intrinsics"].shape == (3, 3, 3) and item["extrinsics"].shape == (2, 3, 4, 4)
    torch.testing.assert_close(item["extrinsics"][:, 0], torch.from_numpy(ep.extrinsics["head"][frames]).float())


def test_normalize_uses_saved_stats(dataset):
    root, episodes = dataset
    clips = ClipDataset(root, 1, normalize=True)
    actions = np.concatenate([ep.actions for ep in episodes]).astype(np.float64)
    expected = (episodes[0].actions[0] - actions.mean(0)) / actions.std(0)
    torch.testing.assert_close(clips[0]["actions"][0], torch.from_numpy(expected).float())


def test_view_boxes_place_projected_points_on_the_packed_canvas():
    """Per-view value maps, packed, then sampled at the 3-D point through ``view_boxes``: each wrist
    view's projection (view pixel (28.5, 14.5), between four pixels) lands exactly on the centre of
    the canvas pixel that averages them, where the packed blob peaks."""
    layout = CanvasLayout.head_and_wrists(32, 48)
    intrinsics = torch.tensor([[30.0, 0, 23.5], [0, 30.0, 15.5], [0, 0, 1]]).expand(1, 3, 3, 3)
    extrinsics = torch.eye(4).expand(1, 1, 3, 4, 4).clone()
    extrinsics[0, 0, 1:, 0, 3] = 0.1
    point = torch.tensor([[[[1 / 6 - 0.1, -1 / 30, 1.0]]]])
    maps = render_value_maps(point, None, intrinsics, extrinsics, 32, 48, r_world=0.07, sigma_min=1.0,
                             sigma_max=20.0)
    canvas = layout.pack({cam: maps[0, :, v][:, None] for v, cam in enumerate(CAMERAS)})[:, 0]  # (T, Hc, Wc)
    assert canvas.shape == (1, 48, 48)
    boxes = layout.view_boxes({cam: (32, 48) for cam in CAMERAS})
    values, valid = sample_value_maps(canvas[None], point, intrinsics, extrinsics, **boxes)
    assert bool(valid.all()) and float(values[0, 0, 0, 0]) > 0.5
    for v, (row, col) in ((1, (39, 14)), (2, (39, 38))):
        slot = canvas[0, 32:, :24] if v == 1 else canvas[0, 32:, 24:]
        torch.testing.assert_close(values[0, 0, 0, v], canvas[0, row, col])
        assert float(canvas[0, row, col]) == float(slot.max())


def test_default_layout_needs_the_three_cameras(tmp_path):
    ep = synthetic_episode(np.random.default_rng(0), 3, value_maps=False)
    ep.images.pop("right_wrist")
    with DatasetWriter(tmp_path / "ds", FPS) as writer:
        writer.add_episode(ep)
    with pytest.raises(ValueError, match="explicit layout"):
        ClipDataset(tmp_path / "ds", 1)
    with pytest.raises(ValueError, match="not in"):
        ClipDataset(tmp_path / "ds", 1, layout=CanvasLayout.head_and_wrists(16, 24))
    two_views = CanvasLayout(16, 48, (ViewSlot("head", 0, 0), ViewSlot("left_wrist", 0, 24)))
    item = ClipDataset(tmp_path / "ds", 2, layout=two_views)[0]
    assert item["frames"].shape == (2, 3, 16, 48) and "value_maps" not in item
