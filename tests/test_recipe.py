"""Shipped recipes load, and `recipe from-card` reads what a card says (and only that)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textfit.card import render_card
from textfit.config import TrainConfig, load_recipe_file
from textfit.recipe import read_card, recipe_path, shipped_recipes

CARDS = Path(__file__).with_name("recipe_cards")


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_shipped_recipes_are_valid_configs(name):
    config = TrainConfig.from_sources(recipe_path(name))
    assert config.seed == 42
    assert yaml.safe_load(recipe_path(name).read_text())["description"]


def test_reference_recipe_values():
    card1 = load_recipe_file(recipe_path("imdb-distilbert-subset"))
    assert (card1["learning_rate"], card1["epochs"], card1["max_train_samples"], card1["max_eval_samples"]) == (
        1e-5, 11, 3000, 300)
    card3 = load_recipe_file(recipe_path("sst2-distilbert"))
    assert (card3["eval_strategy"], card3["eval_steps"], card3["eval_batch_size"]) == ("steps", 50, 8)


def test_trainer_layout_card():
    reading = read_card((CARDS / "imdb_subset_trainer.md").read_text())
    r = reading.recipe
    assert r["card_model"] == r["model"] == "distilbert-base-uncased"
    assert r["dataset"] == "imdb"
    assert (r["learning_rate"], r["train_batch_size"], r["eval_batch_size"], r["seed"]) == (1e-5, 16, 16, 42)
    assert (r["adam_beta1"], r["adam_beta2"], r["adam_epsilon"]) == (0.9, 0.999, 1e-8)
    assert (r["lr_scheduler_type"], r["epochs"], r["eval_strategy"]) == ("linear", 11, "epoch")
    assert reading.missing == []
    assert any("Transformers 4.20.1" in note for note in reading.notes)


def test_messy_bullets_and_step_evaluation():
    reading = read_card((CARDS / "sst2_steps_messy.md").read_text())
    r = reading.recipe
    assert (r["learning_rate"], r["train_batch_size"], r["eval_batch_size"], r["epochs"]) == (1e-5, 16, 8, 5)
    assert (r["eval_strategy"], r["eval_steps"]) == ("steps", 50)
    assert reading.missing == []


def test_prose_card_reports_what_is_missing():
    reading = read_card((CARDS / "marc_prose.md").read_text())
    r = reading.recipe
    assert (r["learning_rate"], r["train_batch_size"], r["eval_batch_size"], r["epochs"]) == (5e-5, 16, 16, 5)
    assert r["lr_scheduler_type"] == "linear" and r["precision"] == "auto"  # the card's fp16 is a GPU's
    assert r["dataset"] == "amazon_reviews_multi"
    assert reading.missing == ["seed"]
    assert "seed" not in r  # not guessed
    assert "# Not found in the card (textfit defaults apply): seed" in reading.to_yaml()
    assert "mixed precision 'Native AMP' (fp16, a GPU's)" in reading.to_yaml()


def test_round_trip_of_a_textfit_card(card_facts):
    f = card_facts
    r = read_card(render_card(f)).recipe
    config = f["config"]
    for key in ("learning_rate", "train_batch_size", "eval_batch_size", "seed", "adam_beta1", "adam_beta2",
                "adam_epsilon", "lr_scheduler_type", "epochs", "weight_decay", "precision", "max_length",
                "max_grad_norm", "metric_for_best", "eval_strategy", "max_train_samples", "max_eval_samples"):
        assert r[key] == config[key], key
    assert r["model"] == config["model"] == "minilm-l6"
    TrainConfig(**{k: v for k, v in r.items() if k != "card_model"})  # runnable as it is


def test_cli_from_card_writes_a_runnable_recipe(tmp_path):
    out = tmp_path / "r.yaml"
    result = subprocess.run([sys.executable, "-m", "textfit", "recipe", "from-card",
                             str(CARDS / "marc_prose.md"), "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "not found in" in result.stderr and "seed" in result.stderr
    config = TrainConfig.from_sources(out)
    assert config.learning_rate == 5e-5


def test_one_batch_size_for_both_and_several_settings_on_a_line():
    reading = read_card((CARDS / "one_batch_size_list.md").read_text())
    r = reading.recipe
    assert (r["train_batch_size"], r["eval_batch_size"]) == (32, 32)
    assert (r["learning_rate"], r["epochs"], r["seed"]) == (3e-5, 4, 7)
    assert (r["adam_beta1"], r["adam_beta2"], r["adam_epsilon"]) == (0.9, 0.999, 1e-8)
    assert r["precision"] == "auto" and r["lr_scheduler_type"] == "linear"
    assert reading.missing == []
    assert "one batch size for training and evaluation" in reading.to_yaml()


def test_several_settings_in_one_sentence():
    reading = read_card((CARDS / "one_sentence.md").read_text())
    r = reading.recipe
    assert (r["learning_rate"], r["epochs"], r["seed"]) == (2e-5, 3, 1234)
    assert (r["train_batch_size"], r["eval_batch_size"]) == (8, 8)
    assert r["model"] == "distilbert-base-uncased"
    assert "adam_beta1" in reading.missing  # "betas 0.9/0.999" in prose is not guessed at


def test_a_recipe_from_an_fp16_card_trains_on_a_cpu(small_model, sst2_sample, tmp_path, capsys):
    import textfit

    config = TrainConfig(**{**load_recipe_file(_written(tmp_path, "one_batch_size_list.md")),
                            "model": str(small_model), "dataset": str(sst2_sample), "max_steps": 2,
                            "max_train_samples": 64, "max_eval_samples": 32, "max_length": 32,
                            "output_dir": str(tmp_path / "run"), "precision": "fp16"})
    result = textfit.train(config)
    assert result.metrics["num_examples"] == 32
    assert "fp16 asked for, which needs a GPU" in capsys.readouterr().out


def _written(tmp_path: Path, card: str) -> Path:
    out = tmp_path / "recipe.yaml"
    done = subprocess.run([sys.executable, "-m", "textfit", "recipe", "from-card", str(CARDS / card), "--output",
                           str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out
