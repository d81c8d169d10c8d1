"""Configuration files for every stage: YAML presets, dotted command-line overrides, typed sections.

A stage's configuration is a tree of plain dataclasses (Stage I's :class:`aim.train.config.TrainConfig`,
Stage II's :class:`aim.rl.config.RLConfig`): the resolved tree saved in a run directory reproduces
the run (torchtitan's habit: a config plus functions applied to a plain model). Values come from
the section defaults, then a shipped preset (a YAML file of the stage's preset folder) or a YAML
file, then overrides such as ``optim.lr=3e-4 model.preset=tiny``. Unknown keys and values of the
wrong type or range raise :class:`~aim.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from aim.errors import ConfigError


def choice(where: str, value: str, choices: Sequence[str]) -> None:
    """Refuse ``value`` of the key ``where`` unless it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{where} must be one of {list(choices)}, got {value!r}")


def at_least(where: str, value: float, minimum: float) -> None:
    """Refuse ``value`` of the key ``where`` below ``minimum``."""
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value!r}")


def preset_names(directory: Path) -> list[str]:
    """Names of the YAML presets in ``directory`` (aim/train/presets, aim/rl/presets)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


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


def _read_yaml(path: Path) -> dict:
    """The sections of a YAML config file (Stage I and Stage II configs are read alike)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(err)})") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of sections, got {type(values).__name__}")
    return values


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (PyYAML's own text spans several lines)."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


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
        raise ConfigError(f"override {override!r}: cannot read the value ({yaml_problem(err)})") from err


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
        message = str(err).removeprefix(f"{cls.__name__}.")
        if message != str(err):  # the dataclass named one of its fields: name it by its key instead
            raise ConfigError(f"{where}{message}") from err
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
