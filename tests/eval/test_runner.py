"""The runner: held-out seeds, results independent of the number of workers, the results
document, the table, and rollout videos."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from aim.errors import CheckpointError
from aim.eval.results import SCHEMA, results_table, summarise, write_results
from aim.eval.runner import EvalSettings, evaluate
from aim.eval.seeds import EVAL_SEED_OFFSET, eval_seeds
from aim.eval.workers import WorkerDiedError, WorkerStartError
from aim.model.sampler import SamplerConfig
from aim.runtime.bundle import WEIGHTS_FILE

from .helpers import TASKS, DyingPointSuite, PointSuite, save_bundle, tiny_bundle

SETTINGS = EvalSettings(tasks=tuple(TASKS), episodes=3, sampler=SamplerConfig(video_steps=2, guidance_scale=2.0,
                        action_steps=2), max_steps=16, videos_per_task=1)


def _outcomes(results):
    return [(r.task, r.seed, r.success, r.steps, len(r.chunk_latencies_s)) for r in results]


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    bundle = tiny_bundle(action_std=[3.0, 3.0, 3.0, 1.0], action_mean=[0.0, 0.0, 0.0, 0.0])
    one = evaluate(bundle, SETTINGS, tmp_path / "one", PointSuite(), workers=1, progress=False)
    two = evaluate(bundle, SETTINGS, tmp_path / "two", PointSuite(), workers=2, progress=False)
    assert _outcomes(one) == _outcomes(two)
    assert [(r.task, r.seed) for r in one] == [(t, s) for t in TASKS for s in eval_seeds(3)]
    # The outcomes follow the policy: several episodes succeed, at different steps.
    assert len({r.steps for r in one if r.success}) >= 2, _outcomes(one)
    videos = [(a.video, b.video) for a, b in zip(one, two) if a.video]
    assert len(videos) == len(TASKS)
    for a, b in videos:
        np.testing.assert_array_equal(_gif_frames(a), _gif_frames(b))


def _gif_frames(path) -> np.ndarray:
    gif = Image.open(path)
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    return np.stack(frames)


def test_held_out_seeds_start_at_the_offset():
    assert eval_seeds(4) == [EVAL_SEED_OFFSET + i for i in range(4)]
    with pytest.raises(ValueError, match="episodes"):
        eval_seeds(0)


def test_results_document_and_table(tmp_path):
    bundle = tiny_bundle(action_std=[3.0, 3.0, 3.0, 1.0], action_mean=[0.0, 0.0, 0.0, 0.0])
    episodes = evaluate(bundle, SETTINGS, tmp_path, PointSuite(), progress=False)
    path = write_results(tmp_path / "results.json", summarise(episodes, SETTINGS, run="in-memory"))
    results = json.loads(path.read_text())
    assert results["schema"] == SCHEMA and results["run"] == "in-memory"
    assert set(results) == {"schema", "created", "run", "environment", "settings", "tasks", "mean_success_rate",
                            "latency_s", "episodes"}
    assert results["settings"]["seed_offset"] == EVAL_SEED_OFFSET
    assert results["settings"]["sampler"]["action_steps"] == 2
    assert list(results["tasks"]) == TASKS
    for task, row in results["tasks"].items():
        mine = [e for e in episodes if e.task == task]
        successes = sum(e.success for e in mine)
        assert (row["episodes"], row["successes"]) == (3, successes)
        assert row["ci95"][0] <= row["success_rate"] == successes / 3 <= row["ci95"][1]
        assert row["mean_steps"] == pytest.approx(np.mean([e.steps for e in mine]))
        latencies = [t for e in mine for t in e.chunk_latencies_s]
        assert row["latency_s"]["median_s"] == pytest.approx(np.median(latencies))
        assert row["latency_s"]["p90_s"] >= row["latency_s"]["median_s"] > 0
    assert results["mean_success_rate"] == pytest.approx(np.mean([r["success_rate"] for r in results["tasks"].values()]))
    assert len(results["episodes"]) == 6
    assert set(results["episodes"][0]) == {"task", "seed", "success", "steps", "chunk_latencies_s", "video"}

    videos = [e.video for e in episodes if e.video]
    assert len(videos) == len(TASKS)  # videos_per_task = 1
    for episode in episodes:
        if episode.video:
            gif = Image.open(episode.video)
            # Three views rendered for people side by side, each SETTINGS.video_size pixels high.
            assert gif.size[0] >= 3 * SETTINGS.video_size and gif.size[1] >= SETTINGS.video_size
            # The start, then a frame every video_every steps and the last step.
            recorded = 1 + -(-episode.steps // SETTINGS.video_every)
            assert gif.n_frames == recorded

    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(results_table(results))
    text = console.export_text()
    for task in TASKS:
        assert task in text
    assert "mean" in text


def test_settings_are_checked():
    with pytest.raises(ValueError, match="no tasks"):
        EvalSettings(tasks=(), episodes=1)
    with pytest.raises(ValueError, match="episodes >= 1"):
        EvalSettings(tasks=("reach",), episodes=0)
    with pytest.raises(ValueError, match="video_format"):
        EvalSettings(tasks=("reach",), episodes=1, video_format="avi")
    with pytest.raises(ValueError, match="video_size >= 16"):
        EvalSettings(tasks=("reach",), episodes=1, video_size=8)


def test_a_worker_that_cannot_start_raises_instead_of_hanging(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    save_bundle(tiny_bundle(), checkpoint)
    (checkpoint / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors: damaged"):  # aim's own error, as it is
        evaluate(checkpoint, SETTINGS, tmp_path / "eval", PointSuite(), workers=2, progress=False)
    save_bundle(tiny_bundle(), checkpoint)
    if not torch.cuda.is_available():  # a device the workers cannot use: someone else's error, named
        on_cuda = dataclasses.replace(SETTINGS, device="cuda")
        with pytest.raises(WorkerStartError, match="could not start"):
            evaluate(checkpoint, on_cuda, tmp_path / "eval", PointSuite(), workers=2, progress=False)


def test_a_worker_that_dies_names_the_episode_instead_of_hanging(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    save_bundle(tiny_bundle(), checkpoint)
    seed = eval_seeds(3)[1]
    with pytest.raises(WorkerDiedError, match=rf"{TASKS[0]} episode 1 \(seed {seed}\)"):
        evaluate(checkpoint, SETTINGS, tmp_path / "eval", DyingPointSuite(dies_at=seed), workers=2, progress=False)
