"""``aim rl``: settings are checked and named, a run resumes exactly, the result is a bundle
``aim.eval`` loads with only the action stream changed, and RL raises a weak policy's success."""

import math

import pytest
import torch
from safetensors.torch import load_file

from aim.cli import main
from aim.eval.runner import EvalSettings, evaluate
from aim.model.sampler import SamplerConfig
from aim.rl.action_stream import is_action_stream
from aim.rl.config import load_rl_config, rl_presets
from aim.rl.loop import reinforce
from aim.runtime.bundle import WEIGHTS_FILE, load_bundle
from aim.runtime.checkpoint import latest_checkpoint
from aim.runtime.monitor import read_metrics
from aim.train.config import ConfigError

from .toy_suite import TASK, LineSuite, stage_one_checkpoint

SAMPLER = "rollout.sampler={video_steps: 2, guidance_scale: 1.0, action_steps: 4}"


def _config(start, *changes):
    return load_rl_config(overrides=[f"start={start}", f"rollout.tasks=[{TASK}]", "rollout.max_steps=16", SAMPLER,
                                     "log.progress=false", *changes])


@pytest.mark.parametrize("override, match", [
    ("grpo.group_size=1", "group_size"), ("grpo.clip_epsilon=0", "clip_epsilon"),
    ("grpo.clip_epsilon=-0.2", "clip_epsilon"), ("rollout.groups_per_task=0", "groups_per_task"),
    ("train.iterations=0", "iterations"), ("rollout.workers=0", "workers"), ("grpo.epochs=two", "epochs"),
    ("grpo.group_sise=4", "group_sise"),
])
def test_bad_settings_are_named(override, match):
    with pytest.raises(ConfigError, match=match):
        load_rl_config("tiny-metaworld", overrides=[override])


def test_both_reward_weights_zero_is_refused():
    with pytest.raises(ConfigError, match=r"dense_weight \(lambda_d\) and sparse_weight \(lambda_s\) are both 0"):
        load_rl_config(overrides=["reward.dense_weight=0", "reward.sparse_weight=0.0"])
    assert "tiny-metaworld" in rl_presets()


def test_missing_or_impossible_settings_are_named(tmp_path):
    stage_one = stage_one_checkpoint(tmp_path / "stage1")
    with pytest.raises(ConfigError, match="start is required"):
        reinforce(load_rl_config(overrides=[f"rollout.tasks=[{TASK}]"]), tmp_path / "a", suite=LineSuite())
    with pytest.raises(ConfigError, match="rollout.tasks is required"):
        reinforce(load_rl_config(overrides=[f"start={stage_one}"]), tmp_path / "b", suite=LineSuite())
    blind = stage_one_checkpoint(tmp_path / "blind", value_stream=False)
    with pytest.raises(ConfigError, match="no value stream"):
        reinforce(_config(blind), tmp_path / "c", suite=LineSuite())
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        reinforce(_config(stage_one), tmp_path / "d", resume=True, suite=LineSuite())


def test_cli_reports_bad_settings(tmp_path, capsys):
    assert main(["rl", str(tmp_path / "run"), "--from", str(tmp_path), "grpo.group_size=1"]) == 2
    assert "group_size" in capsys.readouterr().err


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    stage_one = stage_one_checkpoint(tmp_path / "stage1")
    changes = ("grpo.group_size=2", "optim.lr=3e-3", "checkpoint.every=1", "reward.dense_weight=0.5")
    straight = reinforce(_config(stage_one, "train.iterations=2", *changes), tmp_path / "straight", suite=LineSuite())
    reinforce(_config(stage_one, "train.iterations=1", *changes), tmp_path / "split", suite=LineSuite())
    resumed = reinforce(_config(stage_one, "train.iterations=2", *changes), tmp_path / "split", resume=True,
                        suite=LineSuite())
    assert straight.last_iteration == resumed.last_iteration == 2
    a = load_file(str(latest_checkpoint(tmp_path / "straight") / WEIGHTS_FILE))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / WEIGHTS_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop_times = lambda rows: [{k: v for k, v in m.items() if not k.startswith(("time/", "throughput/"))} for m in rows]
    assert drop_times(read_metrics(tmp_path / "straight")) == drop_times(read_metrics(tmp_path / "split"))

    # The run is a bundle aim.eval loads: Stage I's model with only the action stream moved.
    metrics = read_metrics(tmp_path / "straight")
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("return/mean", "success/rate", "reward/dense", "reward/sparse", "update/kl", "update/clip_fraction",
                "throughput/episodes_per_min"):
        assert all(math.isfinite(m[key]) for m in metrics), key
    assert (tmp_path / "straight" / "tensorboard").is_dir()
    before, after = load_bundle(stage_one).model.state_dict(), load_bundle(tmp_path / "straight").model.state_dict()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(is_action_stream(name) for name in moved)
    assert "heads.action.proj_out.weight" in moved


def _fisher_one_sided(before: int, after: int, n: int) -> float:
    """P(at least ``after`` of the successes fall in the second sample | before + after successes
    in two samples of n), under no difference (Fisher's exact test, hypergeometric tail)."""
    total = before + after
    return sum(math.comb(n, k) * math.comb(n, total - k) for k in range(after, min(n, total) + 1)) / math.comb(2 * n, total)


def test_rl_raises_the_success_of_a_weak_policy(tmp_path):
    """A random tiny model pushes the point past the line rarely (its actions are not aimed);
    a short sparse-reward RL run (2 iterations of one group of 8) makes it succeed significantly
    more often on the same 20 held-out seeds (one-sided Fisher exact test at the 1% level: with
    one success before, eight or more after). RL that learned nothing, or learned backwards,
    leaves the rate where it was and fails the test."""
    stage_one = stage_one_checkpoint(tmp_path / "stage1")
    config = _config(stage_one, "rollout.groups_per_task=1", "grpo.group_size=8", "reward.dense_weight=0",
                     "optim.lr=1e-2", "train.iterations=2", "checkpoint.every=2")
    reinforce(config, tmp_path / "rl", suite=LineSuite())
    episodes = 20
    settings = EvalSettings((TASK,), episodes, SamplerConfig(video_steps=2, guidance_scale=1.0, action_steps=4),
                            max_steps=16)
    successes = {}
    for name, run in (("before", stage_one), ("after", tmp_path / "rl")):
        successes[name] = sum(e.success for e in evaluate(run, settings, tmp_path / name, LineSuite(), progress=False))
    assert successes["before"] <= episodes // 5, successes  # the weak policy succeeds rarely (at most 20%)
    assert _fisher_one_sided(successes["before"], successes["after"], episodes) < 0.01, successes
