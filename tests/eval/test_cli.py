"""``aim eval``: a saved checkpoint evaluated in Meta-World end to end, and the RoboTwin folder."""

import json

import pytest

from aim.cli import main

from .helpers import save_bundle, tiny_bundle

pytest.importorskip("metaworld")


def test_aim_eval_writes_results_and_a_table(tmp_path, capsys):
    save_bundle(tiny_bundle(image_size=(16, 16), cameras=["corner"], tasks=["reach-v3"]), tmp_path / "ckpt")
    args = ["eval", str(tmp_path / "ckpt"), "--tasks", "reach-v3", "--episodes", "2", "--max-steps", "4",
            "--video-steps", "2", "--action-steps", "2", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["tasks"]["reach-v3"]["episodes"] == 2
    assert [e["steps"] for e in results["episodes"]] == [4, 4]
    assert len(list((tmp_path / "out" / "videos").glob("*.gif"))) == 1
    assert "reach-v3" in capsys.readouterr().out


def test_aim_eval_errors_and_robotwin_folder(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing"), "--tasks", "reach-v3", "--out", str(tmp_path)]) == 1
    assert "neither a checkpoint" in capsys.readouterr().err
    (tmp_path / "robotwin" / "policy").mkdir(parents=True)
    assert main(["eval", str(tmp_path / "run"), "--robotwin-policy", str(tmp_path / "robotwin")]) == 0
    assert (tmp_path / "robotwin" / "policy" / "AIM" / "deploy_policy.yml").is_file()
