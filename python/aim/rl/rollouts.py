"""Groups of G episodes from one simulator seed each, rolled out in parallel worker processes.

A job is one episode: (task, seed, group member). Its noise comes from a generator seeded by
(policy seed, simulator seed, member), so an episode depends on those and the weights only, not
on which worker runs it or in what order, and groups come out the same for any number of
workers. Workers are spawned (MuJoCo's EGL contexts do not survive a fork), each loads the
Stage I bundle once, and every job carries the action stream's current weights (serialised once
per update, with a version number so a worker loads them once per update); with one worker the
jobs run in the calling process through the same code. Episodes travel back serialised with
``torch.save``, which stores the history tensors the chunks of an episode share only once.

Training seeds start at :data:`RL_SEED_OFFSET`, apart from data collection's small seeds and
evaluation's held-out ones (``aim.eval.seeds``), so an RL run never trains on an evaluation episode.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import torch

from aim.errors import UsageError
from aim.eval.policy import AIMPolicy, seeded_generator
from aim.eval.runner import worker_policy
from aim.eval.suite import Suite
from aim.eval.workers import WorkerPool
from aim.model.sampler import SamplerConfig, sigma_schedule
from aim.rl.episode import RLEpisode, run_rl_episode
from aim.rl.sde import SDESchedule

Tensor = torch.Tensor
RL_SEED_OFFSET = 2_000_000


@dataclass(frozen=True)
class RolloutSettings:
    """How every worker samples: the sampler (video steps, guidance, action steps and shift), the
    action SDE's noise level, the step limit, the policy's seed and the device."""

    sampler: SamplerConfig
    noise_level: float
    max_steps: int | None
    seed: int
    device: str = "cpu"

    def action_schedule(self) -> SDESchedule:
        return SDESchedule(sigma_schedule(self.sampler.action_steps, self.sampler.action_shift), self.noise_level)


def training_seeds(iteration: int, count: int) -> list[int]:
    """The ``count`` simulator seeds of RL iteration ``iteration`` (0-based), one per group."""
    return [RL_SEED_OFFSET + iteration * count + i for i in range(count)]


def member_generator(policy_seed: int, seed: int, member: int) -> torch.Generator:
    """The noise of group member ``member`` of the group from simulator ``seed``."""
    return seeded_generator(policy_seed, seed, member)


class GroupRollouts:
    """Workers that roll out groups; use as a context manager (it owns the process pool).

    ``bundle`` is the Stage I :class:`~aim.runtime.bundle.ModelBundle` or its run/checkpoint
    directory (loaded in each worker)."""

    def __init__(self, bundle, settings: RolloutSettings, suite: Suite, workers: int = 1) -> None:
        if workers < 1:
            raise UsageError(f"GroupRollouts: workers must be >= 1, got {workers}")
        self.settings, self.workers = settings, workers
        context = (bundle, settings, suite)
        if workers == 1:
            self.pool = None
            _start_worker(*context, threads=None)
        else:
            self.pool = WorkerPool(workers, _start_worker, context, describe=_describe_job)

    def run(self, groups: Sequence[tuple[str, int]], group_size: int, weights: dict[str, Tensor],
            version: int) -> list[list[RLEpisode]]:
        """The episodes of every (task, seed) group, G = ``group_size`` each, in group then member
        order, sampled with the action-stream ``weights`` (parameter name -> tensor) of ``version``."""
        packed = _pack({name: tensor.detach().cpu() for name, tensor in weights.items()})
        jobs = [(task, seed, member, version, packed) for task, seed in groups for member in range(group_size)]
        if self.pool is None:
            episodes = [_unpack(_run_job(job), self.settings.device) for job in jobs]
        else:
            # imap keeps the job order, so episodes line up with jobs whatever the scheduling.
            episodes = [_unpack(data, self.settings.device) for data in self.pool.imap(_run_job, jobs)]
        return [episodes[g * group_size:(g + 1) * group_size] for g in range(len(groups))]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None


def _describe_job(job: tuple[str, int, int, int, bytes]) -> str:
    task, seed, member, version, _ = job
    return f"{task} seed {seed} group member {member} (iteration {version})"


def _pack(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _unpack(data: bytes, device: str):
    return torch.load(io.BytesIO(data), map_location=device, weights_only=False)


_WORKER: dict = {}


def _start_worker(bundle, settings: RolloutSettings, suite: Suite, threads: int | None) -> None:
    _WORKER.update(policy=worker_policy(bundle, settings.sampler, settings.seed, settings.device, threads),
                   settings=settings, suite=suite, schedule=settings.action_schedule(), version=None)


def _run_job(job: tuple[str, int, int, int, bytes]) -> bytes:
    task, seed, member, version, weights = job
    policy: AIMPolicy = _WORKER["policy"]
    settings: RolloutSettings = _WORKER["settings"]
    if _WORKER["version"] != version:
        _load_weights(policy.bundle.model, _unpack(weights, settings.device))
        _WORKER["version"] = version
    generator = member_generator(settings.seed, seed, member)
    episode = run_rl_episode(policy, _WORKER["suite"], task, seed, member, generator, _WORKER["schedule"],
                             settings.max_steps)
    return _pack(episode)


@torch.no_grad()
def _load_weights(model: torch.nn.Module, weights: dict[str, Tensor]) -> None:
    parameters = dict(model.named_parameters())
    unknown = sorted(set(weights) - set(parameters))
    if unknown:
        raise KeyError(f"action-stream weights {unknown[:3]} are not parameters of the rollout model")
    for name, tensor in weights.items():
        parameters[name].copy_(tensor)
