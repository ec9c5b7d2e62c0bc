"""The evaluation examples the model gets wrong most confidently: where label noise and blind spots show first.

A model that is 99% sure of the other label is either wrong in an interesting way or looking at a mislabelled
example; either is worth a human look. Written as errors.jsonl beside the model, the first few quoted in the card.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textfit.data import Example
from textfit.task import SINGLE, Task

QUOTED_IN_CARD = 3
QUOTE_CHARS = 300


def confident_mistakes(examples: list[Example], probs: np.ndarray, label_names: list[str],
                       task: Task = SINGLE) -> list[dict[str, Any]]:
    """Every misclassified example, the most confident first (single-label runs: one label, one confidence)."""
    if not task.one_label_per_text:
        return []
    predicted = probs.argmax(1)
    wrong = [i for i, ex in enumerate(examples) if predicted[i] != ex.label]
    wrong.sort(key=lambda i: -float(probs[i, predicted[i]]))
    rows = []
    for i in wrong:
        ex = examples[i]
        rows.append({"text": ex.text, **({"text_pair": ex.text_pair} if ex.text_pair else {}),
                     "label": label_names[ex.label], "predicted": label_names[int(predicted[i])],
                     "confidence": round(float(probs[i, predicted[i]]), 4),
                     "where": ex.where, **ex.extra})
    return rows


def card_quotes(mistakes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first few, texts shortened for the card."""
    quotes = []
    for row in mistakes[:QUOTED_IN_CARD]:
        text = " ".join(row["text"].split())
        short = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS].rsplit(" ", 1)[0] + " ..."
        quotes.append({"text": short, "label": row["label"], "predicted": row["predicted"],
                       "confidence": row["confidence"]})
    return quotes
