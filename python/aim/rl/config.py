"""The Stage II configuration: plain dataclasses, YAML presets (``aim/rl/presets/``) and dotted
overrides, read by ``aim.config``'s loader so both stages take settings the same way.

The GRPO and reward sections are :class:`~aim.rl.grpo.GRPOConfig` and
:class:`~aim.rl.reward.RewardConfig` themselves, so their checks (G >= 2, epsilon > 0, lambda_d
and lambda_s not both 0, ...) apply to the config as it is read, named by their key (e.g.
``grpo.group_size``); optimiser, schedule and checkpoint sections are those of ``aim.runtime``,
which Stage I takes too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aim.config import build_config, config_values, plain_values, preset_names
from aim.errors import ConfigError
from aim.model.sampler import SamplerConfig
from aim.rl.grpo import GRPOConfig
from aim.rl.reward import RewardConfig
from aim.runtime.checkpoint import CheckpointConfig
from aim.runtime.optim import OptimConfig, ScheduleConfig

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class RolloutConfig:
    tasks: list[str] = field(default_factory=list)  # suite task ids, e.g. Meta-World's handle-press-v3
    groups_per_task: int = 1  # simulator seeds per task and iteration, one group of G episodes each
    max_steps: int | None = None  # step limit per episode (None: the task's own)
    workers: int = 1  # rollout processes
    # Flow-GRPO samples with fewer steps than inference; the demo's sampler is already short.
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if self.groups_per_task < 1:
            raise ConfigError(f"rollout.groups_per_task must be >= 1, got {self.groups_per_task}")
        if self.workers < 1:
            raise ConfigError(f"rollout.workers must be >= 1, got {self.workers}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"rollout.max_steps must be >= 1 (or null), got {self.max_steps}")


@dataclass
class RLLoopConfig:
    iterations: int = 100  # rollout + update rounds
    seed: int = 0  # the rollouts' noise
    device: str = "cpu"  # where rollouts and updates run ("cuda" for one GPU)
    update_batch: int = 16  # episodes whose chunks an update evaluates in one pass (speed vs memory)

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError(f"train.iterations must be >= 1, got {self.iterations}")
        if self.update_batch < 1:
            raise ConfigError(f"train.update_batch must be >= 1, got {self.update_batch}")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"train.device must be one of ['cpu', 'cuda'], got {self.device!r}")


@dataclass
class RLLogConfig:
    every: int = 1  # iterations between TensorBoard scalars
    progress: bool = True

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"log.every must be >= 1, got {self.every}")


@dataclass
class RLConfig:
    start: str | None = None  # the Stage I run (its latest checkpoint) or checkpoint directory
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(kind="constant", warmup_steps=0))
    train: RLLoopConfig = field(default_factory=RLLoopConfig)
    checkpoint: CheckpointConfig = field(default_factory=lambda: CheckpointConfig(every=10))
    log: RLLogConfig = field(default_factory=RLLogConfig)

    def to_dict(self) -> dict:
        return plain_values(dataclasses.asdict(self))


def rl_presets() -> list[str]:
    """Names of the RL presets shipped with the package."""
    return preset_names(PRESET_DIR)


def load_rl_config(preset: str | None = None, file: str | Path | None = None,
                   overrides: Sequence[str] = ()) -> RLConfig:
    """Defaults, then a shipped ``preset`` or a YAML ``file``, then ``key.sub=value`` overrides."""
    return build_config(RLConfig, config_values(PRESET_DIR, "RL", preset, file, overrides), "")


def save_rl_config(config: RLConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
