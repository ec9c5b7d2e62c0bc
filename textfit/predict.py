"""Predictions from a saved output folder: `textfit.load(path).predict(["..."])`.

Batches are sorted by length (padding only to the longest text of each batch) and texts are truncated at
the max_length the model was trained with, so predictions match what evaluation measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textfit.backends import open_backend, pick_backend
from textfit.batching import average_windows, collate, encode, encode_windows, sorted_batches
from textfit.errors import ModelError
from textfit.run_folder import RunFolder


class Classifier:
    """A fine-tuned text classifier loaded from a folder textfit (or the Trainer) wrote."""

    def __init__(self, path: str | Path, *, backend: str = "auto", precision: str = "auto", batch_size: int = 32,
                 max_length: int | None = None, truncation: str | None = None, per_label_thresholds: bool = True,
                 windows: bool | None = None):
        """backend: auto (see backends.pick_backend), torch, onnx or int8; precision, for PyTorch: auto (bf16
        where the hardware runs it natively), bf16 or fp32. Multi-label: each label's own threshold, as tuned in
        training, unless per_label_thresholds=False (then the one global threshold). windows: read long texts
        whole by default (unset: as the model was trained to be read, its `windows` setting)."""
        self.folder = RunFolder.load(path)
        self.path, self.tokenizer = self.folder.path, self.folder.tokenizer
        self.labels, self.task, self.threshold = self.folder.labels, self.folder.task, self.folder.threshold
        self.thresholds = self.folder.thresholds if per_label_thresholds else None  # per label, or None
        # long texts are cut where and how training cut them, unless told otherwise
        self.max_length = max_length or self.folder.max_length
        self.truncation = truncation or self.folder.truncation
        self.windows = self.folder.windows if windows is None else windows
        self.batch_size = batch_size
        backend, self.precision = pick_backend(self.path, backend, precision)
        self.backend = open_backend(self.path, backend, self.precision)

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                      windows: bool | None = None) -> np.ndarray:
        """Scores, one row per text, columns in label order (`self.labels`): class probabilities (single-label),
        per-label probabilities (multi-label) or the predicted value (regression). With `windows`, a long text is
        read whole, as overlapping windows of max_length tokens whose scores are averaged (unset: the model's
        own setting, self.windows; sentence pairs are always truncated)."""
        if isinstance(texts, str):
            texts = [texts]
        if windows is None:
            windows = self.windows and pairs is None
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if windows and pairs is not None:
            raise ModelError("windows are for single texts; sentence pairs are truncated at max_length")
        if windows:
            data, owners = encode_windows(self.tokenizer, texts, max_length=self.max_length)
        else:
            data, owners = encode(self.tokenizer, texts, pairs, max_length=self.max_length,
                                  truncation=self.truncation), list(range(len(texts)))
        per_input = np.zeros((len(data), len(self.labels)), dtype=np.float32)
        for indices in sorted_batches(data.lengths(), self.batch_size):
            batch = {k: v.numpy() for k, v in collate(data, indices, self.tokenizer.pad_token_id).items()}
            per_input[indices] = self.task.scores(self.backend.logits(batch))
        return average_windows(per_input, owners, len(texts)) if windows else per_input

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                windows: bool | None = None) -> list[dict[str, Any]]:
        """One dict per text, in the order of `texts`, with "scores" ({label: score}) and, by task, "label" (the
        most probable class), "labels" (every label at or above the threshold, most probable first) or "value"."""
        out = []
        for row in self.predict_proba(texts, pairs, windows):
            out.append({self.task.answer_key: self.task.answer(row, self.labels, self.decision_threshold),
                        "scores": {name: float(p) for name, p in zip(self.labels, row, strict=True)}})
        return out

    @property
    def decision_threshold(self) -> float | np.ndarray:
        """Where a multi-label model says yes: each label's own threshold, or the global one."""
        return np.asarray(self.thresholds, dtype=float) if self.thresholds is not None else self.threshold

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 1024,
                       windows: bool | None = None) -> Iterator[dict[str, Any]]:
        """Predictions for any number of texts in constant memory, chunk by chunk, in input order."""
        chunk: list[str] = []
        for text in texts:
            chunk.append(text)
            if len(chunk) == chunk_size:
                yield from self.predict(chunk, windows=windows)
                chunk = []
        if chunk:
            yield from self.predict(chunk, windows=windows)


def load(path: str | Path, **kwargs: Any) -> Classifier:
    """Load a fine-tuned classifier folder for prediction."""
    return Classifier(path, **kwargs)
