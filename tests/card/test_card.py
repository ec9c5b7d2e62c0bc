"""The model card, golden-tested as a whole: any change to its text shows up as a diff of golden_card.md.

Regenerate after an intended change with: TEXTFIT_UPDATE_GOLDEN=1 pytest tests/card
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import ModelCard

from textfit.card import render_card
from textfit.config import TrainConfig

GOLDEN = Path(__file__).with_name("golden_card.md")


def facts() -> dict:
    """A run shaped like the IMDB reference card (3,000/300 subset, 11 epochs, best at epoch 2)."""
    config = TrainConfig(model="minilm-l6", dataset="../shared/data/imdb", output_dir="outputs/imdb-minilm",
                         eval_split="test", max_train_samples=3000, max_eval_samples=300, learning_rate=1e-5,
                         epochs=11, seed=42, precision="bf16").to_dict()
    losses = [0.3412, 0.2896, 0.3020, 0.3311, 0.3650]
    history = [{"step": 188 * (i + 1), "epoch": float(i + 1), "train_loss": 0.45 / (i + 1), "loss": loss,
                "accuracy": 0.86 + 0.01 * (i == 1), "precision": 0.875, "recall": 0.8867, "f1": 0.8808}
               for i, loss in enumerate(losses)]
    metrics = {"loss": 0.2896, "accuracy": 0.88, "precision": 0.875, "recall": 0.8867, "f1": 0.8808,
               "per_class": {"neg": {"precision": 0.8853, "recall": 0.8733, "f1": 0.8792, "support": 150},
                             "pos": {"precision": 0.875, "recall": 0.8867, "f1": 0.8808, "support": 150}},
               "confusion_matrix": [[131, 19], [17, 133]], "num_examples": 300}
    return {"config": config, "base_model": "sentence-transformers/all-MiniLM-L6-v2", "license": "apache-2.0",
            "dataset": "imdb", "eval_split": "test", "label_names": ["neg", "pos"],
            "train_counts": {"neg": 1489, "pos": 1511}, "eval_counts": {"neg": 150, "pos": 150},
            "history": history, "kept": {"metric": "loss", "value": 0.2896, "step": 376, "epoch": 2.0},
            "metrics": metrics, "precision": "bf16", "total_steps": 940, "planned_steps": 2068,
            "steps_per_epoch": 188, "warmup_steps": 0, "processes": 1, "stopped_early": True,
            "architecture": "BertForSequenceClassification",
            "versions": [("textfit", "0.1.0"), ("Transformers", "5.23.0"), ("Pytorch", "2.13.0+cpu")]}


def test_card_matches_golden_file():
    card = render_card(facts())
    if os.environ.get("TEXTFIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(card)
    assert card == GOLDEN.read_text()


def test_card_metadata_parses_as_a_hub_model_card(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(render_card(facts()))
    card = ModelCard.load(path)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"accuracy": 0.88, "precision": 0.875, "recall": 0.8867, "f1": 0.8808}
    assert card.data.eval_results[0].dataset_split == "test"


def test_card_says_which_checkpoint_was_kept():
    card = render_card(facts())
    assert "checkpoint of step 376 (epoch 2), the best validation loss (0.2896) among 5 evaluations" in card
    assert "Training stopped early." in card
    assert "- mixed_precision_training: bf16 autocast (fp32 master weights)" in card
