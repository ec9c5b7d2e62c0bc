"""`textfit evaluate`: a saved model on any labelled split or file, with the metrics training reports; with
`--against`, another model on the very same examples, and whether the difference is beyond the luck of the set."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from textfit.compare import in_words, paired_difference
from textfit.data import Columns, Example, load_eval_examples
from textfit.errors import ConfigError
from textfit.metrics import LOWER_IS_BETTER
from textfit.predict import Classifier

SHOWN = ("loss", "accuracy", "precision", "recall", "f1", "f1_weighted", "subset_accuracy", "f1_micro", "f1_macro",
         "threshold", "mse", "mae", "pearson", "spearman")  # single-label, multi-label, regression


def evaluate_folder(clf: Classifier, dataset: str, split: str | None = None, *, text_column: str | None = None,
                    label_column: str | None = None, text_pair_column: str | None = None,
                    max_samples: int | None = None, windows: bool | None = None) -> tuple[dict[str, Any], str, int]:
    """(metrics, the split read, examples scored). Columns default to the ones the model was trained on. With
    `windows`, texts longer than the model's max_length are read whole (overlapping windows, scores averaged);
    unset, as the model's own setting says."""
    columns = _columns(clf, text_column, label_column, text_pair_column)
    examples, split = load_eval_examples(dataset, split, columns, clf.labels, max_samples, clf.folder.seed, clf.task)
    scores = scores_of(clf, examples, columns.text_pair, windows)
    return metrics_of(clf, examples, scores, clf.threshold, clf.thresholds), split, len(examples)


def _columns(clf: Classifier, text: str | None, label: str | None, text_pair: str | None) -> Columns:
    """The columns the model was trained on, unless named otherwise."""
    saved = clf.folder.columns
    return Columns(text or saved.text, label or saved.label, text_pair or saved.text_pair, saved.label_pattern)


def scores_of(clf: Classifier, examples: list[Example], text_pair: str | None, windows: bool | None) -> np.ndarray:
    pairs = [ex.text_pair for ex in examples] if text_pair else None
    return clf.predict_proba([ex.text for ex in examples], pairs, windows=windows)


def metrics_of(clf: Classifier, examples: list[Example], scores: np.ndarray, threshold: float | None,
               per_label: list[float] | None) -> dict[str, Any]:
    """The metrics of scores in clf's label order, cut at the given thresholds (multi-label only)."""
    languages = [ex.extra.get("language") for ex in examples]
    return clf.task.evaluate(scores, [ex.label for ex in examples], clf.labels, threshold=threshold,
                             languages=languages if all(languages) else None, per_label=per_label)


@dataclass(frozen=True)
class Comparison:
    """A model against another on the same examples: the main metric of each, the paired difference with its 95%
    bootstrap interval, and how often the two give the same answer."""

    metric: str
    ours: float
    theirs: float
    difference: float  # ours - theirs
    interval: tuple[float, float]
    agreement_kind: str  # "same answers", or the mean absolute difference for regression
    agreement: float
    examples: int

    @property
    def verdict(self) -> str:
        lo, hi = self.interval
        better, worse = (hi < 0, lo > 0) if self.metric in LOWER_IS_BETTER else (lo > 0, hi < 0)
        if better or worse:
            return f"{'better' if better else 'worse'} beyond the luck of this evaluation set"
        return "within the luck of this evaluation set: these examples cannot tell the two apart"

    def sentence(self, ours: str, theirs: str) -> str:
        same = self.agreement_kind == "same answers"
        together = (f"they give the same answer on {self.agreement:.1%} of them" if same
                    else f"their predictions differ by {self.agreement:.3f} on average")
        return (f"{ours} against {theirs}, on the same {self.examples:,} examples: {self.metric} {self.ours:.4f} "
                f"against {self.theirs:.4f} ({in_words(self.metric, self.difference, self.interval)}), "
                f"{self.verdict}; {together}.")

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict}


def evaluate_against(clf: Classifier, other: Classifier, dataset: str, split: str | None = None, *,
                     text_column: str | None = None, label_column: str | None = None,
                     text_pair_column: str | None = None, max_samples: int | None = None,
                     windows: bool | None = None) -> tuple[dict[str, Any], dict[str, Any], Comparison, str]:
    """Both models on the examples `clf` would be evaluated on (its columns and seed), each read as it reads texts
    unless `windows` says otherwise: (clf's metrics, other's metrics, the comparison, the split read)."""
    order = _same_task(clf, other)
    columns = _columns(clf, text_column, label_column, text_pair_column)
    examples, split = load_eval_examples(dataset, split, columns, clf.labels, max_samples, clf.folder.seed, clf.task)
    ours = scores_of(clf, examples, columns.text_pair, windows)
    theirs = scores_of(other, examples, columns.text_pair, windows)[:, order]  # in clf's label order
    their_thresholds = [other.thresholds[i] for i in order] if other.thresholds else None
    task, names = clf.task, clf.labels
    our_metrics = metrics_of(clf, examples, ours, clf.threshold, clf.thresholds)
    their_metrics = metrics_of(clf, examples, theirs, other.threshold, their_thresholds)  # other's own cuts
    our_cut = np.asarray(clf.thresholds) if clf.thresholds else clf.threshold or 0.5
    their_cut = np.asarray(their_thresholds) if their_thresholds else other.threshold or 0.5
    targets = np.asarray(task.targets([ex.label for ex in examples], len(names)))
    paired = paired_difference(task, ours, theirs, targets, our_cut, their_cut, seed=clf.folder.seed)
    kind, agreement = task.agreement(theirs, ours, their_cut, our_cut)
    comparison = Comparison(task.main_metric, paired.ours, paired.theirs, paired.difference, paired.interval, kind,
                            agreement, len(examples))
    return our_metrics, their_metrics, comparison, split


def _same_task(clf: Classifier, other: Classifier) -> list[int]:
    """Where each of clf's labels sits among other's: two models compare only on the same task and labels."""
    if clf.task.name != other.task.name:
        raise ConfigError(f"{other.path} is a {other.task.name} model and {clf.path} a {clf.task.name} one: "
                          "they cannot be scored against each other")
    if not clf.task.has_classes:
        return list(range(len(other.labels) or 1))
    if sorted(clf.labels) != sorted(other.labels):
        raise ConfigError(f"{clf.path} has labels {', '.join(clf.labels)} and {other.path} has "
                          f"{', '.join(other.labels)}: models compare only on the same labels")
    return [other.labels.index(name) for name in clf.labels]


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
