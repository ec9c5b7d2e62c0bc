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
