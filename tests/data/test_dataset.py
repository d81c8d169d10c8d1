"""LeRobot v3.0 writer and reader: round trip, the metadata LeRobot requires, bad data, append."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aim.data import (
    ClipDataset,
    DatasetFormatError,
    DatasetReader,
    DatasetWriter,
    VideoCodec,
)
from aim.data import lerobot_format as fmt
from aim.data.stats import QUANTILES, SKETCH_SIZE, episode_stats, merge_stats
from aim.data.video import encode_video, frame_count
from tests.data.helpers import CAMERAS, synthetic_episode

FPS = 10
LENGTHS = (5, 7, 6)


@pytest.fixture
def episodes():
    rng = np.random.default_rng(0)
    return [synthetic_episode(rng, n, instruction=f"task {i % 2}") for i, n in enumerate(LENGTHS)]


# Episodes per mp4: one each, or episodes 0 and 1 sharing file 0 and episode 2 alone in file 1.
@pytest.fixture(params=[1, 2], ids=["one episode per mp4", "two episodes per mp4"])
def dataset(request, tmp_path, episodes):
    root = tmp_path / "ds"
    with DatasetWriter(root, FPS, codec=VideoCodec.lossless(), episodes_per_video_file=request.param) as writer:
        for ep in episodes:
            writer.add_episode(ep)
    return root


def video_of(root, episode: int, key: str):
    """The mp4 the episodes table names for ``episode``'s ``key`` (independent of the reader)."""
    row = pd.read_parquet(root / fmt.EPISODES_PATH).iloc[episode]
    return fmt.video_file(root, key, fmt.file_number(row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]))


def test_round_trip_is_exact_with_the_lossless_codec(dataset, episodes):
    reader = DatasetReader(dataset)
    assert len(reader) == len(LENGTHS) and sorted(reader.cameras) == sorted(CAMERAS) and reader.has_value_maps
    assert reader.valid_episodes == [0, 1, 2] and reader.skipped == {}
    for e, ep in enumerate(episodes):
        steps = np.arange(ep.length)
        data = reader.episode_data(e)
        np.testing.assert_array_equal(data[fmt.ACTION], ep.actions)
        np.testing.assert_array_equal(data[fmt.STATE], ep.proprio)
        assert reader.instruction(e) == ep.instruction
        for cam in CAMERAS:
            np.testing.assert_array_equal(reader.frames(e, fmt.image_key(cam), steps), ep.images[cam])
            np.testing.assert_allclose(reader.value_maps(e, cam, steps), ep.value_maps[cam], atol=0.5 / 255 + 1e-6)
            np.testing.assert_allclose(reader.extrinsics(e, cam), ep.extrinsics[cam], atol=1e-6)
            np.testing.assert_allclose(reader.intrinsics(e, cam), ep.intrinsics[cam])
        # A frame in the middle, decoded after a seek, is the right one.
        np.testing.assert_array_equal(reader.frames(e, fmt.image_key("head"), steps[3:4]), ep.images["head"][3:4])


def test_cached_videos_decode_each_episode_once_and_read_the_same_frames(dataset, episodes):
    reader = DatasetReader(dataset, cache_videos=True)
    decodes = []
    decode = reader.video.decode
    reader.video.decode = lambda *args: decodes.append(args[0]) or decode(*args)
    rng = np.random.default_rng(1)
    for _ in range(3):
        for e, ep in enumerate(episodes):
            steps = np.sort(rng.choice(ep.length, size=3, replace=False))
            for cam in CAMERAS:
                frames = reader.frames(e, fmt.image_key(cam), steps)
                np.testing.assert_array_equal(frames, ep.images[cam][steps])
                frames[:] = 0  # a caller's copy: the cache is not written through it
                np.testing.assert_allclose(reader.value_maps(e, cam, steps), ep.value_maps[cam][steps],
                                           atol=0.5 / 255 + 1e-6)
    assert len(decodes) == len(episodes) * len(CAMERAS) * 2  # images and value maps, once each


def test_default_vp9_codec_is_within_lossy_tolerance(tmp_path):
    ep = synthetic_episode(np.random.default_rng(1), 6, height=32, width=48)
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)
    ep.images = {c: np.repeat(smooth[None], 6, axis=0) for c in CAMERAS}
    with DatasetWriter(tmp_path / "ds", FPS) as writer:
        writer.add_episode(ep)
    frames = DatasetReader(tmp_path / "ds").frames(0, fmt.image_key("head"), np.arange(6))
    assert np.abs(frames.astype(int) - ep.images["head"]).mean() < 3.0


def test_metadata_has_what_lerobot_requires(dataset, episodes):
    info = json.loads((dataset / fmt.INFO_PATH).read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and isinstance(info["fps"], int)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["chunks_size"] > 0
    features = info["features"]
    assert features["timestamp"]["dtype"] == "float32"
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert features[name]["dtype"] == "int64"
    for cam in CAMERAS:
        for key in (fmt.image_key(cam), fmt.value_map_key(cam)):
            assert features[key]["dtype"] == "video" and features[key]["shape"] == [16, 24, 3]

    data = pd.concat([pd.read_parquet(fmt.data_file(dataset, e)) for e in range(3)])
    np.testing.assert_array_equal(data["index"], np.arange(sum(LENGTHS)))
    np.testing.assert_array_equal(data["timestamp"], (data["frame_index"] / FPS).astype(np.float32))
    assert not any(c.startswith("observation.images") for c in data.columns)
    schema = pq.read_schema(fmt.data_file(dataset, 0))
    action_type = schema.field(fmt.ACTION).type
    assert pa.types.is_fixed_size_list(action_type) and action_type.list_size == 4

    eps = pd.read_parquet(dataset / fmt.EPISODES_PATH)
    np.testing.assert_array_equal(eps["episode_index"], np.arange(3))
    np.testing.assert_array_equal(eps["length"], LENGTHS)
    np.testing.assert_array_equal(eps["dataset_to_index"] - eps["dataset_from_index"], LENGTHS)
    assert [list(t) for t in eps["tasks"]] == [["task 0"], ["task 1"], ["task 0"]]
    for cam in CAMERAS:
        for key in (fmt.image_key(cam), fmt.value_map_key(cam)):
            for col in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
                assert f"videos/{key}/{col}" in eps
            start, stop = eps[f"videos/{key}/from_timestamp"], eps[f"videos/{key}/to_timestamp"]
            np.testing.assert_allclose(stop - start, np.array(LENGTHS) / FPS)
            # Episodes sharing a file follow each other; each file starts at 0, and its frame
            # count (from the container) is where its last episode ends.
            files = [video_of(dataset, e, key) for e in range(3)]
            for e in range(3):
                previous = stop[e - 1] if e and files[e] == files[e - 1] else 0.0
                assert start[e] == pytest.approx(previous)
                if e == 2 or files[e + 1] != files[e]:
                    assert frame_count(files[e]) == round(stop[e] * FPS)

    tasks = pd.read_parquet(dataset / fmt.TASKS_PATH)
    assert list(tasks.index) == ["task 0", "task 1"] and list(tasks["task_index"]) == [0, 1]


def test_stats_match_numpy_over_all_frames(dataset, episodes):
    stats = json.loads((dataset / fmt.STATS_PATH).read_text())
    for feature, attr in ((fmt.ACTION, "actions"), (fmt.STATE, "proprio")):
        values = np.concatenate([getattr(ep, attr) for ep in episodes]).astype(np.float64)
        np.testing.assert_allclose(stats[feature]["mean"], values.mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(stats[feature]["std"], values.std(0), rtol=1e-6)
        np.testing.assert_allclose(stats[feature]["min"], values.min(0))
        np.testing.assert_allclose(stats[feature]["max"], values.max(0))
        assert stats[feature]["count"] == [sum(LENGTHS)]
        assert set(QUANTILES) <= set(stats[feature]) and "sketch" not in stats[feature]
        quantiles = np.array([stats[feature][name] for name in QUANTILES])
        assert (np.diff(quantiles, axis=0) >= 0).all() and (quantiles >= values.min(0)).all()


def test_merged_quantiles_bracket_the_exact_ones():
    """Episodes drawn from different distributions (shifted, skewed, with ties): each merged
    quantile at level q lies between the exact quantiles of all rows at q -/+ 1.5 / SKETCH_SIZE
    (the sketch's resolution, module docstring of aim.data.stats). Averaging the episodes' own
    quantiles, the shortcut the sketch avoids, misses that bracket here."""
    rng = np.random.default_rng(7)
    parts = [rng.normal(3.0, 1.0, (400, 2)), rng.normal(-2.0, 0.3, (150, 2)), rng.exponential(2.0, (300, 2)),
             np.repeat(rng.integers(0, 4, (60, 2)).astype(float), 5, axis=0), rng.uniform(-8, 8, (220, 2))]
    merged = merge_stats([episode_stats(p) for p in parts])
    everything = np.concatenate(parts)
    slack = 1.5 / SKETCH_SIZE
    naive_misses = 0
    for name, level in QUANTILES.items():
        low = np.quantile(everything, max(level - slack, 0.0), axis=0)
        high = np.quantile(everything, min(level + slack, 1.0), axis=0)
        assert (low <= merged[name]).all() and (merged[name] <= high).all(), name
        naive = np.average([np.quantile(p, level, axis=0) for p in parts], axis=0, weights=[len(p) for p in parts])
        naive_misses += int(((naive < low) | (naive > high)).any())
    assert naive_misses >= 3


def test_existing_target_needs_overwrite_or_append(dataset, episodes):
    with pytest.raises(FileExistsError, match="not empty"):
        DatasetWriter(dataset, FPS)
    finished = {path: path.read_bytes() for path in (dataset / "videos").rglob("*.mp4")}
    with DatasetWriter(dataset, FPS, mode="append", codec=VideoCodec.lossless()) as writer:
        assert writer.add_episode(episodes[0]) == 3
    reader = DatasetReader(dataset)
    assert len(reader) == 4 and reader.info["total_frames"] == sum(LENGTHS) + LENGTHS[0]
    np.testing.assert_array_equal(reader.episode_data(3)["index"], sum(LENGTHS) + np.arange(LENGTHS[0]))
    np.testing.assert_array_equal(reader.frames(3, fmt.image_key("head"), np.arange(5)), episodes[0].images["head"])
    # Appending starts a new mp4: the files of the finished episodes are left as they were.
    assert video_of(dataset, 3, fmt.image_key("head")) not in finished
    assert all(path.read_bytes() == data for path, data in finished.items())
    with DatasetWriter(dataset, FPS, mode="overwrite") as writer:
        writer.add_episode(episodes[1])
    assert len(DatasetReader(dataset)) == 1


@pytest.mark.parametrize("limits,files", [({"episodes_per_video_file": 2}, [0, 0, 1, 1, 2]),
                                          ({"episodes_per_video_file": 9}, [0, 0, 0, 0, 0]),
                                          ({"episodes_per_video_file": 9, "video_file_mb": 1e-6}, [0, 1, 2, 3, 4])])
def test_video_files_fill_up_to_their_limits(tmp_path, episodes, limits, files):
    """Episode counts and file sizes (a limit below one episode's size gives every episode its own file)."""
    order = [0, 1, 2, 0, 1]
    with DatasetWriter(tmp_path / "ds", FPS, codec=VideoCodec.lossless(), **limits) as writer:
        for e in order:
            writer.add_episode(episodes[e])
    key = fmt.image_key("left_wrist")
    assert [video_of(tmp_path / "ds", e, key) for e in range(5)] == [fmt.video_file(tmp_path / "ds", key, f)
                                                                       for f in files]
    reader = DatasetReader(tmp_path / "ds")
    for e, source in enumerate(order):
        steps = np.arange(LENGTHS[source])
        np.testing.assert_array_equal(reader.frames(e, key, steps), episodes[source].images["left_wrist"])


def test_a_crash_never_claims_unwritten_episodes(tmp_path, episodes):
    writer = DatasetWriter(tmp_path / "ds", FPS, meta_every=2, codec=VideoCodec.lossless())
    writer.add_episode(episodes[0])
    writer.add_episode(episodes[1])
    writer.add_episode(episodes[2])  # files written, metadata not yet: then the process "dies"
    reader = DatasetReader(tmp_path / "ds")
    assert len(reader) == 2 and reader.info["total_frames"] == LENGTHS[0] + LENGTHS[1]
    # The next run appends after the claimed episodes, past the dead run's unclaimed frames.
    with DatasetWriter(tmp_path / "ds", FPS, mode="append", codec=VideoCodec.lossless()) as writer:
        writer.add_episode(episodes[2])
    reader = DatasetReader(tmp_path / "ds")
    assert len(reader) == 3 and reader.check_episode(2) is None
    np.testing.assert_array_equal(reader.frames(2, fmt.image_key("head"), np.arange(LENGTHS[2])),
                                  episodes[2].images["head"])


EPISODE_DAMAGE = ["missing parquet", "corrupt parquet", "length mismatch", "truncated video", "missing video",
                  "short video"]


def damage_episode_1(root, damage: str):
    """Damage a file of episode 1; returns the damaged file."""
    if damage in ("missing parquet", "corrupt parquet"):
        path = fmt.data_file(root, 1)
        path.unlink() if damage == "missing parquet" else path.write_bytes(b"not a parquet file")
    elif damage == "length mismatch":
        eps = pd.read_parquet(root / fmt.EPISODES_PATH)
        eps.loc[1, "length"] = LENGTHS[1] + 1
        eps.to_parquet(root / fmt.EPISODES_PATH)
        path = fmt.data_file(root, 1)
    else:
        path = video_of(root, 1, fmt.image_key("head"))
        if damage == "missing video":
            path.unlink()
        elif damage == "truncated video":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        else:  # a complete mp4 with fewer frames than the episodes in it need
            frames = np.zeros((2, 16, 24, 3), dtype=np.uint8)
            path.unlink()
            encode_video(path, frames, FPS, VideoCodec.lossless())
    return path


@pytest.mark.parametrize("damage", [*EPISODE_DAMAGE, "newer version"])
def test_bad_data_errors_name_the_file(dataset, damage):
    steps = np.arange(LENGTHS[1])
    if damage == "newer version":
        info = json.loads((dataset / fmt.INFO_PATH).read_text())
        info["codebase_version"] = "v4.0"
        (dataset / fmt.INFO_PATH).write_text(json.dumps(info))
        target, read = dataset / fmt.INFO_PATH, lambda r: None
    else:
        target = damage_episode_1(dataset, damage)
        read = (lambda r: r.episode_data(1)) if target.suffix == ".parquet" else (
            lambda r: r.frames(1, fmt.image_key("head"), steps))
    with pytest.raises(DatasetFormatError) as err:
        read(DatasetReader(dataset))
    assert str(target) in str(err.value)
    if damage == "newer version":
        assert "newer format version" in str(err.value)
        with pytest.raises(DatasetFormatError, match="newer format version"):
            DatasetReader(dataset, skip_bad=True)  # the dataset as a whole cannot be skipped


@pytest.mark.parametrize("damage", EPISODE_DAMAGE)
def test_skip_bad_leaves_out_and_reports_damaged_episodes(dataset, damage, caplog):
    target = damage_episode_1(dataset, damage)
    # Episode 1 and, for a video, every episode sharing its mp4.
    bad = {1} if target.suffix == ".parquet" else {e for e in range(3)
                                                   if video_of(dataset, e, fmt.image_key("head")) == target}
    with caplog.at_level(logging.WARNING, logger="aim.data"):
        reader = DatasetReader(dataset, skip_bad=True)
    assert set(reader.skipped) == bad and reader.valid_episodes == sorted({0, 1, 2} - bad)
    assert all(str(target) in reason for reason in reader.skipped.values())
    assert f"skipped {len(bad)} of 3 episodes" in caplog.text and str(target) in caplog.text
    clips = ClipDataset(dataset, 2, skip_bad=True)
    assert {e for e, _ in clips.index} == set(reader.valid_episodes)
    for i in range(len(clips)):
        assert clips[i]["frames"].shape[0] == 2


def test_cli_dataset_info_summarises(dataset, capsys):
    from aim.cli import main

    assert main(["dataset", "info", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "v3.0, 3 episodes, 18 frames at 10 fps" in out and "(with value maps)" in out and "1: task 1" in out
    assert main(["dataset", "info", str(dataset / "missing")]) == 1
    assert "meta/info.json: missing" in capsys.readouterr().err


def test_preview_overlays_heat_in_magenta(dataset, episodes, tmp_path, capsys):
    from PIL import Image

    from aim.cli import main
    from aim.data.picture_grid import grid_boxes, upscale
    from aim.data.preview import ALPHA, VIEW_PIXELS, overlay, preview_grid

    frame = np.full((2, 2, 3), 100, dtype=np.uint8)
    out = overlay(frame, np.array([[0.0, 1.0], [0.5, 0.0]]))
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[0, 1], np.rint([100 + ALPHA * 155, 100 * (1 - ALPHA), 100 + ALPHA * 155]))
    path = tmp_path / "preview.png"
    assert main(["dataset", "preview", str(dataset), "--episode", "1", "--frame", "2", "--out", str(path)]) == 0
    picture = np.asarray(Image.open(path))
    cells, rows, cameras, _ = preview_grid(dataset, 1, 2)
    assert cameras == sorted(CAMERAS) and rows == ["frame", "value-map label"]
    factor = VIEW_PIXELS // 16  # 16 x 24 views, upscaled to 256 pixels a side
    width, height, boxes = grid_boxes(cells, rows, cameras, "title")
    assert picture.shape == (height, width, 3)
    for camera, (frame_box, heat_box) in zip(cameras, zip(*boxes)):
        image, heat = episodes[1].images[camera][2], np.rint(episodes[1].value_maps[camera][2] * 255) / 255
        for (top, left), want in ((frame_box, image), (heat_box, overlay(image, heat))):
            got = picture[top:top + 16 * factor, left:left + 24 * factor]
            np.testing.assert_array_equal(got, upscale(want, factor))
    assert main(["dataset", "preview", str(dataset), "--episode", "9", "--out", str(path)]) == 2
    assert "no frame 0 in episode 9" in capsys.readouterr().err
