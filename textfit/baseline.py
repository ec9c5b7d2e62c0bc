"""Was fine-tuning worth it? A bag-of-words model on the same training split, scored on the same evaluation set.

TF-IDF of word 1-2-grams and character 2-5-grams, then logistic regression (one-vs-rest for multi-label, ridge
for regression): the classical anchor (NB-SVM reaches 0.9122 on full IMDB), fitted in seconds on a CPU. The
difference in the task's main metric gets a paired bootstrap interval, resampling the same evaluation examples
for both models, so "better" means better beyond the luck of this evaluation set.

It needs only the texts, so a training run fits it in a background process from the start (BaselineJob), on the
core that importing PyTorch and loading the model leave idle, rather than adding its seconds (8.9 for 3,000 IMDB
reviews) to the end of the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from textfit.compare import in_words, paired_difference
from textfit.data import Example
from textfit.metrics import LOWER_IS_BETTER, best_threshold, per_label_thresholds
from textfit.task import Task

if TYPE_CHECKING:
    from textfit.config import TrainConfig

NAME = "TF-IDF + logistic regression"
GRACE_SECONDS = 5.0  # how long a finished run waits for a background job still at work, before fitting it itself


@dataclass
class BaselineComparison:
    name: str  # what the baseline is
    metric: str  # the task's main metric
    baseline: float  # the baseline's value on the evaluation set
    model: float  # the fine-tuned model's value on the same examples
    difference: float  # model - baseline
    interval: tuple[float, float]  # 95% paired bootstrap interval of the difference
    seconds: float  # fitting and scoring the baseline (CPU seconds when it ran in the background, beside training)
    examples: int  # evaluation examples both were scored on
    train_examples: int
    background: bool = False  # fitted in a BaselineJob while the model trained, not after it

    @property
    def model_is_better(self) -> bool:
        """Beyond the interval: the whole interval on the better side of zero."""
        lo, hi = self.interval
        return hi < 0 if self.metric in LOWER_IS_BETTER else lo > 0

    def sentence(self) -> str:
        return (f"A {self.name} baseline fitted on the same {self.train_examples:,} training examples reaches "
                f"{self.metric} {self.baseline:.4f} on the same {self.examples:,} evaluation examples; the fine-tuned "
                f"model {self.model:.4f} ({in_words(self.metric, self.difference, self.interval)}).")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "model_is_better": self.model_is_better}


def _texts(examples: list[Example]) -> list[str]:
    return [ex.text if not ex.text_pair else f"{ex.text} \n {ex.text_pair}" for ex in examples]


def _features():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=200_000,
                                  sublinear_tf=True)),
    ])


def fit_baseline(train: list[Example], task: Task, n_labels: int,
                 seed: int = 42) -> Callable[[list[Example]], np.ndarray]:
    """Fit the baseline on `train`; returns what scores examples in the task's shape (probabilities, or values)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    features = _features()
    x_train = features.fit_transform(_texts(train))
    labels = [ex.label for ex in train]
    if not task.has_classes:
        ridge = Ridge(alpha=1.0).fit(x_train, np.asarray(labels, dtype=float))
        return lambda examples: ridge.predict(features.transform(_texts(examples)))[:, None]
    y = np.asarray(task.targets(labels, n_labels)) if task.label_sets else np.asarray(labels)
    present = y.sum(0) > 0 if task.label_sets else np.unique(y)  # a label absent from train scores 0
    model = LogisticRegression(max_iter=1000, C=4.0, random_state=seed)
    model = OneVsRestClassifier(model).fit(x_train, y[:, present]) if task.label_sets else model.fit(x_train, y)

    def score(examples: list[Example]) -> np.ndarray:
        scores = np.zeros((len(examples), n_labels))
        scores[:, present] = model.predict_proba(features.transform(_texts(examples)))
        return scores

    return score


def baseline_scores(train: list[Example], evaluation: list[Example], task: Task, n_labels: int,
                    seed: int = 42) -> np.ndarray:
    """The baseline's scores on `evaluation`, in the task's shape."""
    return fit_baseline(train, task, n_labels, seed)(evaluation)


class BaselineJob:
    """The baseline's scores, computed in a forked process at the lowest priority, on the core that the run's
    single-threaded stretches leave idle (importing PyTorch, loading the model, writing the folder).

    `textfit train` starts it before PyTorch is even imported (`from_config`: the child reads the data itself);
    a run started from Python starts it once the data is read, before the tokenizer or PyTorch has started a
    thread (`for_examples`, FineTune._setup_data), so the child inherits none. It runs scikit-learn on one thread
    (OpenMP in a forked child can wait forever on a thread pool its parent used). The child sends a fingerprint
    of the examples it fitted and scored with its scores; the run takes them only for the very same examples.
    Where fork is not the platform's way (Windows, macOS), or the job fails or is not done GRACE_SECONDS after
    the run, the run fits the baseline itself, as before: result() is then None."""

    def __init__(self, load: Callable[[], tuple[list[Example], list[Example], Task, int, int]]):
        self._process = None
        self._result: tuple[np.ndarray, float, str] | None = None
        if not sys.platform.startswith("linux"):
            return
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_fit_in_background, args=(send, load), daemon=True)
        sys.stdout.flush()  # or the child's exit would print again what the parent had not flushed yet
        sys.stderr.flush()
        self._process.start()
        send.close()
        self._sent: tuple[np.ndarray, float, str] | None = None
        self._received = threading.Event()  # set once _sent holds what the job sent, or the job is gone
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        """Take the scores as soon as the job sends them, so that it exits and gives its memory back: scores for
        25,000 reviews are more than a pipe holds, and unread they kept the finished job alive until the end."""
        with contextlib.suppress(EOFError, OSError):  # EOF: the job died, or was killed, sending nothing
            self._sent = self._receive.recv()
        self._received.set()

    @classmethod
    def for_examples(cls, train: list[Example], evaluation: list[Example], task: Task, n_labels: int,
                     seed: int) -> BaselineJob:
        return cls(lambda: (train, evaluation, task, n_labels, seed))

    @staticmethod
    def wanted(config: TrainConfig, is_main: bool) -> bool:
        """Whether a run fits the baseline in the background: not with baseline none; not with a time budget,
        whose plan cuts the data after its probe (that run fits it at the end, on the data it trained on); only
        in the first process of a distributed run."""
        return config.baseline != "none" and not config.time_budget and is_main

    @classmethod
    def from_config(cls, config: TrainConfig) -> BaselineJob:
        """For a TrainConfig: the child reads the data as the run will (textfit.data.load_data)."""
        def load():
            from textfit.data import load_data

            data = load_data(config)
            return data.train, data.eval, data.task, len(data.label_names), config.seed

        return cls(load)

    def result(self, train: list[Example], evaluation: list[Example],
               wait: float = GRACE_SECONDS) -> tuple[np.ndarray, float] | None:
        """(scores on `evaluation`, CPU seconds), if the job is done within `wait` seconds and it fitted these very
        training examples and scored these very evaluation examples."""
        if self._process is not None:
            # the job has had the whole run; one still at work was starved by a busy machine (at nice 19 it gets
            # a sliver of a core beside other work, and an unprivileged process cannot raise it back): waiting for
            # it could take minutes, fitting it here takes what it took before the job existed
            if self._received.wait(wait):  # what arrives later is not taken: the run has fitted its own by then
                self._result = self._sent
            self._process.kill()
            self._process.join()
            self._process = None
        if self._result is None or self._result[2] != fingerprint(train, evaluation):
            return None
        return self._result[0], self._result[1]


def fingerprint(train: list[Example], evaluation: list[Example]) -> str:
    """A digest of the examples' texts and labels, in order: the same examples give the same digest."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (train, evaluation):
        for ex in part:
            digest.update(f"{ex.text}\x1f{ex.text_pair}\x1f{ex.label!r}\x1e".encode())
        digest.update(b"\x1d")
    return digest.hexdigest()


def _fit_in_background(send, load: Callable[[], tuple[list[Example], list[Example], Task, int, int]]) -> None:
    from threadpoolctl import threadpool_limits

    os.nice(19)  # only the cycles training leaves idle
    start = time.process_time()
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            train, evaluation, task, n_labels, seed = load()  # what it prints, the run prints itself
            with threadpool_limits(1):
                scores = baseline_scores(train, evaluation, task, n_labels, seed)
        send.send((scores, round(time.process_time() - start, 2), fingerprint(train, evaluation)))
    except Exception:  # the run then fits it itself, where the error is seen
        pass
    finally:
        send.close()


def compare(task: Task, model_scores: np.ndarray, train: list[Example], evaluation: list[Example],
            label_names: list[str], threshold: float | np.ndarray, seed: int = 42,
            computed: tuple[np.ndarray, float] | None = None) -> BaselineComparison:
    """Fit the baseline (unless `computed` brings its scores and seconds: a BaselineJob's), score both on the
    evaluation examples, and bootstrap the paired difference."""
    start = time.perf_counter()
    theirs = computed[0] if computed else baseline_scores(train, evaluation, task, len(label_names), seed)
    seconds = computed[1] if computed else time.perf_counter() - start
    targets = np.asarray(task.targets([ex.label for ex in evaluation], len(label_names)))
    # multi-label: the baseline's thresholds are tuned on this set as the fine-tuned model's were (global, then
    # per label with enough positives)
    their_threshold: float | np.ndarray = threshold
    if task.label_sets:
        their_threshold = np.asarray(per_label_thresholds(targets, theirs, best_threshold(targets, theirs)))
    paired = paired_difference(task, np.asarray(model_scores), theirs, targets, threshold, their_threshold, seed)
    return BaselineComparison(NAME if task.has_classes else "TF-IDF + ridge regression", task.main_metric,
                              paired.theirs, paired.ours, paired.difference, paired.interval, round(seconds, 2),
                              len(evaluation), len(train), background=computed is not None)
