"""textfit: fine-tune pretrained transformer encoders into text classifiers, evaluate them honestly,
write their model cards and serve their predictions.

Flow: data/ (read, label) -> batching (tokenize, length-grouped batches) -> training/ (the recipe: setup, loop,
checkpoints, output folder) -> evaluate -> card/ (model card) -> predict, export, serve/ (use the model).

    import textfit
    result = textfit.train(dataset="reviews.csv", output_dir="outputs/reviews", epochs=2)
    textfit.load(result.output_dir).predict(["What a film!"])
"""

from textfit.config import TrainConfig
from textfit.predict import Classifier, load
from textfit.training import Result, train

__version__ = "0.1.0"
__all__ = ["Classifier", "Result", "TrainConfig", "__version__", "load", "train"]
