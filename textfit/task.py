"""What the task means for the model: single-label, multi-label or regression, one object each.

A task owns everything that differs between the three: how many outputs the head has, what `transformers`
calls the task (`problem_type`, so `pipeline` applies softmax, sigmoid or nothing), what the training targets look
like and in which units the head learns them, how the head starts, which loss trains it, how outputs become scores
and answers, what a model that knows nothing would score, and which metrics judge it. Everything else asks the
task object; no other module compares task names.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # torch is imported where a loss is computed: data, config and metrics do without it
    import torch

from textfit.errors import ConfigError
from textfit.metrics import (
    best_threshold,
    classification_metrics,
    multilabel_metrics,
    per_label_thresholds,
    regression_metrics,
)

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Units:
    """The units a head learns its targets in: (target - shift) / scale. The identity unless a task says so."""

    shift: float = 0.0
    scale: float = 1.0

    @property
    def identity(self) -> bool:
        return (self.shift, self.scale) == (0.0, 1.0)

    def to_model(self, targets: list[Any]) -> list[Any]:
        return targets if self.identity else [(v - self.shift) / self.scale for v in targets]

    def from_model(self, outputs: np.ndarray) -> np.ndarray:
        return outputs if self.identity else outputs * self.scale + self.shift

    def loss(self, value: float) -> float:
        """A squared-error loss in model units, back in target units."""
        return value * self.scale**2


class Task:
    """The behaviour shared by every task; subclasses override what differs."""

    name: ClassVar[str]
    problem_type: ClassVar[str]  # transformers' name, saved in config.json
    answer_key: ClassVar[str]  # the key of a prediction: "label", "labels" or "value"
    has_classes: ClassVar[bool] = True  # labels are names (single, multi-label), not numbers
    label_sets: ClassVar[bool] = False  # a text carries a set of labels
    uses_threshold: ClassVar[bool] = False  # decisions come from a probability threshold
    main_metric: ClassVar[str]  # the metric a reader judges the task by (beside the loss)
    one_label_per_text: ClassVar[bool] = False  # exactly one class per text (softmax): accuracy says it all

    def __str__(self) -> str:
        return self.name

    def keep_metric(self, setting: str) -> str:
        """The metric that picks the evaluation to keep: metric_for_best, with auto read as the task's main one."""
        return self.main_metric if setting == "auto" else setting

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- the head and its targets
    def num_outputs(self, label_names: Sequence[str]) -> int:
        return len(label_names)

    def targets(self, labels: Sequence[Any], n_labels: int) -> list[Any]:
        """Training targets as the loss takes them."""
        return list(labels)

    def target_units(self, train_labels: Sequence[Any]) -> Units:
        """The units the head learns its targets in (the targets' own, for most tasks)."""
        return Units()

    def init_head(self, model: torch.nn.Module, train_labels: Sequence[Any], n_labels: int) -> None:
        """Start the output layer where the data says (nothing to do for most tasks)."""

    def check_settings(self, class_weights: str, threshold: float | None) -> None:
        if class_weights != "none":
            raise ConfigError(f"class_weights={class_weights!r} is for single-label tasks; this one is {self.name}")
        if threshold is not None:
            raise ConfigError(f"threshold={threshold} is for multi-label tasks; this one is {self.name}")

    # -- training
    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def know_nothing_loss(self, n_labels: int, train_targets: Sequence[Any]) -> float:
        """The validation loss of a model that learned nothing."""
        raise NotImplementedError

    # -- distillation: a student learns from a teacher's outputs (textfit/training/distill.py)
    def soft_loss(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """How far the student's outputs are from the teacher's, both raw head outputs in model units."""
        raise NotImplementedError

    def hard_targets(self, rows: torch.Tensor) -> torch.Tensor:
        """Targets packed as float rows (as distillation carries them beside the teacher's outputs), in the form
        `loss` takes them."""
        return rows

    def agreement(self, teacher: np.ndarray, student: np.ndarray, teacher_cut: float | np.ndarray,
                  student_cut: float | np.ndarray) -> tuple[str, float]:
        """(what is measured, its value): how closely a student's answers follow the teacher's, from scores."""
        same = self.decisions(teacher, teacher_cut) == self.decisions(student, student_cut)
        return "same answers", float(same.reshape(len(same), -1).all(axis=1).mean())

    # -- scores, answers, metrics
    def scores(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score_loss(self, scores: np.ndarray, target: np.ndarray) -> float:
        """The training loss, from scores."""
        raise NotImplementedError

    def evaluate(self, scores: np.ndarray, labels: Sequence[Any], label_names: Sequence[str], *,
                 threshold: float | None = None, languages: Sequence[str] | None = None,
                 per_label: Sequence[float] | None = None) -> dict[str, Any]:
        """Loss and metrics of a model's scores on labelled examples (thresholds: multi-label only)."""
        raise NotImplementedError

    def answer(self, row: np.ndarray, label_names: Sequence[str], threshold: float | np.ndarray) -> Any:
        """What `predict` answers under `answer_key` for one row of scores (a threshold may be one per label)."""
        raise NotImplementedError

    def decisions(self, scores: np.ndarray, threshold: float | np.ndarray) -> np.ndarray | None:
        """Comparable decisions per text (a class, or a row of yes/no per label); None for numbers."""
        return None

    def threshold_of(self, metrics: dict[str, Any]) -> float | None:
        """The decision threshold a kept model carries in config.json (multi-label)."""
        return metrics["threshold"] if self.uses_threshold else None

    def thresholds_of(self, metrics: dict[str, Any], label_names: Sequence[str]) -> list[float] | None:
        """The per-label thresholds a kept model carries in config.json, in label order (multi-label)."""
        if not self.uses_threshold or "thresholds" not in metrics:
            return None
        return [metrics["thresholds"][name] for name in label_names]

    # -- labels in the data
    def label_ids(self, label: Any) -> list[int]:
        """The label indices an example carries (one, several, or none for a number)."""
        return [label]

    def counts(self, labels: Sequence[Any], label_names: Sequence[str]) -> dict[str, int]:
        """Examples per label (multi-label: texts carrying it); empty for regression, which has no labels."""
        counter = Counter(i for label in labels for i in self.label_ids(label))
        return {name: counter.get(i, 0) for i, name in enumerate(label_names)}

    def target_summary(self, splits: dict[str, Sequence[Any]]) -> dict[str, dict[str, float]] | None:
        """Regression: mean, standard deviation and range of the targets per split, for the card."""
        return None


class SingleLabel(Task):
    """One class per text: softmax over the labels, cross-entropy."""

    name = "single"
    problem_type = "single_label_classification"
    answer_key = "label"
    one_label_per_text = True
    main_metric = "accuracy"

    def check_settings(self, class_weights: str, threshold: float | None) -> None:
        if threshold is not None:
            raise ConfigError(f"threshold={threshold} is for multi-label tasks; this one is {self.name}")

    def loss(self, logits, labels, weight=None):
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), labels, weight=weight)

    def soft_loss(self, student, teacher, temperature):
        """KL divergence of the temperature-softened distributions, times T^2 so that its gradient keeps the
        size of the hard loss's whatever T is (Hinton et al., 2015)."""
        import torch.nn.functional as F

        log_student = F.log_softmax(student.float() / temperature, dim=-1)
        log_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
        return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2

    def hard_targets(self, rows):
        return rows[:, 0].long()

    def know_nothing_loss(self, n_labels, train_targets):
        return math.log(n_labels)

    def scores(self, logits):
        logits = np.asarray(logits, dtype=np.float32)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def score_loss(self, scores, target):
        p = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-12)
        return float(-np.mean(np.log(p[np.arange(len(target)), target])))

    def evaluate(self, scores, labels, label_names, *, threshold=None, languages=None, per_label=None):
        scores = np.asarray(scores, dtype=np.float32)
        value = self.score_loss(scores, np.asarray(labels))
        return classification_metrics(list(labels), scores.argmax(-1).tolist(), label_names, value, languages, scores)

    def answer(self, row, label_names, threshold):
        return label_names[int(row.argmax())]

    def decisions(self, scores, threshold):
        return scores.argmax(1)


class MultiLabel(Task):
    """Any number of labels per text: a sigmoid per label, binary cross-entropy, a decision threshold."""

    name = "multi-label"
    problem_type = "multi_label_classification"
    answer_key = "labels"
    label_sets = True
    uses_threshold = True
    main_metric = "f1_micro"

    def check_settings(self, class_weights: str, threshold: float | None) -> None:
        if class_weights != "none":
            raise ConfigError(f"class_weights={class_weights!r} is for single-label tasks; this one is {self.name}")

    def targets(self, labels, n_labels):
        """Label sets as multi-hot float rows."""
        rows = []
        for label_set in labels:
            row = [0.0] * n_labels
            for i in label_set:
                row[i] = 1.0
            rows.append(row)
        return rows

    def init_head(self, model, train_labels, n_labels):
        """Each label's bias starts at its log-odds in train, so the first steps learn from the texts rather than
        the labels' rarity (BCE 0.69 per label -> ~0.15 on GoEmotions before any step)."""
        import torch

        from textfit.training.model import output_layer

        share = np.asarray(self.targets(train_labels, n_labels)).mean(0).clip(1e-4, 1 - 1e-4)
        with torch.no_grad():
            output_layer(model).bias.copy_(torch.from_numpy(np.log(share / (1 - share))))

    def loss(self, logits, labels, weight=None):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits.float(), labels)

    def soft_loss(self, student, teacher, temperature):
        """Per label, binary cross-entropy against the teacher's softened probability, times T^2."""
        import torch
        import torch.nn.functional as F

        target = torch.sigmoid(teacher.float() / temperature)
        return F.binary_cross_entropy_with_logits(student.float() / temperature, target) * temperature**2

    def know_nothing_loss(self, n_labels, train_targets):
        return math.log(2)

    def scores(self, logits):
        return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float32)))

    def score_loss(self, scores, target):
        p = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-12)
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))

    def evaluate(self, scores, labels, label_names, *, threshold=None, languages=None, per_label=None):
        """With `threshold=None` the thresholds are chosen here: a global one (best micro F1), then one per label
        with enough positives (best F1 of that label), the global one for the others. What the global threshold
        alone and 0.5 give is reported beside them (`*_global`, `f1_micro_at_0.5`), so a reader can see what
        choosing them on this very set added. A given `threshold` (and `per_label`) is used as it is."""
        scores = np.asarray(scores, dtype=np.float32)
        target = np.asarray(self.targets(labels, len(label_names)))
        value = self.score_loss(scores, target)
        if threshold is not None:
            return multilabel_metrics(target, scores, label_names, threshold, value, per_label)
        chosen = best_threshold(target, scores)
        out = multilabel_metrics(target, scores, label_names, chosen, value,
                                 per_label_thresholds(target, scores, chosen))
        alone = multilabel_metrics(target, scores, label_names, chosen)
        out.update({f"{k}_global": alone[k] for k in ("f1_micro", "f1_macro")})
        out["f1_micro_at_0.5"] = multilabel_metrics(target, scores, label_names, DEFAULT_THRESHOLD)["f1_micro"]
        return out

    def answer(self, row, label_names, threshold):
        """Every label at or above its threshold, most probable first."""
        cut = np.broadcast_to(np.asarray(threshold, dtype=float), row.shape)
        return [label_names[i] for i in np.argsort(-row) if row[i] >= cut[i]]

    def decisions(self, scores, threshold):
        return scores >= threshold

    def label_ids(self, label):
        return list(label)


class Regression(Task):
    """A number per text: one output, mean squared error, learned on standardised targets."""

    name = "regression"
    problem_type = "regression"
    answer_key = "value"
    has_classes = False
    main_metric = "mae"

    def num_outputs(self, label_names):
        return 1

    def targets(self, labels, n_labels):
        return [float(v) for v in labels]

    def target_units(self, train_labels):
        """Standardised targets (mean 0, std 1): the scale a new head starts at, so it need not grow to IMDb's 1-10
        first; the saved head is scaled back, and every reported loss is in target units."""
        values = np.asarray(train_labels, dtype=float)
        return Units(float(values.mean()), float(values.std()) or 1.0)

    def loss(self, logits, labels, weight=None):
        import torch.nn.functional as F

        return F.mse_loss(logits.float().squeeze(-1), labels)

    def soft_loss(self, student, teacher, temperature):
        """The teacher's value as the target (a number has no distribution to soften: temperature is unused)."""
        import torch.nn.functional as F

        return F.mse_loss(student.float(), teacher.float())

    def hard_targets(self, rows):
        return rows[:, 0]

    def agreement(self, teacher, student, teacher_cut, student_cut):
        return "mean absolute difference", float(np.abs(teacher[:, 0] - student[:, 0]).mean())

    def know_nothing_loss(self, n_labels, train_targets):
        """Predicting the mean: the variance of the targets."""
        return float(np.var(np.asarray(train_targets, dtype=float))) or 1.0

    def scores(self, logits):
        return np.asarray(logits, dtype=np.float32)

    def score_loss(self, scores, target):
        return float(np.mean((scores[:, 0] - target) ** 2))

    def evaluate(self, scores, labels, label_names, *, threshold=None, languages=None, per_label=None):
        scores = np.asarray(scores, dtype=np.float32)
        target = np.asarray(self.targets(labels, len(label_names)))
        return regression_metrics(target, scores[:, 0], self.score_loss(scores, target), languages)

    def answer(self, row, label_names, threshold):
        return float(row[0])

    def label_ids(self, label):
        return []

    def counts(self, labels, label_names):
        return {}

    def target_summary(self, splits):
        out = {}
        for split, labels in splits.items():
            values = np.asarray(labels, dtype=float)
            out[split] = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                          "max": float(values.max())}
        return out


SINGLE, MULTI_LABEL, REGRESSION = SingleLabel(), MultiLabel(), Regression()
TASKS: dict[str, Task] = {t.name: t for t in (SINGLE, MULTI_LABEL, REGRESSION)}
TASK_NAMES = tuple(TASKS)


def get(name: str | Task) -> Task:
    """The task object for a name (a Task passes through)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ConfigError(f"task={name!r}: choose one of {', '.join(TASK_NAMES)}")
    return TASKS[name]


def of_config(config: Any) -> Task:
    """The task of a saved model, from its `transformers` config's problem_type."""
    problem = getattr(config, "problem_type", None) or ""
    return next((t for t in TASKS.values() if t.problem_type == problem), SINGLE)
