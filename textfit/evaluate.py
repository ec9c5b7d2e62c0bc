"""`textfit evaluate`: a saved model on any labelled split or file, with the metrics training reports."""

from __future__ import annotations

from typing import Any

from textfit.data import Columns, load_eval_examples
from textfit.predict import Classifier

SHOWN = ("loss", "accuracy", "precision", "recall", "f1", "f1_weighted", "subset_accuracy", "f1_micro", "f1_macro",
         "threshold", "mse", "mae", "pearson", "spearman")  # single-label, multi-label, regression


def evaluate_folder(clf: Classifier, dataset: str, split: str | None = None, *, text_column: str | None = None,
                    label_column: str | None = None, text_pair_column: str | None = None,
                    max_samples: int | None = None, windows: bool | None = None) -> tuple[dict[str, Any], str, int]:
    """(metrics, the split read, examples scored). Columns default to the ones the model was trained on. With
    `windows`, texts longer than the model's max_length are read whole (overlapping windows, scores averaged);
    unset, as the model's own setting says."""
    saved = clf.folder.columns
    columns = Columns(text_column or saved.text, label_column or saved.label, text_pair_column or saved.text_pair,
                      saved.label_pattern)
    examples, split = load_eval_examples(dataset, split, columns, clf.labels, max_samples, clf.folder.seed, clf.task)
    pairs = [ex.text_pair for ex in examples] if columns.text_pair else None
    scores = clf.predict_proba([ex.text for ex in examples], pairs, windows=windows)
    languages = [ex.extra.get("language") for ex in examples]
    metrics = clf.task.evaluate(scores, [ex.label for ex in examples], clf.labels, threshold=clf.threshold,
                                languages=languages if all(languages) else None, per_label=clf.thresholds)
    return metrics, split, len(examples)


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    """The metrics as the terminal shows them."""
    lines = [f"  {key:<16} {metrics[key]:.4f}" for key in SHOWN if key in metrics]
    if "accuracy_ci" in metrics:
        (a_lo, a_hi), (f_lo, f_hi) = metrics["accuracy_ci"], metrics["f1_ci"]
        lines.append(f"  95% bootstrap intervals: accuracy {a_lo:.4f}-{a_hi:.4f}, f1 {f_lo:.4f}-{f_hi:.4f}; "
                     f"calibration error {metrics['ece']:.4f}")
    for lang, m in metrics.get("per_language", {}).items():
        shown = "  ".join(f"{k} {m[k]:.4f}" for k in ("accuracy", "f1", "mae", "spearman") if k in m)
        lines.append(f"  [{lang}] {shown}  ({m['num_examples']} examples)")
    return lines
