"""Benchmark: the value map's effect over training seeds — aim against no-value-map,
actions-see-video and aim+rl on the demo suite and the intent suite.

Every (suite, training seed) is one ``aim demo`` folder, ``OUT/<suite>/seed-<k>``, run by
``aim.demo.pipeline.run_demo`` with ``train.seed=k``: the variants train on the suite's one
dataset (``OUT/<suite>/data``, linked into every seed's folder, so every seed and variant reads
the same episodes) and are evaluated on the same held-out seeds. The intent suite
(``aim.sim.intent_scenes``) holds two identical objects per scene, of which only the task id says
which is the goal. Two passes: Stage I (collect, train the three variants side by side, evaluate
them) for every seed and suite first, then Stage II (``aim+rl``: RL on each seed's aim run, then
its evaluation), so the Stage I table is complete before the longer RL pass starts. Every stage
resumes as the demo's do: run the same command again after a kill.

After every finished (suite, seed) the counts of every results file under OUT are written to
``--json`` and to ``OUT/ablation.json``, which the report of the demo folder ``OUT/..`` shows
(rows ``{suite, variant, seed, task, successes, episodes}``, with the settings, versions and stage
times beside them). At the end the tables (success per variant and seed; aim minus each
variant, seed by seed, with a 95% t interval over seeds: ``aim.demo.ablation_section``) are
printed and appended to benchmarks/RESULTS.md (``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch

import aim
from aim.demo.ablation_section import markdown_tables
from aim.demo.pipeline import run_demo
from aim.demo.settings import DEMO_TASKS, QUICK, RL_VARIANT, VARIANTS, DemoSettings
from aim.sim.intent_scenes import INTENT_TASKS
from common import environment, record

SUITES = {"demo": DEMO_TASKS, "intent": INTENT_TASKS}
SHARED = ("data", "heldout")  # folders every seed of a suite reads: the expert data and the held-out episode
DEFAULT_JSON = Path(__file__).parent / "results" / "ablation.json"
# Stage II per seed and suite: RL_ITERATIONS iterations of one group of 6 episodes per task, SDE noise level 0.3.
RL_ITERATIONS = 8
RL_OVERRIDES = ("rollout.groups_per_task=1", "grpo.group_size=6", "grpo.noise_level=0.3", "checkpoint.every=4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="aim-demo/ablation", help="runs, evaluations and reports (resumed)")
    parser.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="training seeds")
    parser.add_argument("--passes", nargs="+", choices=("stage1", "rl"), default=["stage1", "rl"])
    parser.add_argument("--rl-iterations", type=int, default=RL_ITERATIONS)
    parser.add_argument("--rl-override", action="append", default=None, metavar="KEY=VALUE",
                        help=f"RL-config override, repeatable (default: {' '.join(RL_OVERRIDES)})")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="training-config override for every variant, repeatable")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="Stage I variants (a tuning run trains aim alone)")
    parser.add_argument("--data-from", metavar="OUT", help="read the suites' data from another ablation folder "
                        "(linked, not collected again)")
    parser.add_argument("--quick", action="store_true", help="the demo's smoke-run budgets (not a result)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the rows go")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    rl_overrides = tuple(RL_OVERRIDES if args.rl_override is None else args.rl_override)
    base = QUICK if args.quick else DemoSettings()
    settings = {}
    for suite in args.suites:
        settings[suite] = dataclasses.replace(base, tasks=SUITES[suite], rl_iterations=0, variants=tuple(args.variants),
                                              overrides=(*base.overrides, *args.override))
        if args.data_from:
            _link_data(out / suite, Path(args.data_from).resolve() / suite)
    for stage in args.passes:
        for seed in args.seeds:
            for suite in args.suites:
                demo = _seeded(settings[suite], seed)
                if stage == "rl":
                    demo = dataclasses.replace(demo, rl_iterations=args.rl_iterations,
                                               rl_overrides=(*base.rl_overrides, *rl_overrides))
                started = time.perf_counter()
                print(f"== {stage}: suite {suite}, training seed {seed} ({_now()})", flush=True)
                result = run_demo(_seed_folder(out, suite, seed), demo)
                _log_times(out, suite, seed, stage, result.stage_seconds, time.perf_counter() - started)
                write_document(out, Path(args.json), settings, args.rl_iterations, rl_overrides)
    rows = json.loads(Path(args.json).read_text())["rows"]
    title = (f"### Ablation over training seeds {', '.join(map(str, args.seeds))}: "
             f"{', '.join(args.suites)} suites, {base.eval_episodes} held-out episodes per task"
             f"{' (--quick: not a result)' if args.quick else ''}\n{environment(torch.device('cpu'))}")
    table = markdown_tables(rows)
    print(title + "\n\n" + table)
    if not args.no_record:
        record(title, "\n" + table)


def _seeded(settings: DemoSettings, seed: int) -> DemoSettings:
    return dataclasses.replace(settings, overrides=(*settings.overrides, f"train.seed={seed}"))


def _seed_folder(out: Path, suite: str, seed: int) -> Path:
    """``OUT/<suite>/seed-<k>``, its data and held-out folders linked to the suite's own."""
    folder = out / suite / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if not (out / suite / name).exists():
            (out / suite / name).mkdir()
        link = folder / name
        if not link.is_symlink():
            if link.exists():
                raise FileExistsError(f"{link} is a folder of its own; the ablation links it to ../{name} "
                                      "(move it away to go on)")
            link.symlink_to(Path("..") / name)
    return folder


def _link_data(suite_folder: Path, source: Path) -> None:
    """``suite_folder``'s data and held-out folders as links to ``source``'s."""
    suite_folder.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link = suite_folder / name
        if not (source / name).is_dir():
            raise FileNotFoundError(f"--data-from: {source / name} is not a folder (collect it with an ablation run first)")
        if not link.is_symlink():
            link.symlink_to(source / name)


def collect_rows(out: Path) -> list[dict]:
    """One row per (suite, variant, seed, task) of every evaluation under ``out``."""
    rows = []
    for results in sorted(out.glob("*/seed-*/eval/*/results.json")):
        suite, seed, variant = results.parts[-5], int(results.parts[-4].removeprefix("seed-")), results.parts[-2]
        for task, counts in json.loads(results.read_text())["tasks"].items():
            rows.append({"suite": suite, "variant": variant, "seed": seed, "task": task,
                         "successes": counts["successes"], "episodes": counts["episodes"]})
    return rows


def write_document(out: Path, path: Path, settings: dict[str, DemoSettings], rl_iterations: int,
                   rl_overrides: tuple[str, ...]) -> None:
    """Writes every row found under ``out`` with the settings, versions and stage times beside them."""
    import metaworld
    import mujoco

    times = out / "times.jsonl"
    document = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
                        "aim": aim.__version__, "python": platform.python_version(),
                        "metaworld": getattr(metaworld, "__version__", "unknown"), "mujoco": mujoco.__version__},
        "settings": {suite: {**_plain(dataclasses.asdict(s)), "training_seed_override": "train.seed=<seed>"}
                     for suite, s in settings.items()},
        "rl": {"variant": RL_VARIANT, "iterations": rl_iterations, "overrides": list(rl_overrides)},
        "stage_times": [json.loads(line) for line in times.read_text().splitlines()] if times.is_file() else [],
        "rows": collect_rows(out),
    }
    for target in (path, out / "ablation.json"):  # the second is where the demo's report looks (OUT/..)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n")
        temporary.replace(target)


def _log_times(out: Path, suite: str, seed: int, stage: str, seconds: dict[str, float], total: float) -> None:
    entry = {"suite": suite, "seed": seed, "pass": stage, "finished": _now(), "total_s": round(total, 1),
             "stages_s": {k: round(v, 1) for k, v in seconds.items()}}
    with (out / "times.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


if __name__ == "__main__":
    main()
