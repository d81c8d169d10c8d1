"""The training configuration: plain dataclasses, YAML presets and dotted command-line overrides.

Everything a Stage-I run depends on lives in one :class:`TrainConfig` (torchtitan's habit: a
config plus functions applied to a plain model), so the resolved config saved in a run directory
reproduces the run. A preset is a YAML file in ``aim/train/presets/`` that sets some keys;
overrides such as ``optim.lr=3e-4 model.preset=tiny`` set more. Unknown keys and values of the
wrong type or range raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aim.model.flow_matching import FlowMatchingConfig
from aim.ops.backend import CHOICES as ATTENTION_CHOICES

PRESET_DIR = Path(__file__).with_name("presets")


class ConfigError(ValueError):
    """A training configuration key or value is wrong; the message names the key."""


def _choice(where: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{where} must be one of {list(choices)}, got {value!r}")


def _at_least(where: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value!r}")


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

        _choice("model.preset", self.preset, sorted(PRESETS))
        _choice("model.attention_rule", self.attention_rule, sorted(RULES))


@dataclass
class TokenizerConfig:
    kind: str = "pixel"  # "pixel": aim.model.video_tokenizers.PixelPatchTokenizer; "wan": Wan2.2's VAE
    spatial: int = 2  # pixel patch side (pixel tokenizer)
    vae_path: str | None = None  # diffusers AutoencoderKLWan folder (wan tokenizer)

    def __post_init__(self) -> None:
        _choice("tokenizer.kind", self.kind, ("pixel", "wan"))
        _at_least("tokenizer.spatial", self.spatial, 1)
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
        _choice("text.kind", self.kind, ("task", "umt5"))
        _at_least("text.tokens", self.tokens, 1)
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
            _at_least(f"data.{name}", getattr(self, name), 1)
        _at_least("data.workers", self.workers, 0)
        if self.view_size is not None and (len(self.view_size) != 2 or min(self.view_size) < 2):
            raise ConfigError(f"data.view_size must be [height, width] of at least 2 pixels, got {self.view_size}")


@dataclass
class OptimConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)  # spec §6
    weight_decay: float = 0.1  # spec §6
    eps: float = 1e-8
    grad_clip: float = 2.0  # spec §6; 0 disables clipping

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must lie in [0, 1), got {list(self.betas)}")
        _at_least("optim.weight_decay", self.weight_decay, 0.0)
        _at_least("optim.grad_clip", self.grad_clip, 0.0)


@dataclass
class ScheduleConfig:
    kind: str = "cosine"  # "cosine": warm-up then cosine decay to min_lr_ratio * lr; "constant": warm-up then lr
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        _choice("schedule.kind", self.kind, ("cosine", "constant"))
        _at_least("schedule.warmup_steps", self.warmup_steps, 0)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"schedule.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")


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
            _at_least(f"train.{name}", getattr(self, name), 1)
        _choice("train.device", self.device, ("auto", "cpu", "cuda"))
        _choice("train.precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("train.attention_backend", self.attention_backend, ATTENTION_CHOICES)
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"train.batch_size {self.batch_size} is not a multiple of train.micro_batch_size "
                              f"{self.micro_batch_size}")


@dataclass
class ParallelConfig:
    strategy: str = "auto"  # "auto": ddp with several processes; "none", "ddp", "fsdp" (FSDP2 fully_shard)

    def __post_init__(self) -> None:
        _choice("parallel.strategy", self.strategy, ("auto", "none", "ddp", "fsdp"))


@dataclass
class CheckpointConfig:
    every: int = 500  # steps; the last step is always saved
    keep: int = 2  # newest checkpoints kept

    def __post_init__(self) -> None:
        _at_least("checkpoint.every", self.every, 1)
        _at_least("checkpoint.keep", self.keep, 1)


@dataclass
class LogConfig:
    every: int = 10  # steps between TensorBoard scalars
    sample_every: int = 500  # steps between predicted-vs-true images (0: never)
    sample_steps: int = 10  # Euler steps of the sample images' video denoising
    progress: bool = True

    def __post_init__(self) -> None:
        _at_least("log.every", self.every, 1)
        _at_least("log.sample_every", self.sample_every, 0)
        _at_least("log.sample_steps", self.sample_steps, 1)


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


def preset_names(directory: Path) -> list[str]:
    """Names of the YAML presets in ``directory`` (Stage I's here, Stage II's in aim/rl/presets)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_config(preset: str | None = None, file: str | Path | None = None,
                overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults, then a shipped ``preset`` or a YAML ``file``, then ``key.sub=value`` overrides."""
    return from_dict(config_values(PRESET_DIR, "training", preset, file, overrides))


def config_values(directory: Path, kind: str, preset: str | None, file: str | Path | None,
                  overrides: Sequence[str]) -> dict:
    """The nested values of a shipped ``preset`` in ``directory`` (``kind`` names it in errors) or
    of a YAML ``file`` (neither: none), with ``key.sub=value`` overrides applied."""
    if preset is not None and file is not None:
        raise ConfigError("give a preset or a config file, not both")
    if preset is not None:
        if preset not in preset_names(directory):
            raise ConfigError(f"unknown {kind} preset {preset!r}; shipped: {preset_names(directory)}")
        file = directory / f"{preset}.yaml"
    values = _read_yaml(Path(file)) if file is not None else {}
    for override in overrides:
        _apply_override(values, override)
    return values


def from_dict(values: dict) -> TrainConfig:
    """A validated TrainConfig from nested plain values (as read from YAML)."""
    return build_config(TrainConfig, values, "")


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _read_yaml(path: Path) -> dict:
    """The sections of a YAML config file (Stage I and Stage II configs are read alike)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of sections, got {type(values).__name__}")
    return values


def _apply_override(values: dict, override: str) -> None:
    """Sets ``section.key=value`` (the value read as YAML) in the nested ``values``."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like section.key=value")
    node = values
    *sections, leaf = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {section!r} is not a section")
    try:
        node[leaf] = yaml.safe_load(text) if text else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {override!r}: cannot read the value ({err})") from err


def build_config(cls: type, values: Any, where: str):
    """The config dataclass ``cls`` from nested ``values``; errors name the key (``where`` prefixes it)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        keys = ", ".join(f"{where}{k}" for k in unknown)
        raise ConfigError(f"unknown config key {keys}; known in {where.rstrip('.') or 'the config'}: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], value, f"{where}{name}") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {err}") from err


def _convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` as type ``kind`` (dataclasses, optionals, lists, tuples, scalars) or a ConfigError."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return build_config(kind, value, f"{where}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where} must have {len(args)} items, got {list(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        converted = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is float:
        # YAML 1.1 reads "3e-4" as a string, so numbers written that way are accepted too.
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"config field {where} has a type the loader does not know: {kind!r}")


def plain_values(value: Any) -> Any:
    """Tuples as lists, so the saved YAML holds plain values only."""
    if isinstance(value, dict):
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    return value
