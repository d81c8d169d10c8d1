"""Stage II (docs/method.md §6): GRPO on the action stream of a Stage I model, rewarded by its own value maps.

One iteration: every task gets ``rollout.groups_per_task`` new simulator seeds, each a group of G
episodes sampled with the action SDE under the current weights (``aim.rl.rollouts``); each
episode's return (``aim.rl.reward``) is turned into a group-normalised advantage, and
``grpo.epochs`` clipped-ratio steps are taken on the recorded chunks (``aim.rl.update``; chunks of
several episodes batched by ``aim.rl.batching``). Video, value, text and tokenizer weights stay
Stage I's, so the value maps that pay the reward do not move.

A run directory looks like a Stage I run, so ``aim eval`` and ``aim.train.load_bundle`` read it:
``config.yaml`` (the RL config), ``checkpoints/`` written by ``aim.runtime.checkpoint`` (atomic,
``latest``; the whole model for ``load_bundle`` with ``bundle.json`` Stage I's plus the RL config,
and the optimiser state, iteration and generators for an exact ``--resume``), ``metrics.jsonl``
and ``tensorboard/`` (``aim.runtime.monitor``). Iterations count from 1, like training steps.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aim.errors import ConfigError
from aim.eval.suite import Suite
from aim.rl.action_stream import freeze_all_but_action_stream
from aim.rl.batching import batched_chunks
from aim.rl.config import RLConfig, save_rl_config
from aim.rl.episode import RLEpisode
from aim.rl.grpo import group_advantages
from aim.rl.reward import episode_return
from aim.rl.rollouts import GroupRollouts, RolloutSettings, training_seeds
from aim.rl.update import RecordedChunk, grpo_update
from aim.runtime.bundle import (
    ModelBundle,
    bundle_metadata,
    load_bundle,
    trained_modules,
)
from aim.runtime.checkpoint import load_checkpoint, save_checkpoint
from aim.runtime.distributed import Distributed
from aim.runtime.monitor import Monitor
from aim.runtime.optim import make_optimizer, make_scheduler
from aim.runtime.run_dir import CONFIG_FILE, prepare_run_dir


@dataclass
class RLResult:
    bundle: ModelBundle  # the trained model
    run_dir: Path
    last_iteration: int
    checkpoint: Path | None  # the latest checkpoint


def reinforce(config: RLConfig, run_dir: str | Path, resume: bool = False, suite: Suite | None = None) -> RLResult:
    """Runs Stage II from ``config.start`` into ``run_dir`` (from its latest checkpoint when
    ``resume``); ``suite`` defaults to Meta-World in the action space the Stage I model was trained in."""
    run_dir = Path(run_dir)
    if config.start is None:
        raise ConfigError("start is required: the Stage I run or checkpoint to improve (aim rl RUN --from PATH)")
    if not config.rollout.tasks:
        raise ConfigError("rollout.tasks is required: the tasks to roll out, e.g. rollout.tasks=[handle-press-v3]")
    device = torch.device(config.train.device)
    info = Distributed(rank=0, world_size=1, local_rank=0, device=device)
    # A start the run cannot use is refused here, before the run directory is touched.
    bundle = load_bundle(config.start, device)
    if bundle.model.config.value_stream is False and config.reward.dense_weight > 0:
        raise ConfigError(f"reward.dense_weight is {config.reward.dense_weight}, but the Stage I model at "
                          f"{config.start} has no value stream to read the dense reward from; set it to 0")
    resume_from = prepare_run_dir(run_dir, resume, info)
    save_rl_config(config, run_dir / CONFIG_FILE)
    reference = copy.deepcopy(bundle.model).requires_grad_(False) if config.grpo.kl_weight > 0 else None
    trainable = freeze_all_but_action_stream(bundle.model)
    modules = nn.ModuleDict(trained_modules(bundle))  # the keys load_bundle reads back
    for name, module in modules.items():
        if name != "model":
            module.requires_grad_(False)
    iterations = config.train.iterations
    optimizer = make_optimizer(trainable, config.optim)
    scheduler = make_scheduler(optimizer, config.schedule, iterations)
    start, checkpoint = 0, resume_from
    if resume_from is not None:
        start = load_checkpoint(resume_from, modules, optimizer, scheduler, info)["step"]
        if start >= iterations:
            raise ConfigError(f"{resume_from} is at iteration {start}; raise train.iterations (now {iterations}) to go on")
    if suite is None:
        from aim.eval.metaworld_suite import suite_for_run

        suite = suite_for_run(config.start)
    r = config.rollout
    settings = RolloutSettings(r.sampler, config.grpo.noise_level, r.max_steps, config.train.seed, config.train.device)
    schedule = settings.action_schedule()
    meta = {**bundle_metadata(bundle), "rl_config": config.to_dict()}
    max_grad_norm = config.optim.grad_clip if config.optim.grad_clip > 0 else math.inf
    monitor = Monitor(run_dir, True, start, iterations, config.log.every, config.log.progress,
                      desc="rl", postfix={"return": "return/mean", "success": "success/rate"})
    group_count = len(r.tasks) * r.groups_per_task
    monitor.message(f"aim rl: {iterations} iterations of {group_count} groups x {config.grpo.group_size} episodes "
                    f"({', '.join(r.tasks)}), {r.workers} worker(s), {device}, from {config.start}, run {run_dir}")
    try:
        with GroupRollouts(config.start, settings, suite, r.workers) as rollouts:
            for iteration in range(start + 1, iterations + 1):
                started = time.perf_counter()
                seeds = training_seeds(iteration - 1, group_count)
                groups = [(task, seeds[t * r.groups_per_task + g]) for t, task in enumerate(r.tasks)
                          for g in range(r.groups_per_task)]
                weights = {n: p for n, p in bundle.model.named_parameters() if p.requires_grad}
                episodes = rollouts.run(groups, config.grpo.group_size, weights, version=iteration)
                rolled = time.perf_counter()
                parts = [[episode_return(e.dense, e.success, config.reward) for e in group] for group in episodes]
                advantages = group_advantages(torch.tensor([[p["return"] for p in group] for group in parts],
                                                           dtype=torch.float64))
                chunks = batched_chunks([RecordedChunk(c.context, c.path, advantages[g, m].reshape(1))
                                         for g, group in enumerate(episodes) for m, episode in enumerate(group)
                                         for c in episode.chunks], config.train.update_batch)
                lr = optimizer.param_groups[0]["lr"]
                update = grpo_update(bundle.model, chunks, bundle.structure, schedule, config.grpo, optimizer,
                                     max_grad_norm, reference)
                scheduler.step()
                finished = time.perf_counter()
                monitor.step(iteration, {
                    **_rollout_scalars(episodes, parts), **{f"update/{k}": v for k, v in update.items()}, "lr": lr,
                    "time/rollout_s": rolled - started, "time/update_s": finished - rolled,
                    "throughput/episodes_per_min": 60 * group_count * config.grpo.group_size / (rolled - started),
                })
                if iteration % config.checkpoint.every == 0 or iteration == iterations:
                    checkpoint = save_checkpoint(run_dir, iteration, modules, optimizer, scheduler,
                                                 {"episodes_seen": iteration * group_count * config.grpo.group_size},
                                                 meta, info, config.checkpoint.keep)
    finally:
        monitor.close()
    return RLResult(bundle, run_dir, iterations, checkpoint)


def _rollout_scalars(episodes: list[list[RLEpisode]], parts: list[list[dict[str, float]]]) -> dict[str, float]:
    """Means over the iteration's episodes: return and its parts, success, raw value-map reward, length."""
    flat = [p for group in parts for p in group]
    everything = [e for group in episodes for e in group]
    dense_steps = [e.dense for e in everything if e.dense.numel()]
    return {
        "return/mean": float(np.mean([p["return"] for p in flat])),
        "return/std_within_group": float(np.mean([np.std([p["return"] for p in group]) for group in parts])),
        "reward/dense": float(np.mean([p["dense"] for p in flat])),
        "reward/sparse": float(np.mean([p["sparse"] for p in flat])),
        "reward/value_map": float(torch.cat(dense_steps).mean()) if dense_steps else 0.0,
        "success/rate": float(np.mean([e.success for e in everything])),
        "episode/steps": float(np.mean([e.steps for e in everything])),
    }
