"""Training configs: presets, dotted overrides, clear errors naming the key, saved-config round trip."""

from __future__ import annotations

import pytest

from aim.errors import ConfigError
from aim.train import load_config, train
from aim.train.config import presets, save_config


def test_preset_then_overrides():
    config = load_config("tiny-metaworld", overrides=["optim.lr=3e-4", "model.preset=tiny", "data.view_size=[16, 16]",
                                                      "loss.value_weight=0.5", "model.value_stream=false"])
    assert "tiny-metaworld" in presets()
    assert config.optim.lr == pytest.approx(3e-4) and isinstance(config.optim.lr, float)
    assert config.data.view_size == [16, 16] and config.loss.value_weight == 0.5
    assert config.model.value_stream is False
    assert config.data.cameras == ["topview", "gripperPOV", "corner3"]  # from the preset
    assert config.optim.betas == (0.9, 0.95) and config.optim.weight_decay == 0.1  # docs/method.md §6 defaults


@pytest.mark.parametrize("override,named", [
    ("optim.lrr=1", "optim.lrr"),
    ("bogus.key=1", "bogus"),
    ("train.steps=abc", "train.steps"),
    ("train.steps=1.5", "train.steps"),
    ("optim.lr=fast", "optim.lr"),
    ("optim.lr=-1", "optim.lr"),
    ("schedule.kind=linear", "schedule.kind"),
    ("model.preset=huge", "model.preset"),
    ("model.attention_rule=everything", "model.attention_rule"),
    ("log.progress=maybe", "log.progress"),
    ("optim.betas=[0.9]", "optim.betas"),
    ("loss.weighting=cubic", "loss"),
    ("train.batch_size=6", "train.batch_size"),
    ("noequals", "noequals"),
])
def test_bad_keys_and_values_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config("tiny-metaworld", overrides=[override])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown training preset"):
        load_config("no-such-preset")
    with pytest.raises(ConfigError, match="not found"):
        load_config(file=tmp_path / "missing.yaml")


def test_saved_config_reloads_identically(tmp_path):
    config = load_config("tiny-metaworld", overrides=["optim.lr=2e-3", "data.root=/data/x", "loss.history_sigma_range=[0.2, 0.4]"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(file=tmp_path / "config.yaml") == config


def test_training_without_a_dataset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.root"):
        train(load_config("tiny-metaworld"), tmp_path / "run")
