"""Benchmark: Stage II RL (``aim rl``) on the ``aim demo`` tasks — success before and after, with
reward ablations, and rollout throughput.

From one Stage I run (default: the demo's AIM run), three RL runs with the same budget and seeds:
the paper's reward (lambda_d = lambda_s = 1), dense-only (the value-map reward alone, lambda_s = 0)
and sparse-only (task success alone, lambda_d = 0). The Stage I model and every RL result are
evaluated closed-loop on the same held-out seeds with the demo's sampler and step limit; success
comes with its 95% Wilson interval (``aim.eval.statistics``). Throughput is RL rollout episodes
per minute (median over iterations, from the run's metrics) next to the deterministic evaluation
of the Stage I model measured in the same run (episodes per minute, same workers).

Prints a table and appends it with device, versions and date to benchmarks/RESULTS.md
(``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import environment, record

from aim.demo.settings import DEMO_TASKS, DemoSettings
from aim.eval.runner import EvalSettings, evaluate
from aim.eval.statistics import wilson_interval
from aim.process_settings import use_offscreen_rendering
from aim.rl.config import load_rl_config
from aim.rl.loop import reinforce
from aim.runtime.monitor import read_metrics

# Variant -> (lambda_d, lambda_s).
REWARDS = {"dense + sparse": (1.0, 1.0), "dense only": (1.0, 0.0), "sparse only": (0.0, 1.0)}


@dataclass
class Row:
    variant: str
    successes: int
    episodes: int
    seconds: float  # RL run (rollouts and updates); for Stage I, its evaluation (NaN: reused)
    episodes_per_min: float  # RL rollouts; for Stage I, its evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", default="aim-demo/runs/aim", help="a Stage I run or checkpoint")
    parser.add_argument("--out", default="rl-benchmark", help="folder for the RL runs and evaluations (replaced)")
    parser.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--groups-per-task", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--eval-episodes", type=int, default=DemoSettings().eval_episodes)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=list(REWARDS), default=list(REWARDS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the updating process (the tiny "
                        "model's small operations gain nothing from more: benchmarks/train.py)")
    parser.add_argument("--noise-level", type=float, help="the action SDE's noise level a (default: the preset's)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="further RL-config override for every reward variant, repeatable (e.g. optim.lr=3e-4)")
    parser.add_argument("--stage1-results", help="a results.json of the Stage I run evaluated with these tasks, "
                        "episodes and the demo's sampler (evaluation is deterministic): its counts stand for the "
                        "Stage I row instead of evaluating again")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    demo = DemoSettings()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    settings = EvalSettings(tuple(args.tasks), args.eval_episodes, demo.sampler, demo.eval_max_steps)
    if args.stage1_results:
        rows = [_reused("Stage I", Path(args.stage1_results), settings)]
    else:
        rows = [_evaluated("Stage I", args.stage1, settings, out / "eval" / "stage1", args.workers)]
    sampler = demo.sampler
    for variant in args.variants:
        dense, sparse = REWARDS[variant]
        sampled = (f"{{video_steps: {sampler.video_steps}, guidance_scale: {sampler.guidance_scale}, "
                   f"action_steps: {sampler.action_steps}}}")
        config = load_rl_config("tiny-metaworld", overrides=[
            f"start={args.stage1}", f"rollout.tasks=[{','.join(args.tasks)}]", f"rollout.workers={args.workers}",
            f"rollout.groups_per_task={args.groups_per_task}", f"rollout.max_steps={demo.eval_max_steps}",
            f"rollout.sampler={sampled}", f"grpo.group_size={args.group_size}", f"train.iterations={args.iterations}",
            f"reward.dense_weight={dense}", f"reward.sparse_weight={sparse}", f"checkpoint.every={args.iterations}",
            *([f"grpo.noise_level={args.noise_level}"] if args.noise_level is not None else []), *args.override])
        run = out / "runs" / variant.replace(" ", "").replace("+", "-")
        started = time.perf_counter()
        reinforce(config, run)
        seconds = time.perf_counter() - started
        throughput = statistics.median(m["throughput/episodes_per_min"] for m in read_metrics(run))
        evaluated = _evaluated(variant, run, settings, out / "eval" / run.name, args.workers)
        rows.append(Row(variant, evaluated.successes, evaluated.episodes, seconds, throughput))

    noise = "" if args.noise_level is None else f", SDE noise level {args.noise_level}"
    title = (f"### Stage II RL, {', '.join(args.tasks)}: {args.iterations} iterations x {args.groups_per_task} "
             f"group(s)/task x G={args.group_size}{noise}; {args.eval_episodes} held-out episodes/task; "
             f"from {args.stage1}\n\n{environment(torch.device('cpu'))} · {args.workers} worker(s)")
    table = _table(rows)
    print(title + "\n\n" + table)
    if not args.no_record:
        record(title, table)


def _evaluated(name: str, run, settings: EvalSettings, out: Path, workers: int) -> Row:
    started = time.perf_counter()
    episodes = evaluate(run, settings, out, workers=workers)
    seconds = time.perf_counter() - started
    return Row(name, sum(e.success for e in episodes), len(episodes), seconds, 60 * len(episodes) / seconds)


def _reused(name: str, path: Path, settings: EvalSettings) -> Row:
    """The Stage I row from an earlier evaluation's results document, checked to match ``settings``."""
    import json

    results = json.loads(path.read_text())
    sampler = results["settings"]["sampler"]
    same = (results["settings"]["tasks"] == list(settings.tasks) and results["settings"]["episodes"] == settings.episodes
            and all(sampler[k] == getattr(settings.sampler, k) for k in sampler)
            and results["settings"]["max_steps"] == settings.max_steps)
    if not same:
        raise ValueError(f"--stage1-results {path}: evaluated with other tasks, episodes, sampler or step limit "
                         f"({results['settings']}) than this benchmark's")
    successes = sum(t["successes"] for t in results["tasks"].values())
    episodes = sum(t["episodes"] for t in results["tasks"].values())
    return Row(name, successes, episodes, float("nan"), float("nan"))


def _table(rows: list[Row]) -> str:
    base = rows[0].successes / rows[0].episodes
    lines = ["| policy | success | 95% CI | change | time | episodes/min |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        rate = row.successes / row.episodes
        low, high = wilson_interval(row.successes, row.episodes)
        change = "" if row is rows[0] else f"{100 * (rate - base):+.0f} pt"
        what = "eval" if row is rows[0] else "RL"
        timing = (f"{what} {row.seconds:.0f} s | {what} {row.episodes_per_min:.1f}" if row.seconds == row.seconds
                  else "evaluated earlier (--stage1-results) | -")
        lines.append(f"| {row.variant} | {row.successes}/{row.episodes} ({rate:.0%}) | {low:.0%}-{high:.0%} | {change} | "
                     f"{timing} |")
    return "\n".join(lines)


if __name__ == "__main__":
    use_offscreen_rendering()  # an entry point: Meta-World renders offscreen
    main()
