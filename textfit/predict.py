"""Predictions from a saved output folder: `textfit.load(path).predict(["..."])`.

Batches are sorted by length (padding only to the longest text of each batch) and texts are truncated at
the max_length the model was trained with, so predictions match what evaluation measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from transformers import AutoConfig, AutoTokenizer

from textfit.backends import open_backend, pick_backend
from textfit.batching import collate, encode, encode_windows, sorted_batches
from textfit.errors import ModelError
from textfit.task import DEFAULT_THRESHOLD, scores, task_of


class Classifier:
    """A fine-tuned text classifier loaded from a folder textfit (or the Trainer) wrote."""

    def __init__(self, path: str | Path, *, backend: str = "auto", precision: str = "auto", batch_size: int = 32,
                 max_length: int | None = None, truncation: str | None = None):
        """backend: auto (see backends.pick_backend), torch, onnx or int8; precision, for PyTorch: auto (bf16
        where the hardware runs it natively), bf16 or fp32."""
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ModelError(f"{self.path}: not a model folder (no config.json); pass a textfit output folder")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        config = AutoConfig.from_pretrained(self.path)
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.task = task_of(config)  # single | multi-label | regression, from config.json's problem_type
        self.threshold = float(getattr(config, "multi_label_threshold", None) or DEFAULT_THRESHOLD)
        recipe_path = self.path / "recipe.yaml"
        self.recipe: dict[str, Any] = yaml.safe_load(recipe_path.read_text()) if recipe_path.is_file() else {}
        self.max_length = max_length or self.recipe.get("max_length") or min(self.tokenizer.model_max_length, 512)
        # long texts keep what they kept in training, unless told otherwise
        self.truncation = truncation or self.recipe.get("truncation", "head")
        self.batch_size = batch_size
        backend, self.precision = pick_backend(self.path, backend, precision)
        self.backend = open_backend(self.path, backend, self.precision)

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                      windows: bool = False) -> np.ndarray:
        """Scores, one row per text, columns in label order (`self.labels`): class probabilities (single-label),
        per-label probabilities (multi-label) or the predicted value (regression). With `windows`, a long text is
        read whole, as overlapping windows of max_length tokens whose scores are averaged."""
        if isinstance(texts, str):
            texts = [texts]
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
            per_input[indices] = scores(self.task, self.backend.logits(batch))
        if not windows:
            return per_input
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        np.add.at(out, owners, per_input)
        return out / np.bincount(owners, minlength=len(texts))[:, None]

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                windows: bool = False) -> list[dict[str, Any]]:
        """One dict per text, in the order of `texts`, with "scores" ({label: score}) and, by task, "label" (the
        most probable class), "labels" (every label at or above the threshold, most probable first) or "value"."""
        out = []
        for row in self.predict_proba(texts, pairs, windows):
            pred: dict[str, Any] = {}
            if self.task == "regression":
                pred["value"] = float(row[0])
            elif self.task == "multi-label":
                pred["labels"] = [self.labels[i] for i in np.argsort(-row) if row[i] >= self.threshold]
            else:
                pred["label"] = self.labels[int(row.argmax())]
            pred["scores"] = {name: float(p) for name, p in zip(self.labels, row, strict=True)}
            out.append(pred)
        return out

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 1024,
                       windows: bool = False) -> Iterator[dict[str, Any]]:
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
