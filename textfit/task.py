"""What the task means for the model: single-label, multi-label or regression.

One place says, per task, how many outputs the head has, what `transformers` calls the task (`problem_type`, so
`pipeline` applies softmax, sigmoid or nothing), what the training targets look like, which loss trains it, how
outputs become scores, what a model that knows nothing would score, and which metrics judge it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from textfit.metrics import best_threshold, classification_metrics, multilabel_metrics, regression_metrics

PROBLEM_TYPES = {"single": "single_label_classification", "multi-label": "multi_label_classification",
                 "regression": "regression"}
DEFAULT_THRESHOLD = 0.5


def task_of(config: Any) -> str:
    """The task of a saved model, from its `transformers` config."""
    return {v: k for k, v in PROBLEM_TYPES.items()}.get(getattr(config, "problem_type", None) or "", "single")


def num_outputs(task: str, label_names: Sequence[str]) -> int:
    return 1 if task == "regression" else len(label_names)


def targets(task: str, labels: Sequence[Any], n_labels: int) -> list[Any]:
    """Training targets: class indices as they are, label sets as multi-hot float rows, numbers as floats."""
    if task == "multi-label":
        rows = []
        for label_set in labels:
            row = [0.0] * n_labels
            for i in label_set:
                row[i] = 1.0
            rows.append(row)
        return rows
    if task == "regression":
        return [float(v) for v in labels]
    return list(labels)


def loss(task: str, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    logits = logits.float()
    if task == "multi-label":
        return F.binary_cross_entropy_with_logits(logits, labels)
    if task == "regression":
        return F.mse_loss(logits.squeeze(-1), labels)
    return F.cross_entropy(logits, labels, weight=weight)


def scores(task: str, logits: np.ndarray) -> np.ndarray:
    """Softmax probabilities (single), independent sigmoid probabilities (multi-label), or the values (regression)."""
    logits = np.asarray(logits, dtype=np.float32)
    if task == "multi-label":
        return 1 / (1 + np.exp(-logits))
    if task == "regression":
        return logits
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def know_nothing_loss(task: str, n_labels: int, train_targets: Sequence[Any]) -> float:
    """The validation loss of a model that learned nothing: ln(labels) for softmax, ln 2 per label for sigmoids,
    the variance of the targets for squared error (predicting their mean)."""
    if task == "multi-label":
        return math.log(2)
    if task == "regression":
        return float(np.var(np.asarray(train_targets, dtype=float))) or 1.0
    return math.log(n_labels)


def score_loss(task: str, scores_: np.ndarray, target: np.ndarray) -> float:
    """The training loss, from scores: cross-entropy of the true class, binary cross-entropy per label, or MSE."""
    if task == "regression":
        return float(np.mean((scores_[:, 0] - target) ** 2))
    p = np.clip(scores_.astype(np.float64), 1e-12, 1 - 1e-12)
    if task == "multi-label":
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(target)), target])))


def evaluate_scores(task: str, scores_: np.ndarray, labels: Sequence[Any], label_names: Sequence[str], *,
                    threshold: float | None = None, languages: Sequence[str] | None = None) -> dict[str, Any]:
    """Loss and metrics of a model's scores (see `scores`) on labelled examples.

    Multi-label: with `threshold=None` the decision threshold is chosen here (best micro F1) and the micro F1 at 0.5
    is reported beside it, so a reader can see what choosing it on this very set added."""
    scores_ = np.asarray(scores_, dtype=np.float32)
    target = np.asarray(targets(task, labels, len(label_names)))
    value = score_loss(task, scores_, target)
    if task == "regression":
        return regression_metrics(target, scores_[:, 0], value, languages)
    if task == "multi-label":
        chosen = best_threshold(target, scores_) if threshold is None else threshold
        out = multilabel_metrics(target, scores_, label_names, chosen, value)
        if threshold is None:
            out["f1_micro_at_0.5"] = multilabel_metrics(target, scores_, label_names, DEFAULT_THRESHOLD)["f1_micro"]
        return out
    return classification_metrics(list(labels), scores_.argmax(-1).tolist(), label_names, value, languages, scores_)
