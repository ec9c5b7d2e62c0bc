"""Classification metrics, with scikit-learn doing the arithmetic.

Two labels: precision, recall and F1 of the positive class (index 1), as the reference cards report them.
More labels: macro averages as `precision`/`recall`/`f1`, weighted ones as `*_weighted`.
Always: per-class precision/recall/F1/support and the confusion matrix (rows: true, columns: predicted).
With `languages` (the data's `language` column): the headline metrics again for each language, as `per_language`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

SCALAR_KEYS = ("loss", "accuracy", "precision", "recall", "f1")
LOWER_IS_BETTER = {"loss"}


def classification_metrics(labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str],
                           loss: float | None = None, languages: Sequence[str] | None = None) -> dict[str, Any]:
    y_true, y_pred = np.asarray(labels), np.asarray(predictions)
    all_ids = list(range(len(label_names)))
    out: dict[str, Any] = {}
    if loss is not None:
        out["loss"] = float(loss)
    out["accuracy"] = float(accuracy_score(y_true, y_pred))
    if len(label_names) == 2:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=1, zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
    else:
        for average, suffix in (("macro", ""), ("weighted", "_weighted")):
            p, r, f, _ = precision_recall_fscore_support(
                y_true, y_pred, labels=all_ids, average=average, zero_division=0
            )
            out.update({f"precision{suffix}": float(p), f"recall{suffix}": float(r), f"f1{suffix}": float(f)})
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=all_ids, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=all_ids).tolist()
    out["num_examples"] = len(y_true)
    if languages is not None:
        out["per_language"] = per_language_metrics(y_true, y_pred, label_names, languages)
    return out


def per_language_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str],
                         languages: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Headline metrics per language, so an average over languages cannot hide the one the model fails."""
    langs = np.asarray([str(lang) for lang in languages])
    if len(langs) != len(y_true):
        raise ValueError(f"{len(langs)} languages for {len(y_true)} examples")
    out = {}
    for lang in sorted(set(langs.tolist())):
        mask = langs == lang
        m = classification_metrics(y_true[mask], y_pred[mask], label_names)
        out[lang] = {k: v for k, v in m.items() if isinstance(v, float)} | {"num_examples": int(mask.sum())}
    return out


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers that go into the evaluation history and the results table."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def is_improvement(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
