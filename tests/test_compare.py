"""Two models on the same examples: each task's main metric as scikit-learn computes it, and a paired interval
that holds the difference, narrows when the two models err on the same examples, and changes sign with them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from textfit.compare import in_words, paired_difference
from textfit.task import MULTI_LABEL, REGRESSION, SINGLE

RNG = np.random.default_rng(7)


def _noisy_classifier(gold: np.ndarray, right: float) -> np.ndarray:
    """Two-class scores that are right on about `right` of the examples."""
    answers = np.where(RNG.random(len(gold)) < right, gold, 1 - gold)
    return np.eye(2)[answers] * 0.8 + 0.1


def test_each_task_scores_its_main_metric_as_scikit_learn_does():
    gold = RNG.integers(0, 2, 400)
    ours, theirs = _noisy_classifier(gold, 0.9), _noisy_classifier(gold, 0.7)
    single = paired_difference(SINGLE, ours, theirs, gold)
    assert single.ours == pytest.approx(accuracy_score(gold, ours.argmax(1)))
    assert single.theirs == pytest.approx(accuracy_score(gold, theirs.argmax(1)))

    sets = (RNG.random((400, 4)) < 0.3).astype(float)
    probs = np.clip(sets * 0.6 + RNG.random((400, 4)) * 0.5, 0, 1)
    cuts = np.array([0.4, 0.5, 0.6, 0.7])  # one threshold per label, as a tuned model keeps them
    multi = paired_difference(MULTI_LABEL, probs, RNG.random((400, 4)), sets, cuts, 0.5)
    assert multi.ours == pytest.approx(f1_score(sets, probs >= cuts, average="micro"))

    values = RNG.normal(3, 1, 400)
    close, far = values + RNG.normal(0, 0.2, 400), values + RNG.normal(0, 1.0, 400)
    regression = paired_difference(REGRESSION, close[:, None], far[:, None], values)
    assert regression.ours == pytest.approx(mean_absolute_error(values, close))
    assert regression.difference < 0 and regression.interval[1] < 0  # a smaller error is the better side here


def test_the_interval_holds_the_difference_and_turns_with_the_order():
    gold = RNG.integers(0, 2, 300)
    better, worse = _noisy_classifier(gold, 0.92), _noisy_classifier(gold, 0.80)
    one_way = paired_difference(SINGLE, better, worse, gold, seed=3)
    other_way = paired_difference(SINGLE, worse, better, gold, seed=3)
    lo, hi = one_way.interval
    assert lo <= one_way.difference <= hi and lo > 0
    assert other_way.difference == pytest.approx(-one_way.difference)
    assert other_way.interval == pytest.approx((-hi, -lo))


def test_pairing_narrows_the_interval_when_the_models_share_their_mistakes():
    """A student that errs where its teacher errs: the same 12-point gap in accuracy has a narrower interval than
    between two models whose mistakes fall apart, which is why the examples are resampled together."""
    gold = RNG.integers(0, 2, 500)
    teacher = np.where(np.arange(500) < 440, gold, 1 - gold)  # wrong on the last 60
    shared = teacher.copy()
    shared[:60] = 1 - shared[:60]  # the teacher's 60 mistakes, and 60 more of its own
    apart = np.where(RNG.permutation(500) < 120, 1 - gold, gold)  # 120 mistakes anywhere
    narrow = paired_difference(SINGLE, np.eye(2)[shared], np.eye(2)[teacher], gold)
    wide = paired_difference(SINGLE, np.eye(2)[apart], np.eye(2)[teacher], gold)
    assert narrow.difference == pytest.approx(wide.difference) == pytest.approx(-0.12)
    assert narrow.interval[1] - narrow.interval[0] < wide.interval[1] - wide.interval[0]


def test_differences_read_in_points_or_in_the_metrics_own_units():
    assert in_words("accuracy", -0.0166, (-0.04, 0.007)) == \
        "-1.7 points, 95% CI of the paired difference -4.0 to +0.7 points"
    assert in_words("mae", 0.012, (0.005, 0.02)) == "+0.012, 95% CI of the paired difference +0.005 to +0.020"
