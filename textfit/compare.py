"""Two models scored on the same examples: the difference in the task's main metric, with a 95% paired bootstrap
interval (each resample draws the same examples for both models), so that "better" or "as good" means so beyond
the luck of one evaluation set. The baseline beside every run and a student beside its teacher both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textfit.metrics import BOOTSTRAP_RESAMPLES, LOWER_IS_BETTER
from textfit.task import Task


@dataclass(frozen=True)
class PairedDifference:
    ours: float  # the main metric of the first model on the examples
    theirs: float  # the second model's, on the same examples
    difference: float  # ours - theirs
    interval: tuple[float, float]  # 95% paired bootstrap interval of the difference


def per_example(task: Task, scores: np.ndarray, targets: np.ndarray,
                threshold: float | np.ndarray) -> tuple[np.ndarray, ...]:
    """What the main metric sums over examples: correct answers (single label); true positives, predicted and
    actual positives per example (multi-label micro F1); absolute errors (regression MAE)."""
    if not task.has_classes:
        return (np.abs(scores[:, 0] - targets),)
    if task.label_sets:
        predicted = scores >= threshold
        actual = targets.astype(bool)
        return (predicted & actual).sum(1), predicted.sum(1), actual.sum(1)
    return ((scores.argmax(1) == targets).astype(float),)


def metric_over(task: Task, parts: tuple[np.ndarray, ...], rows: np.ndarray) -> float:
    """The main metric over `rows` (indices, repeats allowed) from per_example's parts."""
    if task.label_sets:
        tp, predicted, actual = (p[rows].sum() for p in parts)
        return float(2 * tp / max(predicted + actual, 1))
    return float(parts[0][rows].mean())


def paired_difference(task: Task, ours: np.ndarray, theirs: np.ndarray, targets: np.ndarray,
                      our_cut: float | np.ndarray = 0.5, their_cut: float | np.ndarray = 0.5, seed: int = 42,
                      resamples: int = BOOTSTRAP_RESAMPLES) -> PairedDifference:
    """Both models' scores (in the task's shape and units) on the same examples, and the targets those examples
    have; the cuts are the multi-label thresholds of each model (unused by the other tasks)."""
    our_parts = per_example(task, np.asarray(ours), targets, our_cut)
    their_parts = per_example(task, np.asarray(theirs), targets, their_cut)
    n = len(targets)
    every = np.arange(n)
    mine, other = metric_over(task, our_parts, every), metric_over(task, their_parts, every)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        differences.append(metric_over(task, our_parts, rows) - metric_over(task, their_parts, rows))
    lo, hi = np.percentile(differences, [2.5, 97.5])
    return PairedDifference(mine, other, mine - other, (float(lo), float(hi)))


def in_words(metric: str, difference: float, interval: tuple[float, float] | list[float]) -> str:
    """'+5.0 points, 95% CI of the paired difference +2.1 to +7.9 points': accuracy and F1 read in points,
    errors (MAE, MSE) in their own units, to three decimals."""
    if metric in LOWER_IS_BETTER:
        return f"{difference:+.3f}, 95% CI of the paired difference {interval[0]:+.3f} to {interval[1]:+.3f}"
    lo, hi = (100 * x for x in interval)
    return f"{100 * difference:+.1f} points, 95% CI of the paired difference {lo:+.1f} to {hi:+.1f} points"
