"""Property tests of ``section.key=value`` overrides: any text gives a config or a ConfigError
(never another exception), a well-typed value lands in its key or is refused by that key's name,
and a config saved after overrides reloads identically."""

import dataclasses
import string
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aim.errors import ConfigError
from aim.train.config import TrainConfig, load_config, save_config


def leaf_fields(cls=TrainConfig, prefix=""):
    """(dotted key, type) of every scalar field of the training config."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            yield from leaf_fields(kind, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", kind


FIELDS = dict(leaf_fields())
INT_KEYS = sorted(key for key, kind in FIELDS.items() if kind is int)
FLOAT_KEYS = sorted(key for key, kind in FIELDS.items() if kind is float)
BOOL_KEYS = sorted(key for key, kind in FIELDS.items() if kind is bool)
KEY_TEXT = st.text(string.ascii_lowercase + "._", min_size=1, max_size=24)
VALUE_TEXT = st.text(max_size=30)


@given(key=st.one_of(st.sampled_from(sorted(FIELDS)), KEY_TEXT), value=VALUE_TEXT, equals=st.booleans())
def test_any_override_gives_a_config_or_a_config_error(key, value, equals):
    override = f"{key}={value}" if equals else key + value
    try:
        load_config(overrides=[override])
    except ConfigError as err:
        assert "\n" not in str(err), f"a config error is one line: {err}"


NUMBERS = st.one_of(
    st.tuples(st.sampled_from(INT_KEYS), st.integers(-10**6, 10**6)),
    st.tuples(st.sampled_from(FLOAT_KEYS), st.floats(-1e6, 1e6, allow_nan=False)),
)


@given(key_and_value=NUMBERS)
def test_a_number_lands_in_its_key_or_is_refused_by_name(key_and_value):
    key, value = key_and_value
    try:
        config = load_config(overrides=[f"{key}={value!r}"])
    except ConfigError as err:
        assert key in str(err)
        return
    section, name = key.rsplit(".", 1)
    assert getattr(_section(config, section), name) == value


@given(key=st.sampled_from(INT_KEYS + FLOAT_KEYS + BOOL_KEYS), value=st.sampled_from(["[1, 2]", "{a: 1}", "abc"]))
def test_a_value_of_the_wrong_kind_is_refused_by_its_key(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[f"{key}={value}"])


@given(overrides=st.lists(st.sampled_from(["train.steps=7", "train.seed=3", "optim.lr=2.5e-4", "loss.action_weight=2",
                                           "data.workers=1", "model.gradient_checkpointing=true", "train.batch_size=16",
                                           "log.every=3", "data.view_size=[24, 32]"]), max_size=5))
def test_a_saved_config_reloads_identically(tmp_path_factory, overrides):
    config = load_config("tiny-metaworld", overrides=overrides)
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    save_config(config, path)
    assert load_config(file=path) == config


def _section(config, dotted: str):
    for name in dotted.split("."):
        config = getattr(config, name)
    return config
