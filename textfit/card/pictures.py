"""The card's pictures: loss and metric curves over training, the confusion matrix, a reliability diagram.

PNG files beside the model (matplotlib, no display needed), linked from the card, so the overfitting the
history shows is seen at a glance rather than read off a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CURVES, CONFUSION, RELIABILITY = "training_curves.png", "confusion_matrix.png", "reliability.png"


def write_pictures(folder: Path, history: list[dict[str, Any]], kept: dict[str, Any] | None,
                   metrics: dict[str, Any], label_names: list[str]) -> list[tuple[str, str]]:
    """Draw what the run has data for; returns (caption, file name) pairs in the order the card shows them."""
    import matplotlib

    matplotlib.use("Agg")
    pictures = []
    if history:
        _curves(folder / CURVES, history, kept)
        pictures.append(("Loss and metrics over training", CURVES))
    if metrics.get("confusion_matrix"):
        _confusion(folder / CONFUSION, metrics["confusion_matrix"], label_names)
        pictures.append(("Confusion matrix", CONFUSION))
    if metrics.get("reliability"):
        _reliability(folder / RELIABILITY, metrics["reliability"], metrics.get("ece", 0))
        pictures.append(("Reliability diagram", RELIABILITY))
    return pictures


def _curves(path: Path, history: list[dict[str, Any]], kept: dict[str, Any] | None) -> None:
    import matplotlib.pyplot as plt

    fig, (losses, scores) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = [row["step"] for row in history]
    losses.plot(steps, [row["train_loss"] for row in history], "o-", label="training loss")
    losses.plot(steps, [row["loss"] for row in history], "o-", label="validation loss")
    for key in ("accuracy", "f1", "f1_micro", "f1_macro", "spearman"):
        if key in history[0]:
            scores.plot(steps, [row[key] for row in history], "o-", label=f"validation {key}")
    for axis, title in ((losses, "Loss"), (scores, "Validation metrics")):
        if kept:
            axis.axvline(kept["step"], color="grey", linestyle="--", label=f"kept (step {kept['step']})")
        axis.set_xlabel("optimizer step")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    _save(fig, path)


def _confusion(path: Path, matrix: list[list[int]], label_names: list[str]) -> None:
    import matplotlib.pyplot as plt

    size = max(3.5, 0.6 * len(label_names) + 2)
    fig, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axis.text(j, i, str(count), ha="center", va="center",
                      color="white" if count > peak / 2 else "black", fontsize=9)
    axis.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    axis.set_yticks(range(len(label_names)), label_names)
    axis.set_xlabel("predicted label")
    axis.set_ylabel("true label")
    axis.set_title("Confusion matrix (kept model)")
    _save(fig, path)


def _reliability(path: Path, bins: list[dict[str, float]], ece: float) -> None:
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(4.5, 4.2))
    axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    axis.bar([b["confidence"] for b in bins], [b["accuracy"] for b in bins], width=0.08, alpha=0.7,
             label="accuracy per confidence bin")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (highest probability)")
    axis.set_ylabel("accuracy")
    axis.set_title(f"Reliability (ECE {ece:.3f})")
    axis.legend(fontsize=8, loc="upper left")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
