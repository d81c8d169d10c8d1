"""Training on LeRobot v3.0 datasets as LeRobot users have them (written by LeRobot's own writer:
AV1, 1 to 4 cameras, no calibration, no value maps): the model without the value stream trains;
asking for the value stream is a one-line error that says how to get value maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aim.cli import main
from aim.data import ClipDataset, DatasetReader
from aim.errors import ConfigError
from aim.runtime.bundle import load_bundle
from aim.runtime.monitor import read_metrics
from aim.runtime.preprocessing import canvas_layout
from aim.train import load_config, train
from tests.data.helpers import write_lerobot_style_dataset

OVERRIDES = ["data.view_size=[8, 8]", "data.frame_stride=2", "data.cache_clips=true", "train.steps=2",
             "train.batch_size=2", "train.micro_batch_size=2", "schedule.warmup_steps=1", "checkpoint.every=2",
             "log.every=1", "log.sample_every=0", "log.progress=false"]


@pytest.mark.parametrize("cameras", [("top",), ("top", "wrist"), ("top", "left", "right"),
                                     ("high", "low", "left", "right")])
def test_a_dataset_without_calibration_trains_without_the_value_stream(tmp_path, cameras):
    root = tmp_path / "ds"
    write_lerobot_style_dataset(root, cameras=cameras)
    reader = DatasetReader(root)
    assert reader.cameras == list(cameras) and not reader.has_calibration and not reader.has_value_maps
    config = load_config(overrides=[f"data.root={root}", "model.value_stream=false", *OVERRIDES])
    result = train(config, tmp_path / "run")
    metrics = read_metrics(tmp_path / "run")
    assert len(metrics) == 2 and all(np.isfinite(m["loss/total"]) for m in metrics)
    bundle = load_bundle(tmp_path / "run")
    assert bundle.cameras == list(cameras) and not bundle.model.config.value_stream
    assert sorted(bundle.text_encoder.tasks) == ["fold the towel", "open the drawer"]  # no task ids: the texts
    item = ClipDataset(reader, 5, frame_stride=2, layout=bundle.layout)[0]
    assert "intrinsics" not in item and item["frames"].shape[-2:] == (bundle.layout.height, bundle.layout.width)
    assert result.last_step == 2


def test_canvas_layouts_place_every_view():
    views = {name: torch.full((3, 8, 8), float(i + 1)) for i, name in enumerate("abcd")}
    for count, (height, width) in {1: (8, 8), 2: (8, 16), 3: (12, 8), 4: (16, 16)}.items():
        cameras = list("abcd")[:count]
        layout = canvas_layout(cameras, (8, 8), None)
        canvas = layout.pack({c: views[c] for c in cameras})
        assert canvas.shape == (3, height, width)
        assert sorted(canvas.unique().tolist()) == [float(i + 1) for i in range(count)]  # no gaps, every view
    with pytest.raises(ValueError, match="packs 1 to 4 cameras, got 5"):
        canvas_layout(list("abcde"), (8, 8), None)


def test_the_value_stream_on_a_dataset_without_value_maps_says_how_to_get_them(tmp_path, capsys):
    root = tmp_path / "ds"
    write_lerobot_style_dataset(root)
    with pytest.raises(ConfigError, match="model.value_stream=true needs value maps"):
        train(load_config(overrides=[f"data.root={root}", *OVERRIDES]), tmp_path / "run")
    assert main(["train", str(tmp_path / "cli"), f"data.root={root}", *OVERRIDES]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.value_stream=false" in err and "convert-robotwin" in err
