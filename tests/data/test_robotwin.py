"""RoboTwin 2.0 HDF5 converter, on small episodes written here in RoboTwin's layout
(tests/data/robotwin_helpers.py): frames, qpos and ee actions, instructions, value maps."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from aim.cli import main
from aim.data import DatasetFormatError, DatasetReader, VideoCodec
from aim.data import lerobot_format as fmt
from aim.data.ee_poses import from_first_pose_frame
from aim.data.gripper_events import GripperEventSettings
from aim.data.robotwin import EE_NAMES, RoboTwinSettings, convert_robotwin, qpos_names

from .robotwin_helpers import CAMERAS, SEEN, UNSEEN, ScriptedArm, project, write_task

LOSSLESS = VideoCodec.lossless()


@pytest.fixture
def task(tmp_path):
    return write_task(tmp_path / "robotwin")


def test_converts_frames_qpos_actions_cameras_and_instructions(tmp_path, task):
    source, written = task
    report = convert_robotwin(source, tmp_path / "ds", fps=25)
    assert report.written == 2 and report.labels == {"gripper": [0, 1]}
    reader = DatasetReader(tmp_path / "ds")
    assert sorted(reader.cameras) == sorted(CAMERAS.values()) and reader.has_value_maps and reader.has_calibration
    assert [reader.episode_length(e) for e in range(2)] == [17, 19]
    assert reader.instruction(0) == SEEN[0] and reader.instructions(0) == SEEN
    assert reader.instruction(1) == SEEN[1] and reader.instructions(1) == SEEN[1:]
    assert reader.unseen_instructions(1) == UNSEEN and reader.task_name(1) == "place_block"
    assert reader.info["features"][fmt.ACTION]["names"] == list(qpos_names(6, 6))
    assert reader.info["aim"]["action_space"] == {"robot": "robotwin", "kind": "qpos"}
    for e, w in enumerate(written):
        data = reader.episode_data(e)
        np.testing.assert_allclose(data[fmt.STATE], w.vector[:-1], rtol=1e-6)
        np.testing.assert_allclose(data[fmt.ACTION], w.vector[1:], rtol=1e-6)
        for cam in CAMERAS.values():
            steps = np.arange(reader.episode_length(e))
            frames = reader.frames(e, fmt.image_key(cam), steps).astype(int)
            # JPEG plus the default lossy video codec: close, and far from a channel swap.
            assert np.abs(frames - w.images[cam][:-1]).mean() < 4
            np.testing.assert_allclose(reader.extrinsics(e, cam), w.extrinsics[cam][:-1], atol=1e-6)
            np.testing.assert_allclose(reader.intrinsics(e, cam), w.intrinsics[cam])
    wrist = reader.extrinsics(0, "left_wrist")
    assert not np.allclose(wrist[0], wrist[-1])  # the wrist camera rode on the arm


def _expected_points(arm: ScriptedArm, t: int) -> np.ndarray:
    """The next event of a pick and place at frame t: the grasp point until the grasp (at close_at),
    then the place point, held after the release."""
    return arm.grasp if t <= arm.close_at else arm.place


def test_value_maps_peak_at_the_next_event_in_every_camera(tmp_path, task):
    source, written = task
    convert_robotwin(source, tmp_path / "ds", fps=25, codec=LOSSLESS)
    reader = DatasetReader(tmp_path / "ds")
    left, _ = _arms_of(written[0])
    checked = 0
    for cam in CAMERAS.values():
        maps = reader.value_maps(0, cam, np.arange(reader.episode_length(0)))
        for t, heat in enumerate(maps):
            u, v = project(_expected_points(left, t), written[0].intrinsics[cam], written[0].extrinsics[cam][t])
            if not (1 <= u <= heat.shape[1] - 2 and 1 <= v <= heat.shape[0] - 2):
                continue
            row, col = np.unravel_index(np.argmax(heat), heat.shape)
            assert abs(col - u) <= 1 and abs(row - v) <= 1, (cam, t, (row, col), (v, u))
            assert heat.max() > 0.85
            checked += 1
    assert checked >= 30  # the blob was seen in most views of most frames


def _arms_of(episode) -> tuple[ScriptedArm, ScriptedArm]:
    """The grasp and place points of the written left arm, read back from its poses and gripper."""
    poses, gripper = episode.endpose["left"][:, :3], episode.gripper["left"]
    close_at = int(np.argmax(gripper < 0.3))
    open_at = close_at + int(np.argmax(gripper[close_at:] > 0.5))
    left = ScriptedArm(poses[0], poses[close_at], poses[open_at], close_at, open_at)
    return left, ScriptedArm(episode.endpose["right"][0, :3])


def test_both_arms_events_show_together_until_each_is_past(tmp_path):
    def arms(rng):
        left = ScriptedArm(np.array([-0.25, -0.1, 0.3]), np.array([-0.15, -0.05, 0.05]), np.array([0.0, 0.12, 0.05]),
                           close_at=6, open_at=13)
        right = ScriptedArm(np.array([0.25, -0.1, 0.3]), np.array([0.15, -0.05, 0.05]), None, close_at=9)
        return left, right

    source, written = write_task(tmp_path / "robotwin", lengths=(18,), arms=arms)
    convert_robotwin(source, tmp_path / "ds", fps=25, codec=LOSSLESS)
    reader = DatasetReader(tmp_path / "ds")
    heat = reader.value_maps(0, "head", np.arange(17))
    k, e = written[0].intrinsics["head"], written[0].extrinsics["head"][0]
    left_grasp, left_place = (np.array(project(p, k, e)) for p in (arms(None)[0].grasp, arms(None)[0].place))
    right_grasp = np.array(project(arms(None)[1].grasp, k, e))

    def value_at(t, uv):
        return heat[t][int(round(uv[1])), int(round(uv[0]))]

    for t, (shown, hidden) in {3: ([left_grasp, right_grasp], [left_place]),
                               8: ([left_place, right_grasp], [left_grasp]),
                               11: ([left_place], [left_grasp, right_grasp]),
                               16: ([left_place], [left_grasp, right_grasp])}.items():
        assert all(value_at(t, uv) > 0.85 for uv in shown), t
        assert all(value_at(t, uv) < 0.05 for uv in hidden), t


def test_without_gripper_events_the_reach_fallback_or_empty_maps(tmp_path):
    def arms(rng):  # the left arm presses at its farthest point (no gripper action); the right one idles
        left = ScriptedArm(np.array([-0.25, -0.1, 0.3]))
        return left, ScriptedArm(np.array([0.25, -0.1, 0.3]))

    source, written = write_task(tmp_path / "robotwin", lengths=(16, 16), arms=arms)
    pressed = np.array([-0.05, 0.05, 0.04])
    for i in range(2):
        with h5py.File(source / "data" / f"episode{i}.hdf5", "a") as f:
            poses = f["endpose/left_endpose"][()]
            path = np.concatenate([np.linspace(0, 1, 8), np.linspace(1, 0, 8)]) if i == 0 else np.zeros(16)
            poses[:, :3] = poses[0, :3] + path[:, None] * (pressed - poses[0, :3])
            f["endpose/left_endpose"][...] = poses
    report = convert_robotwin(source, tmp_path / "reach", fps=25, codec=LOSSLESS)
    assert report.labels == {"reach": [0], "none": [1]}
    assert "no gripper event and no reach, empty maps: episodes 1" in report.summary()
    reader = DatasetReader(tmp_path / "reach")
    heat = reader.value_maps(0, "head", np.arange(15))
    u, v = project(pressed, written[0].intrinsics["head"], written[0].extrinsics["head"][0])
    assert heat[0][int(round(v)), int(round(u))] > 0.85 and heat[14][int(round(v)), int(round(u))] > 0.85
    assert reader.value_maps(1, "head", np.arange(15)).max() == 0

    empty = RoboTwinSettings(events=GripperEventSettings(fallback="empty"))
    report = convert_robotwin(source, tmp_path / "empty", fps=25, settings=empty, codec=LOSSLESS)
    assert report.labels == {"none": [0, 1]}
    assert DatasetReader(tmp_path / "empty").value_maps(0, "head", np.arange(15)).max() == 0


def test_ee_actions_are_endposes_with_continuous_quaternions(tmp_path):
    source, written = write_task(tmp_path / "robotwin", lengths=(18,))
    with h5py.File(source / "data" / "episode0.hdf5", "a") as f:
        for arm in ("left", "right"):
            poses = f[f"endpose/{arm}_endpose"][()]
            poses[1::2, 3:] *= -1  # the same rotations, signs flipped every other step
            f[f"endpose/{arm}_endpose"][...] = poses
    convert_robotwin(source, tmp_path / "ds", fps=25, settings=RoboTwinSettings(action_space="ee"))
    reader = DatasetReader(tmp_path / "ds")
    w = written[0]
    expected = np.concatenate([w.endpose["left"], w.gripper["left"][:, None],
                               w.endpose["right"], w.gripper["right"][:, None]], 1)
    data = reader.episode_data(0)
    np.testing.assert_allclose(data[fmt.ACTION], expected[1:], atol=1e-6)
    np.testing.assert_allclose(data[fmt.STATE], expected[:-1], atol=1e-6)
    assert reader.info["features"][fmt.ACTION]["names"] == list(EE_NAMES)
    assert reader.info["aim"]["action_space"] == {"robot": "robotwin", "kind": "ee", "frame": "world"}

    convert_robotwin(source, tmp_path / "rel", fps=25, settings=RoboTwinSettings(action_space="ee", relative_ee=True))
    relative = DatasetReader(tmp_path / "rel")
    assert relative.info["aim"]["action_space"]["frame"] == "first_pose"
    rel = relative.episode_data(0)
    np.testing.assert_allclose(rel[fmt.STATE][0, :7], [0, 0, 0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(from_first_pose_frame(rel[fmt.ACTION], expected[0]), expected[1:], atol=1e-5)


def test_bad_robotwin_files_name_the_file_and_key(tmp_path, task):
    source, _ = task
    bad = source / "data" / "episode1.hdf5"
    with h5py.File(bad, "a") as f:
        del f["observation/left_camera/extrinsic_cv"]
    with pytest.raises(DatasetFormatError, match="episode1.hdf5: key 'observation/left_camera/extrinsic_cv'"):
        convert_robotwin(source, tmp_path / "a", fps=25)
    with h5py.File(bad, "a") as f:
        f["observation/left_camera/extrinsic_cv"] = np.zeros((20, 3, 4))
        del f["endpose/right_gripper"]
    with pytest.raises(DatasetFormatError, match="episode1.hdf5: key 'endpose/right_gripper' is missing"):
        convert_robotwin(source, tmp_path / "b", fps=25)
    assert convert_robotwin(source, tmp_path / "c", fps=25, settings=RoboTwinSettings(value_maps=False)).written == 2
    assert not DatasetReader(tmp_path / "c").has_value_maps
    with h5py.File(bad, "a") as f:
        k = f["observation/head_camera/intrinsic_cv"][()]
        k[5, 0, 0] *= 2
        f["observation/head_camera/intrinsic_cv"][...] = k
    with pytest.raises(DatasetFormatError, match="head_camera/intrinsic_cv changes within the episode"):
        convert_robotwin(source, tmp_path / "d", fps=25, settings=RoboTwinSettings(value_maps=False))
    (source / "instructions" / "episode0.json").write_text('{"seen": "not a list"}')
    with pytest.raises(DatasetFormatError, match=r"episode0.json: instructions must look like"):
        convert_robotwin(source, tmp_path / "e", fps=25)
    with pytest.raises(ValueError, match="relative ee poses need the ee action space"):
        RoboTwinSettings(relative_ee=True)


def test_cli_converts_with_the_chosen_action_space_and_reports_labels(tmp_path, task, capsys):
    source, _ = task
    assert main(["dataset", "convert-robotwin", str(source), str(tmp_path / "ds"), "--fps", "25",
                 "--action-space", "ee", "--relative-ee", "--tcp-offset", "0.12", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 episodes" in out and "2 from gripper events" in out
    info = json.loads((tmp_path / "ds" / fmt.INFO_PATH).read_text())
    assert info["aim"]["action_space"]["frame"] == "first_pose"
    assert main(["dataset", "info", str(tmp_path / "ds")]) == 0
    assert "actions: end-effector poses and grippers (ee), relative to each episode's first pose" in \
        capsys.readouterr().out
    assert main(["dataset", "convert-robotwin", str(source), str(tmp_path / "ds"), "--fps", "25"]) == 1
    assert "not empty" in capsys.readouterr().err
