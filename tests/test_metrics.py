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


def test_a_tie_on_the_metric_goes_to_the_lower_loss():
    # two evaluations equally accurate: the one surer of its right answers (lower loss) is kept
    assert is_improvement(0.85, 0.85, "accuracy", loss=0.30, best_loss=0.35)
    assert not is_improvement(0.85, 0.85, "accuracy", loss=0.40, best_loss=0.35)
    assert not is_improvement(0.85, 0.85, "accuracy")  # no losses given: the earlier one stays
    assert is_improvement(0.84, 0.85, "mae", loss=0.9, best_loss=0.1)  # lower MAE wins whatever the loss


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


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_data():
    import numpy as np

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 2000)
    predictions = np.where(rng.random(2000) < 0.85, labels, 1 - labels)  # a model right 85% of the time
    probs = np.eye(2)[predictions] * 0.8 + 0.1
    small = classification_metrics(labels[:200], predictions[:200], ["neg", "pos"], probs=probs[:200])
    large = classification_metrics(labels, predictions, ["neg", "pos"], probs=probs)
    for m in (small, large):
        assert m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
        assert m["f1_ci"][0] <= m["f1"] <= m["f1_ci"][1]
    width = lambda m: m["accuracy_ci"][1] - m["accuracy_ci"][0]  # noqa: E731
    assert width(large) < width(small) / 2  # ~1/sqrt(10) of it
    assert 0.02 < width(large) < 0.05


def test_calibration_error_is_the_gap_between_confidence_and_accuracy():
    import numpy as np

    labels = np.array([0] * 90 + [1] * 10)
    always_neg = np.tile([0.9, 0.1], (100, 1))  # 90% sure of neg, right 90% of the time: calibrated
    m = classification_metrics(labels, always_neg.argmax(1), ["neg", "pos"], probs=always_neg)
    assert m["ece"] == pytest.approx(0.0, abs=1e-9)
    overconfident = np.tile([0.99, 0.01], (100, 1))
    m = classification_metrics(labels, overconfident.argmax(1), ["neg", "pos"], probs=overconfident)
    assert m["ece"] == pytest.approx(0.09)


@pytest.mark.parametrize("n_labels", [2, 3, 5])
def test_the_counts_match_scikit_learns(n_labels):
    # textfit counts with numpy to spare every command scikit-learn's import; the figures must be the same
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(n_labels)
    y_true = rng.integers(0, n_labels - (n_labels > 2), 200)  # with more than 2 labels, one never occurs
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, n_labels, 200))
    names = [f"l{i}" for i in range(n_labels)]
    m = classification_metrics(y_true, y_pred, names)
    ids = list(range(n_labels))
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=ids).tolist()
    averages = [("binary", "")] if n_labels == 2 else [("macro", ""), ("weighted", "_weighted")]
    for average, suffix in averages:
        expected = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=average, zero_division=0)
        got = [m[f"{k}{suffix}"] for k in ("precision", "recall", "f1")]
        assert got == pytest.approx(list(expected[:3]))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None, zero_division=0)
    for i, name in enumerate(names):
        assert [m["per_class"][name][k] for k in ("precision", "recall", "f1")] == pytest.approx([p[i], r[i], f[i]])
        assert m["per_class"][name]["support"] == s[i]


def test_the_multilabel_counts_match_scikit_learns():
    import numpy as np
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    from textfit.metrics import multilabel_metrics

    rng = np.random.default_rng(0)
    targets = (rng.random((300, 6)) < [0.5, 0.3, 0.1, 0.02, 0.0, 0.4]).astype(int)  # label 4 never occurs
    probs = np.clip(targets * 0.5 + rng.random((300, 6)) * 0.6, 0, 1)
    m = multilabel_metrics(targets, probs, [f"l{i}" for i in range(6)], threshold=0.5)
    predicted = (probs >= 0.5).astype(int)
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(targets, predicted))
    for average in ("micro", "macro"):
        expected = precision_recall_fscore_support(targets, predicted, average=average, zero_division=0)
        got = [m[f"{k}_{average}"] for k in ("precision", "recall", "f1")]
        assert got == pytest.approx(list(expected[:3]))
    p, r, f, s = precision_recall_fscore_support(targets, predicted, average=None, zero_division=0)
    for key, values in (("precision", p), ("recall", r), ("f1", f)):
        assert [m["per_class"][f"l{i}"][key] for i in range(6)] == pytest.approx(list(values))
    assert [m["per_class"][f"l{i}"]["support"] for i in range(6)] == list(s)
