"""Closed-loop evaluation of a model on many tasks and held-out seeds, in parallel workers.

Every (task, episode) pair is one job with seed ``eval_seeds(episodes)[episode]``; an episode's
outcome depends on its task and seed only (the policy's noise is seeded per episode), so results
do not depend on the number of workers. Workers are spawned (MuJoCo's EGL contexts do not
survive a fork); each loads the bundle once, builds its environments once per task, and shares
the CPU with the others (torch threads = cores / workers). The first ``videos_per_task``
episodes of every task are recorded (rendered anew for people: ``aim.eval.videos``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from aim.errors import UsageError
from aim.eval.episode import EpisodeResult, run_episode
from aim.eval.policy import AIMPolicy
from aim.eval.seeds import eval_seeds
from aim.eval.suite import Suite
from aim.eval.videos import VIDEO_FORMATS
from aim.eval.workers import WorkerPool
from aim.model.sampler import SamplerConfig


VIDEO_DIR = "videos"  # under the evaluation's folder


@dataclass(frozen=True)
class EvalSettings:
    """What an evaluation runs: tasks, episodes per task, the sampler, limits and recordings."""

    tasks: tuple[str, ...]
    episodes: int
    sampler: SamplerConfig = SamplerConfig()
    max_steps: int | None = None
    policy_seed: int = 0
    videos_per_task: int = 1
    video_format: str = "gif"
    device: str = "cpu"
    video_size: int = 256  # pixels per view height of the renders for people in rollout videos
    video_every: int = 2  # steps between video frames

    def __post_init__(self) -> None:
        if not self.tasks:
            raise UsageError("EvalSettings: no tasks given")
        if self.episodes < 1 or self.videos_per_task < 0 or (self.max_steps is not None and self.max_steps < 1):
            raise UsageError(f"EvalSettings: need episodes >= 1, videos_per_task >= 0, max_steps >= 1; got "
                             f"{self.episodes}, {self.videos_per_task}, {self.max_steps}")
        if self.video_size < 16 or self.video_every < 1:
            raise ValueError(f"EvalSettings: need video_size >= 16 pixels and video_every >= 1 step; got "
                             f"{self.video_size}, {self.video_every}")
        if self.video_format not in VIDEO_FORMATS:
            raise UsageError(f"EvalSettings.video_format must be one of {VIDEO_FORMATS}, got {self.video_format!r}")


def evaluate(bundle, settings: EvalSettings, out_dir: str | Path, suite: Suite | None = None, workers: int = 1,
             progress: bool = True) -> list[EpisodeResult]:
    """Runs every episode and returns their results in (task, episode) order.

    ``bundle`` is a :class:`~aim.runtime.bundle.ModelBundle` or a run/checkpoint directory (loaded
    in each worker); ``suite`` defaults to Meta-World in the action space the model was trained in.
    Videos go to ``out_dir/VIDEO_DIR``.
    """
    if workers < 1:
        raise UsageError(f"evaluate: workers must be >= 1, got {workers}")
    if isinstance(bundle, (str, Path)):
        from aim.runtime.bundle import bundle_checkpoint

        bundle_checkpoint(bundle)  # fails here, naming the path, rather than in every worker
    if suite is None:
        from aim.eval.metaworld_suite import suite_for_run

        suite = suite_for_run(bundle)
    for task in settings.tasks:
        suite.check_task(task)
    seeds = eval_seeds(settings.episodes)
    jobs = [(task, index, seed) for task in settings.tasks for index, seed in enumerate(seeds)]
    context = (bundle, settings, suite, Path(out_dir))
    if workers == 1:
        _start_worker(*context, threads=None)
        return list(_progress(map(_run_job, jobs), len(jobs), progress))
    with WorkerPool(workers, _start_worker, context, describe=_describe_job) as pool:
        # imap keeps the job order, so results line up with jobs whatever the scheduling.
        return list(_progress(pool.imap(_run_job, jobs), len(jobs), progress))


def worker_policy(bundle, sampler: SamplerConfig, seed: int, device: str, threads: int | None) -> AIMPolicy:
    """In a worker: ``threads`` torch threads (None: unchanged) and the policy of ``bundle``, loaded
    here when it is a run or checkpoint directory."""
    if threads is not None:
        torch.set_num_threads(threads)
    if isinstance(bundle, (str, Path)):
        from aim.runtime.bundle import load_bundle

        bundle = load_bundle(bundle, device)
    return AIMPolicy(bundle, sampler, seed)


_WORKER: dict = {}


def _start_worker(bundle, settings: EvalSettings, suite: Suite, out_dir: Path, threads: int | None) -> None:
    policy = worker_policy(bundle, settings.sampler, settings.policy_seed, settings.device, threads)
    _WORKER.update(policy=policy, settings=settings, suite=suite, out_dir=out_dir)


def _run_job(job: tuple[str, int, int]) -> EpisodeResult:
    task, index, seed = job
    settings: EvalSettings = _WORKER["settings"]
    video = None
    if index < settings.videos_per_task:
        video = _WORKER["out_dir"] / VIDEO_DIR / f"{task}_seed{seed}.{settings.video_format}"
    return run_episode(_WORKER["policy"], _WORKER["suite"], task, seed, settings.max_steps, video,
                       settings.video_size, settings.video_every)


def _describe_job(job: tuple[str, int, int]) -> str:
    task, index, seed = job
    return f"{task} episode {index} (seed {seed})"


def _progress(results, total: int, enabled: bool):
    if not enabled:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, desc="eval", unit="episode")
