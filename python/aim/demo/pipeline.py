"""The demo's stages: collect -> train (AIM and two ablations) -> [Stage II RL on AIM] -> evaluate -> report.

Every stage writes under one output folder and is skipped when its output is already there and
was made by the same settings (``aim.demo.stages``), so an interrupted demo resumes where it
stopped (collection resumes per episode, training from its latest checkpoint). The two ablations measure what the paper never did (docs/method.md §8): the model
without the value-map stream, and the model whose future actions may also read the chunk's
future video (``aim.ops.token_groups.ACTIONS_SEE_VIDEO``). All variants train on the same data
with the same seed and are evaluated on the same held-out seeds. With ``rl_iterations`` the AIM
run is also improved by Stage II (``aim.rl``, the ``tiny-metaworld`` RL preset, both rewards) on
the demo tasks, and evaluated beside it as ``aim+rl``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

from aim.demo.report import write_report
from aim.demo.settings import (
    RL_PRESET,
    RL_VARIANT,
    TRAIN_PRESET,
    VARIANTS,
    DemoSettings,
    results_path,
    run_dir,
)
from aim.demo.stages import StageRecord
from aim.eval.results import results_table, summarise, write_results
from aim.eval.runner import EvalSettings, evaluate
from aim.eval.seeds import eval_seeds
from aim.runtime.checkpoint import checkpoint_dir, latest_checkpoint
from aim.runtime.monitor import read_metrics
from aim.sim.collect import CollectSettings, collect
from aim.train import load_config, train


@dataclass
class DemoResult:
    out_dir: Path
    stage_seconds: dict[str, float]  # stages this call ran (a resumed demo skips finished ones)
    results: dict[str, dict]  # variant -> aim.eval results document
    report: Path


def run_demo(out_dir: str | Path, settings: DemoSettings = DemoSettings(), progress: bool = True) -> DemoResult:
    """Runs (or resumes) every stage under ``out_dir`` and writes ``out_dir/report.html``.

    Everything the demo needs is checked before the first stage starts; each stage's outputs are
    reused only when the settings that made them are the ones asked for (``aim.demo.stages``).
    """
    settings.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = StageRecord(out)
    seconds: dict[str, float] = {}
    collect_settings = CollectSettings(height=settings.image_size, width=settings.image_size,
                                       frame_every=settings.frame_every, multisample=settings.multisample)
    data_key = {"tasks": settings.tasks, "image_size": settings.image_size, "frame_every": settings.frame_every,
                "multisample": settings.multisample, "train_episodes": settings.train_episodes}
    fresh_start = f"use another output folder, or delete {out / 'data'}, {out / 'heldout'} and {out / 'runs'} to start over"
    stages.claim("collect", data_key, out / "data", fresh_start)
    with _timed(seconds, "collect"):
        _say(progress, f"[1/4] collecting {settings.train_episodes} expert episodes per task, and one held-out "
                       "episode per task for the report's predictions")
        collect(out / "data", list(settings.tasks), list(range(settings.train_episodes)), collect_settings,
                settings.workers, progress)
        collect(out / "heldout", list(settings.tasks), eval_seeds(1), collect_settings, settings.workers, progress)
    for variant in settings.variants:
        stages.claim(f"train {variant}", _train_key(settings, variant, data_key), run_dir(out, variant),
                     f"use another output folder, or delete {run_dir(out, variant)} to train it again")
    pending = [v for v in settings.variants if not checkpoint_dir(run_dir(out, v), settings.train_steps).is_dir()]
    if pending:
        with _timed(seconds, "train " + ", ".join(pending)):
            _say(progress, f"[2/4] training {', '.join(pending)} for {settings.train_steps} steps each "
                           "(side by side, one thread each)")
            _train_variants(out, pending, settings, progress)
    if settings.rl_iterations:
        rl_key = {**_train_key(settings, "aim", data_key), "rl_iterations": settings.rl_iterations,
                  "rl_overrides": settings.rl_overrides, "sampler": dataclasses.asdict(settings.sampler),
                  "eval_max_steps": settings.eval_max_steps}
        stages.claim(f"rl {RL_VARIANT}", rl_key, run_dir(out, RL_VARIANT),
                     f"use another output folder, or delete {run_dir(out, RL_VARIANT)} to run Stage II again")
        if not checkpoint_dir(run_dir(out, RL_VARIANT), settings.rl_iterations).is_dir():
            with _timed(seconds, f"rl {RL_VARIANT}"):
                _say(progress, f"[2/4] Stage II: {settings.rl_iterations} RL iterations on the aim run")
                _reinforce(out, settings, progress)
    results = {}
    for variant in settings.evaluated:
        path = results_path(out, variant)
        eval_key = {"tasks": settings.tasks, "eval_episodes": settings.eval_episodes,
                    "sampler": dataclasses.asdict(settings.sampler), "eval_max_steps": settings.eval_max_steps,
                    "checkpoint": str(latest_checkpoint(run_dir(out, variant)).name)}
        if path.is_file() and stages.matches(f"eval {variant}", eval_key):
            results[variant] = json.loads(path.read_text())
            continue
        with _timed(seconds, f"eval {variant}"):
            again = " (again: the earlier results came from other settings)" if path.is_file() else ""
            _say(progress, f"[3/4] evaluating {variant}{again}: {settings.eval_episodes} episodes x "
                           f"{len(settings.tasks)} tasks (the first of each task also rendered for viewing as a video)")
            results[variant] = _evaluate_variant(out, variant, settings, progress)
        stages.record(f"eval {variant}", eval_key)
        if progress:
            from rich.console import Console

            Console().print(results_table(results[variant]))
    _say(progress, "[4/4] writing the report (loss curves, imagined vs true futures, rollouts)")
    report = write_report(out, settings, results, seconds)
    return DemoResult(out, seconds, results, report)


def _train_key(settings: DemoSettings, variant: str, data_key: dict) -> dict:
    """What a variant's training run depends on."""
    return {**data_key, "variant": variant, "variant_overrides": VARIANTS[variant], "train_steps": settings.train_steps,
            "overrides": settings.overrides}


def summary_table(result: DemoResult):
    """A ``rich.table.Table`` a person reads at the end: success per task and variant, the mean,
    and the stages this call ran with their times."""
    from rich.table import Table

    table = Table(title=f"aim demo: closed-loop success ({result.out_dir / 'report.html'})")
    table.add_column("task")
    for variant in result.results:
        table.add_column(variant, justify="right")
    tasks = next(iter(result.results.values()))["tasks"]
    for task in tasks:
        table.add_row(task, *(f"{r['tasks'][task]['successes']}/{r['tasks'][task]['episodes']}"
                              for r in result.results.values()))
    table.add_row("mean", *(f"{r['mean_success_rate']:.0%}" for r in result.results.values()), style="bold")
    stages = ", ".join(f"{name} {s / 60:.1f} min" for name, s in result.stage_seconds.items())
    table.caption = f"this call ran: {stages or 'nothing (every stage was reused)'}"
    return table


def _train_variants(out: Path, variants: list[str], settings: DemoSettings, progress: bool) -> None:
    """Trains all ``variants`` at once, one spawned single-threaded process each, the operating
    system sharing the cores between them: the tiny model's operations are too small to use two
    threads well (``benchmarks/train.py``), and variants of unequal cost run side by side keep
    every core busy to the end, where two at a time leave one core idle while the last variant
    trains alone. One progress bar follows all runs through their metrics files."""
    from tqdm import tqdm

    jobs = [(out, variant, settings) for variant in variants]
    pool = multiprocessing.get_context("spawn").Pool(len(jobs), _one_thread)
    with pool, tqdm(total=settings.train_steps * len(jobs), desc="train (starting: loading data)", unit="step",
                    disable=not progress) as bar:
        done = pool.map_async(_train_variant, jobs)
        while not done.ready():
            done.wait(2.0)
            steps = sum(len(read_metrics(run_dir(out, v))) for v in variants)
            if steps and bar.n == 0:
                bar.set_description("train")
            bar.update(steps - bar.n)
        done.get()  # re-raises a run's error here


def _one_thread() -> None:
    """A training process's start: one thread, and the freed memory kept (aim.process_settings)."""
    import torch

    from aim.process_settings import retain_freed_memory

    torch.set_num_threads(1)
    retain_freed_memory()


def _train_variant(job: tuple[Path, str, DemoSettings]) -> None:
    out, variant, settings = job
    directory = run_dir(out, variant)
    overrides = [f"data.root={out / 'data'}", f"train.steps={settings.train_steps}", "train.device=cpu",
                 "log.progress=false", *VARIANTS[variant], *settings.overrides]
    resume = latest_checkpoint(directory) is not None
    train(load_config(TRAIN_PRESET, overrides=overrides), directory, resume=resume)


def _reinforce(out: Path, settings: DemoSettings, progress: bool) -> None:
    """Stage II on the aim run, sampling as the demo evaluates (its sampler and step limit)."""
    from aim.rl.config import load_rl_config
    from aim.rl.loop import reinforce

    s = settings.sampler
    overrides = [f"start={run_dir(out, 'aim')}", f"rollout.tasks=[{','.join(settings.tasks)}]",
                 f"train.iterations={settings.rl_iterations}", f"rollout.workers={settings.workers}",
                 f"rollout.max_steps={settings.eval_max_steps}", f"rollout.sampler.video_steps={s.video_steps}",
                 f"rollout.sampler.guidance_scale={s.guidance_scale}", f"rollout.sampler.action_steps={s.action_steps}",
                 f"log.progress={str(progress).lower()}", *settings.rl_overrides]
    directory = run_dir(out, RL_VARIANT)
    resume = latest_checkpoint(directory) is not None
    reinforce(load_rl_config(RL_PRESET, overrides=overrides), directory, resume=resume)


def _evaluate_variant(out: Path, variant: str, settings: DemoSettings, progress: bool) -> dict:
    path = results_path(out, variant)
    eval_settings = EvalSettings(tasks=settings.tasks, episodes=settings.eval_episodes, sampler=settings.sampler,
                                 max_steps=settings.eval_max_steps)
    episodes = evaluate(run_dir(out, variant), eval_settings, path.parent, workers=settings.workers, progress=progress)
    results = summarise(episodes, eval_settings, run=str(run_dir(out, variant)))
    write_results(path, results)
    return results


class _timed:
    def __init__(self, seconds: dict[str, float], name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self.name] = time.perf_counter() - self.started


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)
