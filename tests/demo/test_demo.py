"""``aim demo`` end to end at a toy scale: every stage runs (Stage II included), the report shows
every variant with paths relative to its own folder, and a second call resumes (reuses every
stage) instead of redoing work."""

import dataclasses
import json
import re

import pytest

from aim.demo import run_demo
from aim.demo.pipeline import summary_table
from aim.demo.settings import results_path, run_dir
from aim.model.sampler import SamplerConfig

from .toy import OUT, TOY


def test_demo_runs_every_stage_then_resumes(toy_demo, monkeypatch):
    base, first = toy_demo
    out = base / OUT
    assert set(first.stage_seconds) == {"collect", "train aim, no-value-map", "rl aim+rl", "eval aim",
                                        "eval no-value-map", "eval aim+rl"}
    page = (base / first.report).read_text()
    assert "<th>aim+rl</th>" in page and (out / "figures" / "rl.png").is_file() and "'figures/rl.png'" in page
    assert json.loads(results_path(out, "aim+rl").read_text())["tasks"]["handle-press-v3"]["episodes"] == 1
    for variant in TOY.variants:
        assert f"<th>{variant}</th>" in page
        assert (out / "figures" / f"predictions-{variant}.png").is_file()
        results = json.loads(results_path(out, variant).read_text())
        assert results["tasks"]["handle-press-v3"]["episodes"] == 1
        assert (run_dir(out, variant) / "metrics.jsonl").is_file()
    # Every picture is named relative to the report's folder (the run used the relative OUT).
    sources = re.findall(r"src='([^']+)'", page)
    assert "figures/losses.png" in sources and any(s.endswith(".gif") for s in sources)
    for source in sources:
        assert not source.startswith(("/", OUT)) and (out / source).is_file(), source

    assert "Ablation over training seeds" not in page
    ablation = out / "ablation" / "ablation.json"  # where benchmarks/ablation.py --out OUT/ablation writes
    ablation.parent.mkdir()
    ablation.write_text(json.dumps({"rows": [{"suite": "demo", "variant": v, "seed": 0, "task": "handle-press-v3",
                                              "successes": 1, "episodes": 2} for v in ("aim", "no-value-map")]}))
    stamps = {v: results_path(out, v).stat().st_mtime_ns for v in TOY.evaluated}
    monkeypatch.chdir(base)
    second = run_demo(OUT, TOY, progress=False)
    assert "Ablation over training seeds" in (base / second.report).read_text()
    assert set(second.stage_seconds) == {"collect"}  # collection only checks what is there
    assert {v: results_path(out, v).stat().st_mtime_ns for v in TOY.evaluated} == stamps
    assert second.results == first.results

    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(summary_table(second))
    text = console.export_text()
    assert "handle-press-v3" in text and "aim+rl" in text and "collect" in text


def test_a_resumed_demo_reuses_only_outputs_of_the_same_settings(toy_demo, tmp_path, monkeypatch):
    """A copy of the toy demo, resumed with other settings: evaluations of other episode counts are
    made again; a training run of another step count is refused, naming the change and the fix."""
    import shutil

    from aim.errors import UsageError

    base, first = toy_demo
    shutil.copytree(base / OUT, tmp_path / OUT)
    monkeypatch.chdir(tmp_path)
    again = run_demo(OUT, dataclasses.replace(TOY, eval_episodes=2), progress=False)
    assert set(again.stage_seconds) == {"collect", *(f"eval {v}" for v in TOY.evaluated)}
    assert all(r["tasks"]["handle-press-v3"]["episodes"] == 2 for r in again.results.values())
    with pytest.raises(UsageError, match=r"runs/aim was made with other settings \(train_steps 3 -> 5\); "
                                         r"use another output folder, or delete"):
        run_demo(OUT, dataclasses.replace(TOY, train_steps=5), progress=False)
    with pytest.raises(UsageError, match=r"data was made with other settings \(image_size 32 -> 48\)"):
        run_demo(OUT, dataclasses.replace(TOY, image_size=48), progress=False)


@pytest.mark.parametrize("changes, message", [
    (dict(variants=("aim", "bigger")), "unknown variants"),
    (dict(train_steps=0), "train_steps"),
    (dict(variants=("no-value-map",)), "needs the aim variant"),
    (dict(sampler=SamplerConfig(video_steps=1, guidance_scale=1.0, action_steps=1)), "at least 2 steps"),
    (dict(workers=0), "workers must be >= 1"),
])
def test_bad_demo_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TOY, **changes)


def test_report_sources_are_relative_to_its_folder_wherever_the_demo_ran(tmp_path, monkeypatch):
    from aim.demo.report import _video

    out = tmp_path / "runs" / "demo"
    (out / "eval" / "videos").mkdir(parents=True)
    for name in ("a.gif", "b.mp4"):
        (out / "eval" / "videos" / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "runs")
    relative_out = out.relative_to(tmp_path / "runs")  # "demo", as a relative OUT gives
    for folder in (relative_out, out):
        assert _video(folder, folder / "eval" / "videos" / "a.gif", "a") == "<img src='eval/videos/a.gif' alt='a'>"
        assert _video(folder, out / "eval" / "videos" / "b.mp4", "b").startswith("<video src='eval/videos/b.mp4'")
    assert "missing: eval/videos/c.gif" in _video(relative_out, relative_out / "eval" / "videos" / "c.gif", "c")
