"""``aim.sim.collect``: expert episodes with labels, failures dropped and counted, resume."""

from __future__ import annotations

import numpy as np
import pytest

from aim.data import DatasetReader
from aim.data import lerobot_format as fmt
from aim.sim.collect import CollectSettings, collect

pytest.importorskip("metaworld")

# One view keeps the test short: CPU (EGL software) rendering costs about 0.12 s per view and step.
SETTINGS = CollectSettings(cameras=("corner",), height=64, width=64)


def test_collect_writes_labelled_episodes_and_resumes(tmp_path):
    report = collect(tmp_path / "ds", ["pick-place-v3"], [0, 1], SETTINGS, workers=2, progress=False)
    assert (report.written, report.failed, report.skipped) == (2, 0, 0)
    reader = DatasetReader(tmp_path / "ds")
    assert reader.has_value_maps and reader.instruction(0) == "pick place"
    assert list(reader.episodes["seed"]) == [0, 1]
    heat = reader.value_maps(0, "corner", np.arange(1))
    assert heat.max() > 0.5  # the upcoming grasp is drawn from the first frame on
    assert reader.info["features"][fmt.STATE]["shape"] == [4]
    assert reader.info["features"][fmt.ACTION]["names"] == ["x", "y", "z", "gripper"]  # target actions by default

    report = collect(tmp_path / "ds", ["pick-place-v3"], [1, 0], SETTINGS, progress=False)
    assert (report.written, report.failed, report.skipped) == (0, 0, 2)
    assert len(DatasetReader(tmp_path / "ds")) == 2


def test_failed_expert_episodes_are_dropped_and_counted(tmp_path):
    short = CollectSettings(cameras=("corner",), height=64, width=64, max_steps=5)
    report = collect(tmp_path / "ds", ["pick-place-v3"], [0], short, progress=False)
    assert (report.written, report.failed) == (0, 1)
    assert not (tmp_path / "ds" / fmt.INFO_PATH).exists()


def test_cli_collect_reports_counts(tmp_path, capsys):
    from aim.cli import main

    args = ["collect", str(tmp_path / "ds"), "--tasks", "pick-place-v3", "--seeds", "0", "--cameras", "corner",
            "--size", "64", "--max-steps", "5", "--no-progress"]
    assert main(args) == 0
    assert "0 episodes written, 1 failed (dropped), 0 already present" in capsys.readouterr().out


def test_an_interrupted_collect_resumes_without_rewriting_finished_episodes(tmp_path, monkeypatch):
    """The expert episode is replaced by synthetic episodes (the simulator is not what is tested): the first
    run is interrupted at seed 3 (seed 1's expert fails); the second finishes the rest and neither
    rolls out nor rewrites the episodes the first one finished."""
    from aim.sim import collect as collect_module
    from tests.data.helpers import synthetic_episode

    rolled_out, interrupt_at = [], [3]

    def fake_expert_episode(task, seed, settings):
        if seed in interrupt_at:
            raise KeyboardInterrupt
        rolled_out.append(seed)
        episode = synthetic_episode(np.random.default_rng(seed), 4 + seed, value_maps=False)
        episode.task, episode.seed = task, seed
        return None if seed == 1 else episode

    monkeypatch.setattr(collect_module, "expert_episode", fake_expert_episode)
    root, seeds = tmp_path / "ds", [0, 1, 2, 3, 4]
    with pytest.raises(KeyboardInterrupt):
        collect(root, ["reach-v3"], seeds, SETTINGS, progress=False)
    assert list(DatasetReader(root).episodes["seed"]) == [0, 2]
    finished = {path: (path.read_bytes(), path.stat().st_mtime_ns)
                for sub in ("data", "videos") for path in (root / sub).rglob("*") if path.is_file()}
    assert len(finished) >= 3  # data parquets and the videos

    rolled_out.clear()
    interrupt_at.clear()
    report = collect(root, ["reach-v3"], seeds, SETTINGS, progress=False)
    assert (report.written, report.failed, report.skipped) == (2, 1, 2)
    assert rolled_out == [1, 3, 4]  # the failed seed is tried again, the finished ones are not
    reader = DatasetReader(root)
    assert list(reader.episodes["seed"]) == [0, 2, 3, 4] and reader.skipped == {}
    for e, seed in enumerate([0, 2, 3, 4]):
        expected = synthetic_episode(np.random.default_rng(seed), 4 + seed, value_maps=False)
        np.testing.assert_array_equal(reader.episode_data(e)[fmt.ACTION], expected.actions)
    assert all((path.read_bytes(), path.stat().st_mtime_ns) == before for path, before in finished.items())


def test_rendering_every_kth_step_repeats_rendered_rows_and_clips_start_on_them(tmp_path):
    from aim.data import ClipDataset
    from aim.data.canvas import CanvasLayout, ViewSlot
    from aim.sim.collect import labelled_expert_episode

    every = CollectSettings(cameras=("corner",), height=32, width=32, frame_every=4)
    full = CollectSettings(cameras=("corner",), height=32, width=32)
    sparse_episode, _ = labelled_expert_episode("handle-press-v3", 0, every)
    full_episode, _ = labelled_expert_episode("handle-press-v3", 0, full)
    steps = np.arange(full_episode.length)
    rendered = steps // 4 * 4
    np.testing.assert_array_equal(sparse_episode.actions, full_episode.actions)
    np.testing.assert_array_equal(sparse_episode.images["corner"], full_episode.images["corner"][rendered])
    np.testing.assert_allclose(sparse_episode.value_maps["corner"], full_episode.value_maps["corner"][rendered])
    np.testing.assert_array_equal(sparse_episode.extrinsics["corner"], full_episode.extrinsics["corner"][rendered])
    assert not np.array_equal(full_episode.images["corner"][1], full_episode.images["corner"][0])  # the hand moves

    collect(tmp_path / "ds", ["handle-press-v3"], [0], every, progress=False)
    reader = DatasetReader(tmp_path / "ds")
    assert reader.frame_every == 4 and reader.info["aim"]["frame_every"] == 4
    layout = CanvasLayout(32, 32, (ViewSlot("corner", 0, 0),))
    clips = ClipDataset(reader, 3, frame_stride=4, layout=layout)
    assert [start for _, start in clips.index] == list(range(0, full_episode.length - 12 + 1, 4))
    with pytest.raises(ValueError, match="frame_stride must be a multiple of 4"):
        ClipDataset(reader, 3, frame_stride=2, layout=layout)
    with pytest.raises(ValueError, match="rendered every 4 steps"):
        collect(tmp_path / "ds", ["handle-press-v3"], [1], full, progress=False)
    with pytest.raises(ValueError, match="frame_every"):
        CollectSettings(frame_every=0)


def test_anti_aliasing_is_chosen_recorded_and_kept_on_append(tmp_path):
    plain = CollectSettings(cameras=("corner",), height=32, width=32, multisample=0)
    collect(tmp_path / "ds", ["reach-v3"], [0], plain, progress=False)
    reader = DatasetReader(tmp_path / "ds")
    assert fmt.render_settings(reader.info) == {"multisample": 0}
    with pytest.raises(ValueError, match="views rendered with {'multisample': 0}, but the writer's episodes"):
        collect(tmp_path / "ds", ["reach-v3"], [1], CollectSettings(cameras=("corner",), height=32, width=32),
                progress=False)
    collect(tmp_path / "default", ["reach-v3"], [0], CollectSettings(cameras=("corner",), height=32, width=32),
            progress=False)
    assert fmt.render_settings(DatasetReader(tmp_path / "default").info) == {}  # the simulator's own
    with pytest.raises(ValueError, match="multisample must be None or 0..16"):
        CollectSettings(multisample=-1)
