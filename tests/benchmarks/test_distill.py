"""The distillation harness scores students and teacher on held-out IMDB reviews: they must be texts no model
trained on or chose a checkpoint on, the same ones on every run, or the gap it reports flatters someone."""

from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import distill

from textfit.config import TrainConfig, save_recipe
from textfit.recipe import recipe_path
from textfit.training import load_data


def test_held_out_reviews_are_neither_trained_nor_selected_on(tmp_path, shared_data):
    config = TrainConfig.from_sources(recipe_path("imdb-distilbert-subset"), dataset=str(shared_data / "imdb"))
    save_recipe(config, tmp_path / "recipe.yaml")  # a teacher folder's recipe, as training writes it
    texts, labels = distill.held_out("imdb", tmp_path)
    again, _ = distill.held_out("imdb", tmp_path)
    data = load_data(config)
    assert len(texts) == distill.HELD_OUT["imdb"] == len(set(texts)) and again == texts
    assert not set(texts) & {ex.text for ex in data.eval + data.train}
    assert 0.4 < sum(labels) / len(labels) < 0.6  # both classes, as in the test split


def test_the_table_shows_each_gap_with_its_interval_or_the_seeds_range():
    row = {"accuracy": 0.88, "ci": [0.85, 0.92], "train_seconds": 100.0,
           "distillation": {"agreement": 0.9, "difference": -0.0166, "difference_ci": [-0.043, 0.007]},
           "held_out": {"gap": -0.012, "gap_ci": [-0.025, 0.001]}}
    one = {"imdb": {"machine": "a CPU", "teacher": 0.9, "runs": {"2/42": {"distilled": row}}}}
    table = distill.report(one)
    assert "| imdb | 2 | distilled | 0.8800 [0.8500, 0.9200] | 0.9000 | 90.0% | -1.7 [-4.3, +0.7] | " \
           "-1.2 [-2.5, +0.1] | 100 | 1 |" in table
    assert "Measured on: a CPU." in table
    other = {**row, "held_out": {"gap": -0.02, "gap_ci": [-0.03, -0.01]}}
    three = {"imdb": {"machine": "a CPU", "teacher": 0.9, "runs": {
        "2/42": {"distilled": row}, "2/43": {"distilled": other}, "2/44": {"distilled": other}}}}
    assert "| -2.0 (-2.0 to -1.2) |" in distill.report(three)


def test_the_table_names_the_commands_that_wrote_it():
    entry = {"machine": "a CPU", "teacher": 0.9, "runs": {}}
    distill.remember(entry, "python benchmarks/distill.py --only imdb --kinds '+ unlabelled'")
    distill.remember(entry, "python benchmarks/distill.py --pipeline-only")
    distill.remember(entry, "python benchmarks/distill.py --only imdb --kinds '+ unlabelled'")  # a rerun: once
    table = distill.report({"imdb": entry}, "distill-here")
    assert ("Commands, in the order they wrote this table: `python benchmarks/distill.py --only imdb --kinds "
            "'+ unlabelled'`; `python benchmarks/distill.py --pipeline-only`") in table
    assert "Command: `python benchmarks/distill.py --results-name distill-here`" not in table
