"""Plain-language findings from a run's evaluation history, so the reader does not have to spot them in a table.

The reference cards all show the same story (validation loss bottoms out at epoch 2 and rises while training
loss falls) and leave it to the reader. These checks say it, in the terminal and in the card:
- overfitting: validation loss higher than its minimum in each of the last `patience` or more evaluations
  while training loss kept falling; names the best evaluation and whether it is the one kept. When the task's
  metric is better at the last evaluation than at the loss-best one, the model grew confident (its loss counts
  confident mistakes) rather than worse at the task, and the finding says that instead;
- no learning: losses flat, and accuracy no better than always answering the most common class or validation
  loss still near a know-nothing model's (ln of the number of labels);
- divergence: a loss that is not a number, or training loss far above where it started;
- one class: the kept model gives every evaluation example the same label.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from textfit.metrics import LOWER_IS_BETTER
from textfit.task import SINGLE, Task

OVERFIT_PATIENCE = 2  # evaluations above the minimum before we call it overfitting, not noise
FLAT = 0.97  # a loss that ends above 97% of where it started has barely moved
MAJORITY_MARGIN = 0.05  # accuracy within 5 points of the majority share is no better than guessing


def kept_words(kept: dict[str, Any]) -> str:
    """Why an evaluation was kept, in the words the terminal, the report and the card use. `rule` is "best" (the
    best value of `metric` so far) or "last" (metric_for_best auto in a run that trained to its end); folders
    written before rules existed kept by the best value."""
    if kept.get("rule") == "last":
        return f"{_rule(kept)} ({kept['metric']} {kept['value']:.4f}; the run trained to its end)"
    return f"{_rule(kept)} {kept['value']:.4f}"


def _rule(kept: dict[str, Any]) -> str:
    return "the last evaluation" if kept.get("rule") == "last" else f"best {kept['metric']}"


def run_findings(history: list[dict[str, Any]], kept: dict[str, Any] | None, metrics: dict[str, Any],
                 eval_counts: dict[str, int], learning_rate: float, diverged_at: int | None = None,
                 task: Task = SINGLE) -> list[str]:
    """The findings of a run; no-learning and one-class judge accuracy, so they speak for single-label runs."""
    found = []
    if diverged_at is not None:
        kept_text = f" The model kept is the last good evaluation, {_where(kept)}." if kept else ""
        found.append(f"Training diverged: the loss became not a number or exploded at step {diverged_at}, and "
                     f"training stopped there.{kept_text} Lower the learning rate ({learning_rate:g}).")
    overfitting = partial(_overfitting, metric=task.main_metric)
    checks = [overfitting] if diverged_at is not None else [_divergence, overfitting]
    if task.one_label_per_text:
        checks.append(_no_learning)
    for check in checks:
        message = check(history, kept, metrics, eval_counts, learning_rate)
        if message:
            found.append(message)
    one_class = _one_class(metrics, list(eval_counts)) if task.one_label_per_text else None
    if one_class:
        found.append(one_class)
    disagree = _loss_and_metric_disagree(history, kept, task.main_metric)
    if disagree:
        found.append(disagree)
    return found


def overfitting_so_far(history: list[dict[str, Any]], metric: str) -> str | None:
    """During training, at the evaluation where the run first counts as overfitting (said once): what to say,
    `overfitting` or, when `metric` is better now than at the loss-best evaluation, `growing confident`."""
    span = _overfit_span(history)
    if span is None or len(span[1]) != OVERFIT_PATIENCE:
        return None
    return "growing confident" if _metric_improved(*span, metric) else "overfitting"


def _metric_improved(best: dict[str, Any], after: list[dict[str, Any]], metric: str) -> bool:
    """The task's metric is better at the last evaluation than at the loss-best one: the loss rose because the
    model grew surer of its answers (wrong ones included), not because it got worse at the task."""
    if metric not in best or metric not in after[-1]:
        return False
    return (after[-1][metric] < best[metric]) if metric in LOWER_IS_BETTER else (after[-1][metric] > best[metric])


def _overfit_span(history: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(the evaluation with the lowest validation loss, the OVERFIT_PATIENCE or more after it) when training
    loss fell meanwhile; None otherwise."""
    best_i = min(range(len(history)), key=lambda i: history[i]["loss"], default=None)
    if best_i is None:
        return None
    best, after = history[best_i], history[best_i + 1:]
    if len(after) < OVERFIT_PATIENCE or after[-1]["train_loss"] >= best["train_loss"]:
        return None
    return best, after


def _where(row: dict[str, Any]) -> str:
    return f"step {row['step']} (epoch {row['epoch']:g})"


def _divergence(history, kept, metrics, eval_counts, learning_rate) -> str | None:
    bad = next((row for row in history if not all(math.isfinite(row[k]) for k in ("train_loss", "loss"))), None)
    if bad:
        return (f"Training diverged: the loss is not a number at {_where(bad)}. Lower the learning rate "
                f"({learning_rate:g}) or use precision fp32.")
    if len(history) >= 2 and history[-1]["train_loss"] > 3 * history[0]["train_loss"]:
        return (f"Training diverged: training loss rose from {history[0]['train_loss']:.4f} at "
                f"{_where(history[0])} to {history[-1]['train_loss']:.4f}. "
                f"Lower the learning rate ({learning_rate:g}).")
    return None


def _overfitting(history, kept, metrics, eval_counts, learning_rate, *, metric: str) -> str | None:
    span = _overfit_span(history)
    if span is None:
        return None
    best, after = span
    rise = (f"validation loss was lowest at {_where(best)}, {best['loss']:.4f}, and higher in each of the "
            f"{len(after)} evaluations after it (last {after[-1]['loss']:.4f})")
    if _metric_improved(best, after, metric):
        calibration = (f" Its calibration error went from {best['ece']:.4f} to {after[-1]['ece']:.4f}."
                       if "ece" in best and "ece" in after[-1] else "")
        return (f"Growing confident, not overfitting: {rise}, yet {metric} went from {best[metric]:.4f} to "
                f"{after[-1][metric]:.4f}. The model is surer of its answers, wrong ones included (the loss "
                f"punishes those), and still gets better at the task.{calibration}")
    text = (f"Overfitting: {rise}, while training loss fell from {best['train_loss']:.4f} to "
            f"{after[-1]['train_loss']:.4f}.")
    if kept and kept["step"] == best["step"]:
        return text + f" The model kept is that best evaluation, {_where(best)}."
    if kept:
        return text + (f" The model kept is from {_where(kept)} ({_rule(kept)}); with metric_for_best=loss "
                       f"it would be {_where(best)}. Fewer epochs or early_stopping_patience would save the rest.")
    return text + " The final model was kept (no checkpoint selection): train fewer epochs."


def _loss_and_metric_disagree(history: list[dict[str, Any]], kept: dict[str, Any] | None, metric: str) -> str | None:
    """Loss-best and metric-best evaluations differ whenever a model grows confident: say which was kept, and how
    to keep the other (or, when the last evaluation was kept, how to keep either)."""
    if not kept or len(history) < 2 or any(metric not in row for row in history):
        return None
    by_loss = min(history, key=lambda row: row["loss"])
    lower = metric in LOWER_IS_BETTER
    best_value = (min if lower else max)(row[metric] for row in history)
    by_metric = next(row for row in history if row[metric] == best_value)
    if by_loss[metric] == best_value:  # the loss-best evaluation is (one of) the metric-best too
        if kept.get("rule") != "last" or kept["step"] == by_loss["step"] or kept["value"] == best_value:
            return None
        return (f"The last evaluation was kept, {_where(kept)} ({metric} {kept['value']:.4f}); validation loss and "
                f"{metric} were both best at {_where(by_loss)} ({metric} {best_value:.4f}, loss "
                f"{by_loss['loss']:.4f}), which --metric-for-best {metric} keeps.")
    said = (f"Validation loss and {metric} disagree on the best evaluation: loss was lowest at {_where(by_loss)} "
            f"({by_loss['loss']:.4f}, {metric} {by_loss[metric]:.4f}), {metric} {'lowest' if lower else 'highest'} "
            f"at {_where(by_metric)} ({by_metric[metric]:.4f}, loss {by_metric['loss']:.4f}). The model kept is "
            f"{_where(kept)}'s ({_rule(kept)}); ")
    if kept["step"] == by_loss["step"]:
        return said + f"--metric-for-best {metric} keeps {_where(by_metric)}'s."
    if kept["step"] == by_metric["step"]:
        return said + f"--metric-for-best loss keeps {_where(by_loss)}'s."
    return said + f"--metric-for-best {metric} keeps {_where(by_metric)}'s, --metric-for-best loss {_where(by_loss)}'s."


def _no_learning(history, kept, metrics, eval_counts, learning_rate) -> str | None:
    if len(history) < 2 or not eval_counts:
        return None
    majority = max(eval_counts.values()) / max(sum(eval_counts.values()), 1)
    flat = (FLAT * history[0]["train_loss"] <= history[-1]["train_loss"] <= history[0]["train_loss"] / FLAT
            and FLAT * history[0]["loss"] <= history[-1]["loss"] <= history[0]["loss"] / FLAT)
    chance_loss = math.log(len(eval_counts))  # what a model that knows nothing scores
    if flat and (metrics["accuracy"] <= majority + MAJORITY_MARGIN or history[-1]["loss"] >= 0.9 * chance_loss):
        return (f"No learning: training loss went from {history[0]['train_loss']:.4f} to "
                f"{history[-1]['train_loss']:.4f}; accuracy {metrics['accuracy']:.4f} (always answering the most "
                f"common label: {majority:.4f}), validation loss {history[-1]['loss']:.4f} (a model that knows "
                f"nothing: {chance_loss:.4f}). The learning rate ({learning_rate:g}) may be too low, or training "
                f"too short.")
    return None


def _one_class(metrics: dict[str, Any], label_names: list[str]) -> str | None:
    matrix = metrics.get("confusion_matrix")
    if not matrix or len(label_names) < 2:
        return None
    predicted = [sum(row[j] for row in matrix) for j in range(len(label_names))]
    used = [j for j, count in enumerate(predicted) if count]
    if len(used) == 1:
        return (f"One class: the kept model predicts {label_names[used[0]]!r} for all {sum(predicted)} evaluation "
                f"examples. Check the labels and the class balance, or lower the learning rate.")
    return None
