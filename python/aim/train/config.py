"""The Stage I configuration: everything a training run depends on, in one :class:`TrainConfig`.

Read with :mod:`aim.config`'s loader (a shipped preset of ``aim/train/presets/`` or a YAML file,
then dotted overrides); the optimiser, schedule and checkpoint sections are shared with Stage II
(``aim.runtime``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aim.config import (
    at_least,
    build_config,
    choice,
    config_values,
    plain_values,
    preset_names,
)
from aim.errors import ConfigError
from aim.model.flow_matching import FlowMatchingConfig
from aim.ops.backend import CHOICES as ATTENTION_CHOICES
from aim.runtime.checkpoint import CheckpointConfig
from aim.runtime.optim import OptimConfig, ScheduleConfig

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class ModelConfig:
    preset: str = "tiny"  # a key of aim.model.PRESETS
    value_stream: bool = True
    attention_rule: str = "intent_causal"  # a key of aim.ops.token_groups.RULES
    value_own_weights: bool = False
    gradient_checkpointing: bool = False
    wan_path: str | None = None  # diffusers Wan2.2 transformer folder that initialises the video branch

    def __post_init__(self) -> None:
        from aim.model import PRESETS
        from aim.ops.token_groups import RULES

        choice("model.preset", self.preset, sorted(PRESETS))
        choice("model.attention_rule", self.attention_rule, sorted(RULES))


@dataclass
class TokenizerConfig:
    kind: str = "pixel"  # "pixel": aim.model.video_tokenizers.PixelPatchTokenizer; "wan": Wan2.2's VAE
    spatial: int = 2  # pixel patch side (pixel tokenizer)
    vae_path: str | None = None  # diffusers AutoencoderKLWan folder (wan tokenizer)

    def __post_init__(self) -> None:
        choice("tokenizer.kind", self.kind, ("pixel", "wan"))
        at_least("tokenizer.spatial", self.spatial, 1)
        if self.kind == "wan" and not self.vae_path:
            raise ConfigError("tokenizer.vae_path is required when tokenizer.kind is 'wan'")


@dataclass
class TextConfig:
    kind: str = "task"  # "task": a learned embedding per dataset task, trained with the model; "umt5"
    tokens: int = 4  # tokens per task (task embedding)
    encoder_path: str | None = None  # umT5 encoder folder (umt5)
    tokenizer_path: str | None = None
    max_length: int = 512
    cache_dir: str | None = None  # where umT5 features of the dataset's instructions are kept

    def __post_init__(self) -> None:
        choice("text.kind", self.kind, ("task", "umt5"))
        at_least("text.tokens", self.tokens, 1)
        if self.kind == "umt5" and not self.encoder_path:
            raise ConfigError("text.encoder_path is required when text.kind is 'umt5'")


@dataclass
class DataConfig:
    root: str | None = None  # a LeRobot v3.0 dataset (aim collect, aim dataset convert-robotwin)
    # Cameras in canvas order (head, left wrist, right wrist); None: the dataset's own order.
    cameras: list[str] | None = None
    # (H, W) of the head view on the canvas; the views are shrunk to it by an integer factor.
    # None: the dataset's view size.
    view_size: list[int] | None = None
    observation_frames: int = 1
    num_chunks: int = 2
    frames_per_chunk: int = 2
    frame_stride: int = 4  # environment steps between consecutive video frames
    clip_step: int = 1  # environment steps between consecutive clip starts
    normalize_actions: bool = True  # z-score actions with the dataset's meta/stats.json
    workers: int = 0  # DataLoader worker processes
    cache_clips: bool = False  # keep decoded videos and clips in memory (small datasets, many epochs)

    def __post_init__(self) -> None:
        for name in ("observation_frames", "num_chunks", "frames_per_chunk", "frame_stride", "clip_step"):
            at_least(f"data.{name}", getattr(self, name), 1)
        at_least("data.workers", self.workers, 0)
        if self.view_size is not None and (len(self.view_size) != 2 or min(self.view_size) < 2):
            raise ConfigError(f"data.view_size must be [height, width] of at least 2 pixels, got {self.view_size}")


@dataclass
class LoopConfig:
    steps: int = 1000
    batch_size: int = 8  # global: clips per optimiser step, over all processes and accumulation
    micro_batch_size: int = 8  # clips per forward pass of one process
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available (one GPU per process), else cpu
    precision: str = "auto"  # "auto": bf16 autocast on cuda, fp32 on cpu
    # native, flash, flex, xformers or sdpa (aim.ops.backend); "auto" leaves the choice to aim.ops (AIM_ATTENTION_BACKEND)
    attention_backend: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "micro_batch_size"):
            at_least(f"train.{name}", getattr(self, name), 1)
        choice("train.device", self.device, ("auto", "cpu", "cuda"))
        choice("train.precision", self.precision, ("auto", "fp32", "bf16"))
        choice("train.attention_backend", self.attention_backend, ATTENTION_CHOICES)
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"train.batch_size {self.batch_size} is not a multiple of train.micro_batch_size "
                              f"{self.micro_batch_size}")


@dataclass
class ParallelConfig:
    strategy: str = "auto"  # "auto": ddp with several processes; "none", "ddp", "fsdp" (FSDP2 fully_shard)

    def __post_init__(self) -> None:
        choice("parallel.strategy", self.strategy, ("auto", "none", "ddp", "fsdp"))


@dataclass
class LogConfig:
    every: int = 10  # steps between TensorBoard scalars
    sample_every: int = 500  # steps between predicted-vs-true images (0: never)
    sample_steps: int = 10  # Euler steps of the sample images' video denoising
    progress: bool = True

    def __post_init__(self) -> None:
        at_least("log.every", self.every, 1)
        at_least("log.sample_every", self.sample_every, 0)
        at_least("log.sample_steps", self.sample_steps, 1)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    text: TextConfig = field(default_factory=TextConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: FlowMatchingConfig = field(default_factory=FlowMatchingConfig)  # stream weights, shifts, dropout
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        return plain_values(dataclasses.asdict(self))


def presets() -> list[str]:
    """Names of the YAML presets shipped with the package."""
    return preset_names(PRESET_DIR)


def load_config(preset: str | None = None, file: str | Path | None = None,
                overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults, then a shipped ``preset`` or a YAML ``file``, then ``key.sub=value`` overrides."""
    return from_dict(config_values(PRESET_DIR, "training", preset, file, overrides))


def from_dict(values: dict) -> TrainConfig:
    """A validated TrainConfig from nested plain values (as read from YAML)."""
    return build_config(TrainConfig, values, "")


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


