"""Faults injected into real processes: SIGKILL while a checkpoint is written, during collection
and during a RoboTwin conversion; a damaged video in the middle of a dataset; frame indices that
would read another episode. Each recovers as documented (docs/faults.md lists them: ``FAULTS``).

SIGKILL leaves no chance to clean up, so what survives is what the code wrote in a safe order.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import aim
from aim.data import DatasetReader, VideoCodec
from aim.data import lerobot_format as fmt
from aim.data.robotwin import convert_robotwin
from aim.errors import UsageError
from aim.runtime.bundle import load_bundle
from aim.runtime.checkpoint import latest_checkpoint
from aim.runtime.monitor import read_metrics
from aim.train import load_config, train
from tests.data.robotwin_helpers import write_task
from tests.train.helpers import make_dataset, tiny_overrides

# test -> (the fault injected, what survives it): the rows of docs/faults.md's second table.
FAULTS = {
    "test_sigkill_while_a_checkpoint_is_written": (
        "SIGKILL while a checkpoint is written (before its rename, or between the rename and the `latest` pointer)",
        "`latest` still names the previous checkpoint, which loads; `--resume` continues to the same weights as an "
        "uninterrupted run"),
    "test_a_latest_pointer_naming_a_missing_checkpoint": (
        "`checkpoints/latest` names a checkpoint that is not there",
        "exit 1: the pointer and the missing checkpoint are named"),
    "test_sigkill_during_collect_then_resume": (
        "SIGKILL during `aim collect`",
        "the rerun completes the dataset: no episode missing or twice, finished files untouched, metadata consistent"),
    "test_sigkill_during_a_robotwin_conversion_then_resume": (
        "SIGKILL during `aim dataset convert-robotwin`",
        "`--mode append` completes it: the same episodes as an uninterrupted conversion, finished files untouched"),
    "test_a_damaged_video_in_the_middle_is_skipped_alone": (
        "a video file damaged in the middle of a dataset",
        "`skip_bad` reports and leaves out the episodes in that file only; the others train"),
    "test_frame_indices_outside_the_episode_are_refused": (
        "frame indices past the end of an episode (which would read the next episode in the same mp4), negative, "
        "or not integers; repeated and unsorted ones",
        "refused by name; repeated and unsorted indices are served correctly"),
    "test_a_worker_that_dies_names_the_episode_instead_of_hanging": (
        "an evaluation or rollout worker process killed in an episode",
        "exit 1 naming the task, episode and seed; the run does not hang (tests/eval/test_runner.py)"),
}

PYTHON_DIR = str(Path(aim.__file__).resolve().parents[1])


@pytest.fixture(autouse=True)
def _one_thread():
    """Runs here and in the subprocesses do the same arithmetic (one thread, as OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _environment() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([PYTHON_DIR, str(Path(__file__).resolve().parents[1])]),
            "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}


def _files(root: Path, *subs: str) -> dict[Path, tuple[str, int]]:
    """Every file under ``root/sub`` with its content hash and modification time."""
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for sub in subs for p in (root / sub).rglob("*") if p.is_file() and not p.name.endswith(".tmp")}


def _kill_when(job: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None and not ready():
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, f"the job ended before it could be killed: {job.stderr.read()[-2000:]}"


def _assert_consistent(root: Path) -> DatasetReader:
    """What LeRobot's reader relies on holds: totals, contiguous global indices, every episode readable."""
    reader = DatasetReader(root, skip_bad=True)
    assert reader.skipped == {}
    lengths = [reader.episode_length(e) for e in range(len(reader))]
    assert reader.info["total_episodes"] == len(reader) and reader.info["total_frames"] == sum(lengths)
    starts = np.cumsum([0, *lengths])
    assert list(reader.episodes["dataset_from_index"]) == list(starts[:-1])
    for e in range(len(reader)):
        assert list(reader.episode_data(e)["index"]) == list(range(starts[e], starts[e + 1]))
    return reader


KILL_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    from aim.runtime import checkpoint
    where, run, *overrides = sys.argv[1:]
    original, calls = getattr(checkpoint, where), []
    def killed(*args):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint: weights and state written, not yet renamed / pointed at
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args)
    setattr(checkpoint, where, killed)
    from aim.train import load_config, train
    train(load_config(overrides=overrides), run)
""")


@pytest.mark.parametrize("where", ["_sync_tree", "_point_latest"])
def test_sigkill_while_a_checkpoint_is_written(tmp_path, where):
    dataset = make_dataset(tmp_path / "ds")
    overrides = [*tiny_overrides(dataset), "train.steps=6", "checkpoint.every=2", "checkpoint.keep=3"]
    train(load_config(overrides=overrides), tmp_path / "reference")
    run = tmp_path / "killed"
    done = subprocess.run([sys.executable, "-c", KILL_CHECKPOINT, where, str(run), *overrides], env=_environment(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert latest_checkpoint(run).name == "step-00000002"
    load_bundle(run)  # the previous checkpoint loads
    train(load_config(overrides=overrides), run, resume=True)
    reference, resumed = load_bundle(tmp_path / "reference"), load_bundle(run)
    for p, q in zip(reference.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert [m["step"] for m in read_metrics(run)] == list(range(1, 7))
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_a_latest_pointer_naming_a_missing_checkpoint(tmp_path, capsys):
    from aim.cli import main

    dataset = make_dataset(tmp_path / "ds")
    overrides = [*tiny_overrides(dataset), "train.steps=2", "checkpoint.every=2"]
    train(load_config(overrides=overrides), tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "latest").write_text("step-00000099\n")
    assert main(["eval", str(tmp_path / "run"), "--tasks", "reach", "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "latest names step-00000099, which is missing" in err


COLLECT = ["collect", "{root}", "--tasks", "reach-v3", "--seeds", "0", "1", "2", "3", "4", "5", "--size", "16",
           "--cameras", "corner", "--frame-every", "4", "--multisample", "0", "--no-progress"]


def test_sigkill_during_collect_then_resume(tmp_path):
    from aim.cli import main

    reference, root = tmp_path / "reference", tmp_path / "killed"
    assert main([a.format(root=reference) for a in COLLECT]) == 0
    job = subprocess.Popen([sys.executable, "-m", "aim.cli", *[a.format(root=root) for a in COLLECT]],
                           env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def two_written() -> bool:
        info = root / fmt.INFO_PATH
        try:
            return info.is_file() and fmt.read_info(root)["total_episodes"] >= 2
        except fmt.DatasetFormatError:  # caught between a write and its rename
            return False

    _kill_when(job, two_written)
    claimed = int(fmt.read_info(root)["total_episodes"])
    finished = {p: v for p, v in _files(root, "data").items() if int(p.stem.split("-")[1]) < claimed}
    assert main([a.format(root=root) for a in COLLECT]) == 0
    ours, theirs = _assert_consistent(root), _assert_consistent(reference)
    assert list(ours.episodes["seed"]) == list(theirs.episodes["seed"])
    for e in range(len(theirs)):
        np.testing.assert_array_equal(ours.episode_data(e)[fmt.ACTION], theirs.episode_data(e)[fmt.ACTION])
    assert {p: v for p, v in _files(root, "data").items() if p in finished} == finished


CONVERT = [sys.executable, "-m", "aim.cli", "dataset", "convert-robotwin", "{source}", "{target}", "--fps", "25",
           "--no-progress"]


def test_sigkill_during_a_robotwin_conversion_then_resume(tmp_path):
    source, _ = write_task(tmp_path / "robotwin", lengths=(30, 32, 28, 30, 34, 30))
    reference, target = tmp_path / "reference", tmp_path / "killed"
    convert_robotwin(source, reference, fps=25)
    command = [a.format(source=source, target=target) for a in CONVERT]
    job = subprocess.Popen(command, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def some_written() -> bool:
        try:
            return (target / fmt.INFO_PATH).is_file() and fmt.read_info(target)["total_episodes"] >= 2
        except fmt.DatasetFormatError:
            return False

    _kill_when(job, some_written)
    claimed = int(fmt.read_info(target)["total_episodes"])
    assert 2 <= claimed < 6, "the conversion finished before it could be killed"
    finished = {p: v for p, v in _files(target, "data").items() if int(p.stem.split("-")[1]) < claimed}
    done = subprocess.run([*command, "--mode", "append"], env=_environment(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0 and f"{claimed} already converted" in done.stdout, done.stderr[-2000:]
    ours, theirs = _assert_consistent(target), _assert_consistent(reference)
    assert list(ours.episodes["source"]) == list(theirs.episodes["source"]) == [f"episode{i}.hdf5" for i in range(6)]
    for e in range(6):
        np.testing.assert_array_equal(ours.episode_data(e)[fmt.ACTION], theirs.episode_data(e)[fmt.ACTION])
        np.testing.assert_allclose(ours.value_maps(e, "head", np.arange(5)), theirs.value_maps(e, "head", np.arange(5)),
                                   atol=0.02)
    assert {p: v for p, v in _files(target, "data").items() if p in finished} == finished


def test_a_damaged_video_in_the_middle_is_skipped_alone(tmp_path):
    from aim.data import ClipDataset, DatasetWriter
    from tests.data.helpers import synthetic_episode

    rng = np.random.default_rng(0)
    root = tmp_path / "ds"
    with DatasetWriter(root, 10, codec=VideoCodec.lossless(), episodes_per_video_file=2) as writer:
        for _ in range(6):
            writer.add_episode(synthetic_episode(rng, 12))
    damaged = fmt.video_file(root, fmt.image_key("head"), 1)  # episodes 2 and 3
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 3])
    reader = DatasetReader(root, skip_bad=True)
    assert sorted(reader.skipped) == [2, 3] and all(str(damaged) in why for why in reader.skipped.values())
    clips = ClipDataset(reader, 4)
    assert {e for e, _ in clips.index} == {0, 1, 4, 5}
    clips[len(clips) - 1]  # the others decode


def test_frame_indices_outside_the_episode_are_refused(tmp_path):
    from tests.train.helpers import EPISODE_LENGTHS

    reader = DatasetReader(make_dataset(tmp_path / "ds"))  # several episodes per mp4
    key, length = fmt.image_key("head"), EPISODE_LENGTHS[0]
    for bad, says in [([length], f"frame index {length} is outside"), ([-1], "frame index -1 is outside"),
                      (np.array([0.5]), "must be a 1-D array of integers"), ([[0]], "1-D array")]:
        with pytest.raises(UsageError, match=says):
            reader.frames(0, key, bad)
    with pytest.raises(UsageError, match="no episode 7"):
        reader.frames(7, key, [0])
    forward = reader.frames(0, key, np.arange(4))
    np.testing.assert_array_equal(reader.frames(0, key, [3, 1, 1, 0]), forward[[3, 1, 1, 0]])


def test_the_docs_table_lists_every_fault():
    here = {name for name in globals() if name.startswith("test_")} | {
        "test_a_worker_that_dies_names_the_episode_instead_of_hanging"}
    assert set(FAULTS) <= here
    text = (Path(__file__).resolve().parents[1] / "docs" / "faults.md").read_text()
    for fault, survives in FAULTS.values():
        assert f"| {fault} | {survives} |" in text, fault
