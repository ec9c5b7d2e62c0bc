"""RunFolder: the one reader of an output folder, with TrainConfig's own defaults and the effective max_length."""

from __future__ import annotations

import yaml

import textfit
from textfit.config import TrainConfig
from textfit.run_folder import RunFolder
from textfit.task import SINGLE


def test_a_trained_folder_reads_back_as_its_config(trained):
    folder = RunFolder.load(trained)
    assert isinstance(folder.config, TrainConfig)
    saved = yaml.safe_load((trained / "recipe.yaml").read_text())
    assert folder.config.to_dict() == saved
    assert folder.labels == ["negative", "positive"] and folder.task is SINGLE
    assert folder.max_length == saved["max_length"] == 64 and folder.truncation == "head"
    assert folder.metrics()["eval"]["num_examples"] > 0
    assert folder.card_metadata()["pipeline_tag"] == "text-classification"


def test_max_length_past_the_model_limit_predicts_at_the_limit(trained_copy):
    """A recipe asking for more tokens than the model has positions trains at the model's limit; prediction
    must cut texts there too, not at the recipe's raw number."""
    recipe = trained_copy / "recipe.yaml"
    values = yaml.safe_load(recipe.read_text())
    recipe.write_text(yaml.safe_dump({**values, "max_length": 4096}))
    folder = RunFolder.load(trained_copy)
    assert folder.config.max_length == 4096
    assert folder.max_length == folder.tokenizer.model_max_length == 64  # the saved tokenizer's limit: training's
    long_text = "a gorgeous , witty , seductive movie . " * 400  # ~3,600 tokens
    clf = textfit.load(trained_copy, precision="fp32")
    assert clf.max_length == 64
    assert clf.predict([long_text])[0]["label"] in ("negative", "positive")


def test_a_folder_textfit_did_not_write(small_model):
    folder = RunFolder.load(small_model)  # a plain Hugging Face folder: no recipe, no metrics
    assert folder.config is None
    assert folder.columns.text == "text" and folder.seed == 42
    assert folder.max_length == 512 and folder.truncation == "head"
