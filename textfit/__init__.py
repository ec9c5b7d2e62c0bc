"""textfit: fine-tune pretrained transformer encoders into text classifiers, evaluate them honestly,
write their model cards and serve their predictions.

Flow: data/ (read, label) -> batching (tokenize, length-grouped batches) -> train (the loop) ->
metrics (evaluate) -> card/ (model card) -> predict (load and predict).
"""

from textfit.config import TrainConfig
from textfit.predict import Classifier, load

__version__ = "0.1.0"
__all__ = ["Classifier", "TrainConfig", "__version__", "load"]
