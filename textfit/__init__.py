"""textfit: fine-tune pretrained transformer encoders into text classifiers, evaluate them honestly,
write their model cards and serve their predictions.

Flow: data/ (read, label) -> batching (tokenize, length-grouped batches) -> training/ (the recipe: setup, loop,
checkpoints, output folder) -> evaluate -> card/ (model card) -> predict, export, serve/ (use the model).

    import textfit
    result = textfit.train(dataset="reviews.csv", output_dir="outputs/reviews", epochs=2)
    textfit.load(result.output_dir).predict(["What a film!"])

The names below are imported on first use: PyTorch and transformers take seconds to import, and `textfit check`,
`textfit recipe` or `--help` need neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textfit.config import TrainConfig
    from textfit.predict import Classifier, load
    from textfit.training import Result, train

__version__ = "0.1.0"
__all__ = ["Classifier", "Result", "TrainConfig", "__version__", "load", "train"]
_HOMES = {"TrainConfig": "textfit.config", "Classifier": "textfit.predict", "load": "textfit.predict",
          "Result": "textfit.training", "train": "textfit.training"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    try:  # a subpackage not imported yet: textfit.training, textfit.data ...
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":  # the subpackage is there, one of its own imports is missing
            raise
        raise AttributeError(f"module 'textfit' has no attribute {name!r}") from exc
