"""Data: read local files or hub datasets into labelled examples (readers.py reads, dataset.py labels)."""

from textfit.data.dataset import (
    Columns,
    Example,
    TrainingData,
    load_data,
    load_eval_examples,
    load_training_data,
)

__all__ = ["Columns", "Example", "TrainingData", "load_data", "load_eval_examples", "load_training_data"]
