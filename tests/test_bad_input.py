"""Every verb of the ``aim`` command with wrong values, missing and damaged files, out-of-range
numbers: each is one line ``aim <verb>: <message>`` naming the problem, with the documented exit
code (2: a bad argument or setting; 1: a run that failed on its data or files), before any work.

``CASES`` is also the table of docs/faults.md (checked by ``test_the_docs_table_lists_every_case``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from aim.cli import main
from tests.eval.helpers import save_bundle, tiny_bundle
from tests.train.helpers import make_dataset

DOCS = Path(__file__).resolve().parents[1] / "docs" / "faults.md"


@dataclass(frozen=True)
class Case:
    """``argv`` (with {data}, {ckpt}, {tmp} filled in) exits with ``code`` and a line containing ``says``;
    ``damage`` prepares the files first."""

    what: str
    argv: str
    code: int
    says: str
    damage: Callable[[Path], None] | None = None


def _write(relative: str, text: str):
    def damage(tmp: Path) -> None:
        (tmp / relative).write_text(text)
    return damage


def _truncate(relative: str):
    def damage(tmp: Path) -> None:
        path = tmp / relative
        path.write_bytes(path.read_bytes()[:40])
    return damage


CASES = [
    # aim dataset
    Case("dataset info: no dataset at the path", "dataset info {tmp}/nothing", 1, "meta/info.json: missing"),
    Case("dataset info: meta/info.json is not JSON", "dataset info {data}", 1, "info.json: unreadable JSON",
         _write("data/meta/info.json", "{not json")),
    Case("dataset info: meta/stats.json is not JSON", "dataset info {data}", 1, "stats.json: unreadable JSON",
         _write("data/meta/stats.json", "{oops")),
    Case("dataset preview: an episode past the end", "dataset preview {data} --episode 9 --out {tmp}/p.png", 2,
         "no frame 0 in episode 9"),
    Case("dataset preview: a frame past the episode's end", "dataset preview {data} --frame 99 --out {tmp}/p.png", 2,
         "no frame 99 in episode 0"),
    Case("dataset convert-robotwin: a folder without episodes", "dataset convert-robotwin {tmp} {tmp}/out --fps 25",
         1, "no episode*.hdf5"),
    Case("dataset convert-robotwin: fps 0", "dataset convert-robotwin {tmp} {tmp}/out --fps 0", 2, "fps must be"),
    Case("dataset convert-robotwin: a non-finite tool-centre offset",
         "dataset convert-robotwin {tmp} {tmp}/out --fps 25 --tcp-offset nan", 2, "tcp_offset must be finite"),
    # aim collect
    Case("collect: an unknown task", "collect {tmp}/c --tasks nope-v3 --seeds 0", 2, "unknown Meta-World task 'nope-v3'"),
    Case("collect: an unknown camera", "collect {tmp}/c --tasks reach-v3 --seeds 0 --cameras nope", 2,
         "unknown cameras ['nope']"),
    Case("collect: image size 0", "collect {tmp}/c --tasks reach-v3 --seeds 0 --size 0", 2, "size must be"),
    Case("collect: frame-every 0", "collect {tmp}/c --tasks reach-v3 --seeds 0 --frame-every 0", 2, "frame_every"),
    Case("collect: no workers", "collect {tmp}/c --tasks reach-v3 --seeds 0 --workers 0", 2, "workers must be"),
    Case("collect: a negative seed", "collect {tmp}/c --tasks reach-v3 --seeds -1", 2, "seeds must be"),
    # aim train
    Case("train: no dataset given", "train {tmp}/r", 2, "data.root is required"),
    Case("train: a dataset folder that does not exist", "train {tmp}/r data.root={tmp}/nothing", 1,
         "meta/info.json: missing"),
    Case("train: an unknown config key", "train {tmp}/r data.root={data} optim.lrr=1", 2, "unknown config key optim.lrr"),
    Case("train: a camera the dataset does not have", "train {tmp}/r data.root={data} data.cameras=[nope]", 2,
         "data.cameras ['nope'] are not in"),
    Case("train: a view size that does not divide the views", "train {tmp}/r data.root={data} data.view_size=[7,7]",
         2, "data.view_size"),
    Case("train: clips longer than every episode", "train {tmp}/r data.root={data} data.num_chunks=40", 2,
         "no episode is long enough"),
    Case("train: an unknown preset", "train {tmp}/r --preset nope", 2, "unknown training preset 'nope'"),
    Case("train: --resume of a run that does not exist", "train {tmp}/r --resume", 1, "nothing to resume"),
    # aim rl
    Case("rl: a Stage I run that does not exist", "rl {tmp}/rl --from {tmp}/nothing --preset tiny-metaworld "
         "rollout.tasks=[reach-v3]", 1, "neither a checkpoint"),
    Case("rl: a group of one episode", "rl {tmp}/rl --from {ckpt} grpo.group_size=1", 2, "group_size"),
    # aim eval
    Case("eval: a run that does not exist", "eval {tmp}/nothing --tasks reach-v3 --out {tmp}/e", 1,
         "neither a checkpoint"),
    Case("eval: no --tasks", "eval {ckpt} --out {tmp}/e", 2, "needs --tasks and --out"),
    Case("eval: zero video steps", "eval {ckpt} --tasks reach-v3 --out {tmp}/e --video-steps 0", 2,
         "step counts must be >= 1"),
    Case("eval: zero episodes", "eval {ckpt} --tasks reach-v3 --out {tmp}/e --episodes 0", 2, "episodes >= 1"),
    Case("eval: no workers", "eval {ckpt} --tasks reach-v3 --out {tmp}/e --workers 0", 2, "workers must be"),
    Case("eval: an unknown task", "eval {ckpt} --tasks nope-v3 --out {tmp}/e", 2, "unknown Meta-World task 'nope-v3'"),
    Case("eval: a damaged bundle.json", "eval {ckpt} --tasks reach-v3 --out {tmp}/e", 1,
         "bundle.json: unreadable", _write("ckpt/bundle.json", "{")),
    Case("eval: a truncated model.safetensors", "eval {ckpt} --tasks reach-v3 --out {tmp}/e", 1,
         "model.safetensors: damaged", _truncate("ckpt/model.safetensors")),
    Case("eval: a RoboTwin folder without policy/", "eval {ckpt} --robotwin-policy {tmp}", 1, "has no policy/ folder"),
    # aim demo
    Case("demo: no workers (refused before collecting)", "demo {tmp}/demo --workers 0", 2, "workers must be"),
    Case("demo: an unknown task (refused before collecting)", "demo {tmp}/demo --tasks nope-v3", 2,
         "unknown Meta-World task 'nope-v3'"),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    make_dataset(root / "data")
    save_bundle(tiny_bundle(image_size=(16, 16), cameras=["corner"], tasks=["reach-v3"]), root / "ckpt")
    return root


@pytest.fixture
def tmp(prepared, tmp_path):
    """A fresh copy of the prepared dataset and checkpoint, so a case may damage them."""
    import shutil

    for name in ("data", "ckpt"):
        shutil.copytree(prepared / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_a_bad_input_is_one_line_naming_it(case, tmp, capsys):
    if case.damage:
        case.damage(tmp)
    argv = case.argv.format(tmp=tmp, data=tmp / "data", ckpt=tmp / "ckpt").split()
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == case.code, err
    assert len(err.splitlines()) == 1 and err.startswith(f"aim {argv[0]}: "), err
    assert case.says in err, err
    created = sorted(set(p.relative_to(tmp) for p in tmp.rglob("*")) - set(before))
    assert not [p for p in created if p.parts[0] in ("c", "r", "rl", "e", "demo", "out")
                and not p.name.endswith(".png")], f"work started before the refusal: {created}"


def test_debug_shows_the_traceback(tmp):
    from aim.errors import NotFoundError

    with pytest.raises(NotFoundError):
        main(["--debug", "eval", str(tmp / "nothing"), "--tasks", "reach-v3", "--out", str(tmp / "e")])


def test_the_docs_table_lists_every_case():
    rows = {row.split("|")[1].strip(): row for row in DOCS.read_text().splitlines() if row.startswith("| `aim")}
    for case in CASES:
        verb, what = case.what.split(": ", 1)
        row = rows.get(f"`aim {verb}` {what}")
        assert row is not None, f"docs/faults.md has no row for {case.what!r}"
        assert f"exit {case.code}" in row and case.says in row, row
