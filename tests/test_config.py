from __future__ import annotations

import pytest

from textfit.config import TrainConfig
from textfit.errors import ConfigError


def test_flags_override_yaml(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1.0e-05\nepochs: 11\nseed: 42\ndescription: ignored documentation\n")
    cfg = TrainConfig.from_sources(recipe, epochs=2, seed=None)
    assert (cfg.learning_rate, cfg.epochs, cfg.seed) == (1e-5, 2, 42)


def test_unknown_key_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*learning_rat"):
        TrainConfig.from_sources(recipe)


def test_bad_yaml_names_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 3\nseed: [1\n")
    with pytest.raises(ConfigError, match=r"r\.yaml:\d+:\d+: not valid YAML"):
        TrainConfig.from_sources(recipe)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("eval_strategy", "sometimes", "choose one of epoch, steps, no"),
    ("learning_rate", 0, "must be greater than 0"),
    ("max_steps", -1, "must be greater than 0"),
    ("precision", "int4", "choose one of"),
])
def test_values_are_validated(key, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{key: value})
