"""``aim demo`` end to end at a toy scale: every stage runs (Stage II included), the report shows
every variant, and a second call resumes (reuses every stage) instead of redoing work."""

import json

import pytest

from aim.demo import DemoSettings, run_demo
from aim.demo.pipeline import results_path, run_dir
from aim.model.sampler import SamplerConfig

TOY = DemoSettings(
    tasks=("handle-press-v3",), train_episodes=1, eval_episodes=1, image_size=32, train_steps=3,
    variants=("aim", "no-value-map"), eval_max_steps=8, workers=1,
    sampler=SamplerConfig(video_steps=1, guidance_scale=1.0, action_steps=2),
    overrides=("checkpoint.every=3", "log.sample_every=0", "schedule.warmup_steps=1", "train.batch_size=2",
               "train.micro_batch_size=2"),
    rl_iterations=1, rl_overrides=("rollout.groups_per_task=1", "grpo.group_size=2", "grpo.epochs=1"),
)


def test_demo_runs_every_stage_then_resumes(tmp_path):
    first = run_demo(tmp_path, TOY, progress=False)
    assert set(first.stage_seconds) == {"collect", "train aim, no-value-map", "rl aim+rl", "eval aim",
                                        "eval no-value-map", "eval aim+rl"}
    page = first.report.read_text()
    assert "<th>aim+rl</th>" in page and (tmp_path / "figures" / "rl.png").is_file() and "figures/rl.png" in page
    assert json.loads(results_path(tmp_path, "aim+rl").read_text())["tasks"]["handle-press-v3"]["episodes"] == 1
    for variant in TOY.variants:
        assert f"<th>{variant}</th>" in page
        assert (tmp_path / "figures" / f"predictions-{variant}.png").is_file()
        results = json.loads(results_path(tmp_path, variant).read_text())
        assert results["tasks"]["handle-press-v3"]["episodes"] == 1
        assert (run_dir(tmp_path, variant) / "metrics.jsonl").is_file()
    assert (tmp_path / "figures" / "losses.png").is_file()
    assert "figures/losses.png" in page and ".gif" in page

    assert "Ablation over training seeds" not in page
    ablation = tmp_path / "ablation" / "ablation.json"  # where benchmarks/ablation.py --out OUT/ablation writes
    ablation.parent.mkdir()
    ablation.write_text(json.dumps({"rows": [{"suite": "demo", "variant": v, "seed": 0, "task": "handle-press-v3",
                                              "successes": 1, "episodes": 2} for v in ("aim", "no-value-map")]}))
    stamps = {v: results_path(tmp_path, v).stat().st_mtime_ns for v in TOY.evaluated}
    second = run_demo(tmp_path, TOY, progress=False)
    assert "Ablation over training seeds" in second.report.read_text()
    assert set(second.stage_seconds) == {"collect"}  # collection only checks what is there
    assert {v: results_path(tmp_path, v).stat().st_mtime_ns for v in TOY.evaluated} == stamps
    assert second.results == first.results


@pytest.mark.parametrize("changes, message", [
    (dict(variants=("aim", "bigger")), "unknown variants"),
    (dict(train_steps=0), "train_steps"),
    (dict(variants=("no-value-map",)), "needs the aim variant"),
    (dict(sampler=SamplerConfig(video_steps=1, guidance_scale=1.0, action_steps=1)), "at least 2 steps"),
])
def test_bad_demo_settings_are_named(changes, message):
    import dataclasses

    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TOY, **changes)
