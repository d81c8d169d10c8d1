"""Stage-I training end to end on CPU: DDP equals one process, SIGKILL + resume equals an
uninterrupted run, a non-finite loss stops without touching the last checkpoint, FSDP2 sharded
checkpoints save and load, and a saved bundle reproduces the trained model.

Every run uses one thread per process (torch.set_num_threads / OMP_NUM_THREADS), so runs in this
process and in subprocesses do the same arithmetic.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import aim
from aim.data import ClipDataset
from aim.model import training_loss
from aim.runtime.bundle import load_bundle
from aim.runtime.checkpoint import latest_checkpoint
from aim.runtime.monitor import read_metrics
from aim.runtime.preprocessing import clip_latents
from aim.runtime.run_dir import CONFIG_FILE
from aim.train import NonFiniteLossError, load_config, train
from aim.train import objective as objective_module
from aim.train.data_order import micro_batch_generator
from tests.train.helpers import make_dataset, tiny_config, tiny_overrides

COMPARED = ("loss/total", "loss/video", "loss/value", "loss/action", "grad_norm", "lr")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("train") / "ds")


def _environment() -> dict:
    python_dir = str(Path(aim.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": python_dir, "OMP_NUM_THREADS": "1"}


def _cli(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aim.cli", "train", str(run_dir), *args]


def _torchrun(processes: int, run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "aim.cli", "train", str(run_dir), *args]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _curves(run_dir: Path) -> dict[str, torch.Tensor]:
    metrics = read_metrics(run_dir)
    return {k: torch.tensor([m[k] for m in metrics], dtype=torch.float64) for k in (*COMPARED, "step")}


def _assert_same_curves(actual: Path, expected: Path, rtol: float, atol: float) -> None:
    a, e = _curves(actual), _curves(expected)
    assert a["step"].tolist() == e["step"].tolist()
    for key in COMPARED:
        torch.testing.assert_close(a[key], e[key], rtol=rtol, atol=atol, msg=lambda m, k=key: f"{k}: {m}")


def test_two_ddp_processes_match_one_process_with_the_same_global_batch(dataset, tmp_path):
    # Global batch 4 = 2 processes x 1 micro-batch of 2 = 1 process x 2 accumulated micro-batches of 2;
    # each micro-batch gets the same clips and noise either way (aim.train.data_order).
    train(tiny_config(dataset, "train.steps=4"), tmp_path / "one")
    _torchrun(2, tmp_path / "two", *tiny_overrides(dataset), "train.steps=4", "parallel.strategy=ddp")
    # Tolerance: gradients are averaged by gloo's all-reduce instead of summed in place.
    _assert_same_curves(tmp_path / "two", tmp_path / "one", rtol=1e-5, atol=1e-6)
    assert len(read_metrics(tmp_path / "one")) == 4
    one, two = load_bundle(tmp_path / "one"), load_bundle(tmp_path / "two")
    for (name, p), q in zip(one.model.named_parameters(), two.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def test_sigkill_after_a_checkpoint_then_resume_reproduces_the_uninterrupted_run(dataset, tmp_path):
    overrides = [*tiny_overrides(dataset), "train.steps=12", "checkpoint.every=3", "checkpoint.keep=1"]
    train(load_config(overrides=overrides), tmp_path / "reference")
    run = tmp_path / "killed"
    job = subprocess.Popen(_cli(run, *overrides), env=_environment(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and job.poll() is None:
        pointer = run / "checkpoints" / "latest"
        if pointer.is_file() and pointer.read_text().strip() >= "step-00000006":
            break
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {job.stderr.read()[-2000:]}"
    killed_at = len(read_metrics(run))
    resumed_from = int(latest_checkpoint(run).name.split("-")[1])
    assert 6 <= resumed_from <= killed_at < 12
    resumed = subprocess.run(_cli(run, "--resume"), env=_environment(), capture_output=True, text=True, timeout=240,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_curves(run, tmp_path / "reference", rtol=0, atol=0)
    reference, continued = load_bundle(tmp_path / "reference"), load_bundle(run)
    for p, q in zip(reference.model.parameters(), continued.model.parameters()):
        assert torch.equal(p, q)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step-00000012"]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(dataset, tmp_path, monkeypatch):
    run, bad_step, calls = tmp_path / "run", 5, []
    snapshot = {}

    def loss_turning_nan(*args, **kwargs):
        losses = training_loss(*args, **kwargs)
        calls.append(1)
        if len(calls) > 2 * (bad_step - 1):  # 2 micro-batches per step
            snapshot.update(_hashes(latest_checkpoint(run)))
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(objective_module, "training_loss", loss_turning_nan)
    with pytest.raises(NonFiniteLossError, match=rf"not finite at step {bad_step} .*step-00000004"):
        train(tiny_config(dataset, "train.steps=8"), run)
    last = latest_checkpoint(run)
    assert last.name == "step-00000004" and _hashes(last) == snapshot and snapshot
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step-00000002", "step-00000004"]
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3, 4]


def _hashes(checkpoint: Path) -> dict[str, str]:
    return {str(p.relative_to(checkpoint)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(checkpoint.rglob("*")) if p.is_file()}


def test_fsdp_sharded_checkpoint_saves_and_resumes_on_two_processes(dataset, tmp_path):
    common = [*tiny_overrides(dataset), "schedule.kind=constant", "log.sample_every=2"]
    train(load_config(overrides=[*common, "train.steps=4"]), tmp_path / "reference")
    run = tmp_path / "fsdp"
    _torchrun(2, run, *common, "train.steps=2", "parallel.strategy=fsdp")
    shards = sorted(p.name for p in (latest_checkpoint(run) / "state").glob("*.distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"]
    _torchrun(2, run, "--resume", "train.steps=4")
    _assert_same_curves(run, tmp_path / "reference", rtol=1e-5, atol=1e-6)
    assert "train.steps" not in (run / CONFIG_FILE).read_text() and "steps: 4" in (run / CONFIG_FILE).read_text()
    reference, sharded = load_bundle(tmp_path / "reference"), load_bundle(run)
    for p, q in zip(reference.model.parameters(), sharded.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)


def test_saved_bundle_reproduces_the_trained_model(dataset, tmp_path):
    result = train(tiny_config(dataset, "train.steps=2"), tmp_path / "run")
    for source in (tmp_path / "run", result.checkpoint):
        loaded = load_bundle(source)
        assert loaded.structure == result.bundle.structure and loaded.layout == result.bundle.layout
        assert loaded.cameras == result.bundle.cameras and loaded.frame_stride == result.bundle.frame_stride
        torch.testing.assert_close(loaded.action_std, result.bundle.action_std)
        clips = ClipDataset(dataset, loaded.structure.total_frames, frame_stride=loaded.frame_stride,
                            layout=loaded.layout)
        batch = torch.utils.data.default_collate([clips[0], clips[5], clips[9]])
        expected = training_loss(result.bundle.model, result.bundle.structure, *clip_latents(result.bundle, batch),
                                 generator=micro_batch_generator(0, 0, 0))
        actual = training_loss(loaded.model, loaded.structure, *clip_latents(loaded, batch),
                               generator=micro_batch_generator(0, 0, 0))
        for key in expected:
            assert torch.equal(actual[key], expected[key]), key
