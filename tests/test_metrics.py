from __future__ import annotations

import pytest

from textfit.metrics import classification_metrics, is_improvement


def test_binary_reports_positive_class():
    m = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], ["neg", "pos"], loss=0.5)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3)  # 2 of 3 predicted pos are pos
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["per_class"]["neg"]["support"] == 2
    assert "f1_weighted" not in m


def test_multiclass_reports_macro_and_weighted_and_absent_classes():
    m = classification_metrics([0, 0, 0, 1, 2], [0, 0, 1, 1, 1], ["a", "b", "c"])
    assert m["recall"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["recall_weighted"] == pytest.approx(0.6)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert len(m["confusion_matrix"]) == 3


def test_improvement_direction():
    assert is_improvement(0.3, 0.4, "loss") and not is_improvement(0.5, 0.4, "loss")
    assert is_improvement(0.9, 0.8, "accuracy") and not is_improvement(0.7, 0.8, "f1")
    assert is_improvement(1.0, None, "loss")


def test_per_language_metrics_split_the_headline_numbers():
    labels, predictions = [0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 1, 0]
    m = classification_metrics(labels, predictions, ["a", "b", "c"], languages=["de", "de", "de", "ja", "ja", "ja"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_language"]["de"]["accuracy"] == 1.0 and m["per_language"]["de"]["num_examples"] == 3
    assert m["per_language"]["ja"]["accuracy"] == pytest.approx(1 / 3)
    assert set(m["per_language"]["ja"]) >= {"precision", "recall", "f1", "f1_weighted"}
    assert "per_language" not in classification_metrics(labels, predictions, ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 languages for 6 examples"):
        classification_metrics(labels, predictions, ["a", "b", "c"], languages=["de", "ja"])
