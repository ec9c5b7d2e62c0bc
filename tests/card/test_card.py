"""The model card, golden-tested as a whole: any change to its text shows up as a diff of golden_card.md.

Regenerate after an intended change with: TEXTFIT_UPDATE_GOLDEN=1 pytest tests/card
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import ModelCard

from textfit.card import render_card

GOLDEN = Path(__file__).with_name("golden_card.md")


def test_card_matches_golden_file(card_facts):
    card = render_card(card_facts)
    if os.environ.get("TEXTFIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(card)
    assert card == GOLDEN.read_text()


def test_card_metadata_parses_as_a_hub_model_card(card_facts, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(render_card(card_facts))
    card = ModelCard.load(path)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"accuracy": 0.88, "precision": 0.875, "recall": 0.8867, "f1": 0.8808}
    assert card.data.eval_results[0].dataset_split == "test"


def test_card_says_which_checkpoint_was_kept(card_facts):
    card = render_card(card_facts)
    assert "checkpoint of step 376 (epoch 2), the best validation loss (0.2896) among 5 evaluations" in card
    assert "Training stopped early." in card
    assert "- mixed_precision_training: bf16 autocast (fp32 master weights)" in card


def test_card_says_when_the_last_evaluation_was_kept(card_facts):
    history = card_facts["history"]
    last = {"metric": "accuracy", "value": history[-1]["accuracy"], "step": history[-1]["step"],
            "epoch": history[-1]["epoch"], "rule": "last"}
    card_facts["config"]["metric_for_best"] = "auto"
    card = render_card({**card_facts, "kept": last, "stopped_early": False})
    assert (f"The model kept is the last of 5 evaluations, step {last['step']} (epoch {last['epoch']:g}) (validation "
            f"accuracy {last['value']:.4f}): the run trained to the end of its schedule") in card
    assert "- metric_for_best_model: the last evaluation (auto; validation accuracy while training)" in card


def test_card_gives_the_heads_own_learning_rate_when_it_had_one(card_facts):
    assert "head_learning_rate" not in render_card(card_facts)  # the reference card's run: one rate for all
    card = render_card({**card_facts, "head_learning_rate": 1e-3})
    assert "- head_learning_rate: 0.001 (the fresh output layer, 100x the learning rate)" in card
