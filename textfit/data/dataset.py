"""From a dataset argument to labelled examples: find splits, pick columns, map labels, hold out validation.

A dataset argument is one of
- a data file (CSV, TSV, JSON Lines, JSON, Parquet, optionally .gz): the train split;
- a folder of split files (`train.*`, `validation.*` / `dev.*` / `valid.*`, `test.*`), optionally with a
  `labels.json` listing label names in index order (the layout of ../shared/data/*);
- a folder in the original IMDB layout (`train/pos/*.txt`, ...), or the folder above it holding `aclImdb/`;
- a hub dataset name, loaded with `datasets` when the network is there.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textfit.data.readers import WHERE, Row, data_suffix, iter_aclimdb, read_rows
from textfit.errors import ConfigError, DataError
from textfit.task import MULTI_LABEL, REGRESSION, SINGLE, TASK_NAMES, Task
from textfit.task import get as get_task

if TYPE_CHECKING:
    from textfit.config import TrainConfig

SPLIT_ALIASES = {"valid": "validation", "val": "validation", "dev": "validation", "eval": "validation"}


@dataclass
class Example:
    text: str
    label: int | list[int] | float  # a label index | the indices of every label that applies | a target value
    text_pair: str | None = None
    where: str = ""  # "file:line" of the row, for error messages and error analysis
    extra: dict[str, Any] = field(default_factory=dict)  # id, language ... carried through


@dataclass
class DatasetSource:
    """The splits a dataset argument offers, read lazily."""

    name: str
    splits: dict[str, list[Path]]  # local files per split; empty for hub datasets
    label_names: list[str] | None  # from labels.json or the hub's ClassLabel
    hub: Any = None  # datasets.DatasetDict when loaded from the hub

    def split_names(self) -> list[str]:
        return list(self.hub.keys()) if self.hub is not None else list(self.splits)

    def rows(self, split: str) -> list[Row]:
        if split not in self.split_names():
            raise DataError(f"{self.name}: no split {split!r}; available: {', '.join(self.split_names())}")
        if self.hub is not None:
            rows = []
            for index, row in enumerate(self.hub[split]):
                row[WHERE] = f"{self.name}[{split}] row {index}"
                rows.append(row)
            return rows
        rows = []
        for path in self.splits[split]:
            rows.extend(iter_aclimdb(path.parent, path.name) if path.is_dir() else read_rows(path))
        if not rows:
            raise DataError(f"{self.name}: split {split!r} holds no rows")
        return rows


def open_dataset(name: str) -> DatasetSource:
    path = Path(name).expanduser()
    if path.is_file():
        if data_suffix(path) is None:
            raise DataError(f"{path}: unknown data format (use .csv, .tsv, .jsonl, .json or .parquet, optionally .gz)")
        return DatasetSource(name, {"train": [path]}, _label_names_beside(path.parent))
    if path.is_dir():
        if (path / "aclImdb").is_dir():
            path = path / "aclImdb"
        if (path / "train" / "pos").is_dir():
            splits = {s: [path / s] for s in ("train", "test") if (path / s / "pos").is_dir()}
            return DatasetSource(name, splits, ["neg", "pos"])
        splits: dict[str, list[Path]] = {}
        for file in sorted(path.iterdir()):
            if file.is_file() and data_suffix(file) and not file.name.startswith("labels."):
                stem = file.name.split(".")[0].lower()
                splits.setdefault(SPLIT_ALIASES.get(stem, stem), []).append(file)
        if not splits:
            raise DataError(f"{path}: no data files (train.jsonl, train.csv, ...) in this folder")
        return DatasetSource(name, splits, _label_names_beside(path))
    if name.startswith((".", "/", "~")) or data_suffix(path):
        raise DataError(f"{name}: no such file or folder")
    return _open_hub_dataset(name)


def _label_names_beside(folder: Path) -> list[str] | None:
    labels_file = folder / "labels.json"
    if not labels_file.is_file():
        return None
    try:
        names = json.loads(labels_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{labels_file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{labels_file}: expected a JSON list of label names in index order")
    return names


def _open_hub_dataset(name: str) -> DatasetSource:
    try:
        import datasets

        hub = datasets.load_dataset(name)
    except Exception as exc:  # datasets raises many types for offline/missing
        raise DataError(
            f"cannot load dataset {name!r}: it is not a local file or folder, and loading it from the hub "
            f"failed ({type(exc).__name__}: {str(exc)[:200]}). Pass a local file or folder instead."
        ) from None
    label_names = None
    for split in hub.values():
        feature = split.features.get("label")
        if feature is not None and hasattr(feature, "names"):
            label_names = list(feature.names)
        break
    return DatasetSource(name, {}, label_names, hub=hub)


# -- rows to examples ---------------------------------------------------------------------------------


@dataclass
class Columns:
    text: str = "text"
    label: str = "label"
    text_pair: str | None = None
    label_pattern: str | None = None  # a regex whose first group, found in the label column, is the label


def _text_of(row: Row, column: str) -> str:
    if column not in row:
        present = ", ".join(k for k in row if k != WHERE)
        raise DataError(f"{row[WHERE]}: no column {column!r} (columns: {present}); choose one with --text-column")
    text = row[column]
    if not isinstance(text, str):
        raise DataError(f"{row[WHERE]}: column {column!r} holds {text!r}, not text")
    if not text.strip():
        raise DataError(f"{row[WHERE]}: column {column!r} is empty")
    return text


def raw_label(row: Row, column: str) -> str | int:
    """A row's label as given: a name or a whole number (floats that are whole count as numbers)."""
    if column not in row:
        present = ", ".join(k for k in row if k != WHERE)
        raise DataError(f"{row[WHERE]}: no column {column!r} (columns: {present}); choose one with --label-column")
    value = row[column]
    if isinstance(value, bool) or value is None:
        raise DataError(f"{row[WHERE]}: label {value!r} in column {column!r} is not a class label")
    if isinstance(value, float):
        if not value.is_integer():
            raise DataError(f"{row[WHERE]}: label {value!r} in column {column!r} is not a class label")
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise DataError(f"{row[WHERE]}: label in column {column!r} is empty")
        if value.lstrip("-").isdigit():
            value = int(value)
    if not isinstance(value, (int, str)):
        raise DataError(f"{row[WHERE]}: label {value!r} in column {column!r} is not a class label")
    return value


def infer_task(rows: list[Row], column: str, forced: str | Task = "auto") -> Task:
    """single, multi-label or regression: as forced, else read from the labels (a list per text means multi-label,
    a number with a fraction means regression)."""
    if forced != "auto":
        if not isinstance(forced, Task) and forced not in TASK_NAMES:
            raise DataError(f"task={forced!r}: choose one of auto, {', '.join(TASK_NAMES)}")
        return get_task(forced)
    for row in rows:
        if column not in row:
            raw_label(row, column)  # raises, naming the row and the columns present
        value = row[column]
        if isinstance(value, list):
            return MULTI_LABEL
        if isinstance(value, float) and not value.is_integer():
            return REGRESSION
        if isinstance(value, str) and _is_fraction(value.strip()):
            return REGRESSION
    return SINGLE


def _is_fraction(text: str) -> bool:
    try:
        return not float(text).is_integer()
    except ValueError:
        return False


def raw_label_set(row: Row, column: str) -> list[str | int]:
    """A multi-label row's labels: a list (JSON), a JSON list in a text cell, or names separated by commas."""
    if column not in row:
        raw_label(row, column)
    value = row[column]
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{row[WHERE]}: labels {value!r} in column {column!r}: not a JSON list ({exc.msg})") \
                from None
    elif isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    elif not isinstance(value, list):
        value = [value]
    return [raw_label({column: item, WHERE: row[WHERE]}, column) for item in value]


def raw_target(row: Row, column: str) -> float:
    """A regression row's target value."""
    if column not in row:
        raw_label(row, column)
    value = row[column]
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise DataError(f"{row[WHERE]}: target {value!r} in column {column!r} is not a number "
                        "(a regression task needs one number per text)") from None
    if not np.isfinite(number):
        raise DataError(f"{row[WHERE]}: target {value!r} in column {column!r} is not a finite number")
    return number


def infer_label_names(rows: list[Row], column: str, given: list[str] | None, task: Task = SINGLE) -> list[str]:
    """Label names in index order: labels.json when present, else the sorted distinct labels of train.
    A regression model has one output, named after the target column."""
    if not task.has_classes:
        return [column]
    if given:
        return given
    if task.label_sets:
        values = {item for row in rows for item in raw_label_set(row, column)}
    else:
        values = {raw_label(row, column) for row in rows}
    if all(isinstance(v, int) for v in values):
        return [str(v) for v in sorted(values)]
    return sorted(str(v) for v in values)


def to_examples(rows: list[Row], columns: Columns, label_names: list[str], given_names: bool,
                task: Task = SINGLE) -> list[Example]:
    """Rows to examples; a label the model does not know is an error naming the row and the known labels."""
    index_of = {name: i for i, name in enumerate(label_names)}

    def index(value: str | int, row: Row) -> int:
        if isinstance(value, int) and given_names:
            # integers index into labels.json (or the hub's ClassLabel)
            if not 0 <= value < len(label_names):
                raise DataError(
                    f"{row[WHERE]}: label {value} is outside 0..{len(label_names) - 1} ({', '.join(label_names)})"
                )
            return value
        if str(value) in index_of:
            return index_of[str(value)]
        raise DataError(f"{row[WHERE]}: label {value!r} is unknown to the model, which knows {', '.join(label_names)}")

    examples = []
    for row in rows:
        text = _text_of(row, columns.text)
        pair = _text_of(row, columns.text_pair) if columns.text_pair else None
        label: int | list[int] | float
        if not task.has_classes:
            label = raw_target(row, columns.label)
        elif task.label_sets:
            label = sorted({index(value, row) for value in raw_label_set(row, columns.label)})
        else:
            label = index(raw_label(row, columns.label), row)
        extra = {k: row[k] for k in ("id", "language") if k in row}
        examples.append(Example(text, label, pair, row[WHERE], extra))
    return examples


def label_column_of(rows: list[Row], columns: Columns) -> Columns:
    """Where the labels are: the default `label` column, or `labels` when the data has only that (GoEmotions' label
    sets); with a label pattern, a column named after its group (`_(?P<rating>\\d+)$` on IMDb ids: `rating`),
    added to each row."""
    if columns.label == "label" and rows and "label" not in rows[0] and "labels" in rows[0]:
        columns = Columns(columns.text, "labels", columns.text_pair, columns.label_pattern)
    if not columns.label_pattern:
        return columns
    try:
        pattern = re.compile(columns.label_pattern)
    except re.error as exc:
        raise DataError(f"label_pattern={columns.label_pattern!r} is not a regular expression ({exc})") from None
    if pattern.groups < 1:
        raise DataError(f"label_pattern={columns.label_pattern!r} needs a group, (...), around the label")
    derived = next(iter(pattern.groupindex), f"{columns.label}_label")
    for row in rows:
        source = str(raw_label(row, columns.label))
        match = pattern.search(source)
        if match is None:
            raise DataError(f"{row[WHERE]}: label_pattern {columns.label_pattern!r} does not match {source!r} "
                            f"in column {columns.label!r}")
        row[derived] = match.group(1)
    return Columns(columns.text, derived, columns.text_pair)


def seeded_subset(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A random subset of `limit` examples, the same for the same seed (as `.shuffle(seed).select(range(n))`)."""
    if limit is None or limit >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in order[:limit]]


@dataclass
class TrainingData:
    train: list[Example]
    eval: list[Example]
    label_names: list[str]
    eval_split: str  # where the evaluation examples came from, for the card
    dataset_name: str
    task: Task = SINGLE


def load_training_data(
    dataset: str,
    columns: Columns,
    *,
    train_split: str = "train",
    eval_split: str | None = None,
    validation_fraction: float = 0.1,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
    task: str | Task = "auto",
) -> TrainingData:
    source = open_dataset(dataset)
    train_rows = source.rows(train_split)
    given_columns, columns = columns, label_column_of(train_rows, columns)
    task = infer_task(train_rows, columns.label, task)
    named = None if given_columns.label_pattern else source.label_names  # labels.json names the column, not a part
    label_names = infer_label_names(train_rows, columns.label, named, task)
    given = named is not None
    train = to_examples(train_rows, columns, label_names, given, task)
    if eval_split is None and "validation" in source.split_names():
        eval_split = "validation"
    if eval_split is None:
        train, evaluation = _hold_out(train, validation_fraction, seed, dataset)
        eval_name = f"{train_split} ({validation_fraction:.0%} held out, seed {seed})"
    else:
        eval_rows = source.rows(eval_split)
        evaluation = to_examples(eval_rows, label_column_of(eval_rows, given_columns), label_names, given, task)
        eval_name = eval_split
    train = seeded_subset(train, max_train_samples, seed)
    evaluation = seeded_subset(evaluation, max_eval_samples, seed)
    _check_targets(train, task, label_names, dataset)
    return TrainingData(train, evaluation, label_names, eval_name, dataset_name(dataset), task)


def _hold_out(train: list[Example], fraction: float, seed: int,
              dataset: str) -> tuple[list[Example], list[Example]]:
    """A seeded share of train as the validation split, for data that has none."""
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(train) * fraction))
    if len(train) - n_eval < 1:
        raise DataError(f"{dataset}: {len(train)} training row(s) are too few to hold out a validation split")
    held_out = set(order[:n_eval])
    return [ex for i, ex in enumerate(train) if i not in held_out], [train[i] for i in order[:n_eval]]


def _check_targets(train: list[Example], task: Task, label_names: list[str], dataset: str) -> None:
    """Training data a model can learn from: two labels or more, or regression targets that differ."""
    if task.one_label_per_text:
        counts = Counter(ex.label for ex in train)
        if len(counts) < 2:
            only = label_names[next(iter(counts))]
            raise DataError(f"{dataset}: the training data has one label only ({only!r}); "
                            "a classifier needs two or more")
    if not task.has_classes and len({ex.label for ex in train}) < 2:
        raise DataError(f"{dataset}: every training target is {train[0].label}; regression needs different values")


def load_eval_examples(
    dataset: str, split: str | None, columns: Columns, label_names: list[str], max_samples: int | None, seed: int,
    task: Task = SINGLE,
) -> tuple[list[Example], str]:
    """Examples of one split, labelled with a trained model's label names."""
    source = open_dataset(dataset)
    names = source.split_names()
    split = split or next((s for s in ("test", "validation") if s in names), names[0])
    given = source.label_names is not None and task.has_classes and not columns.label_pattern
    if given and source.label_names != label_names:
        raise DataError(
            f"{dataset}: its labels.json lists {source.label_names}, the model was trained on {label_names}"
        )
    rows = source.rows(split)
    examples = to_examples(rows, label_column_of(rows, columns), label_names, given, task)
    return seeded_subset(examples, max_samples, seed), split


def read_unlabelled_texts(path: str | Path, column: str = "text") -> list[str]:
    """Texts without labels (for a teacher to score): a .txt file holds one per line (empty lines skipped);
    a data file holds them in `column`, and any label column is ignored."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        try:
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        texts = [_text_of(row, column) for row in read_rows(path)]
    if not texts:
        raise DataError(f"{path}: no texts in it")
    return texts


def dataset_name(dataset: str) -> str:
    """A short name for the card: the folder or file stem for local data, the hub id otherwise."""
    path = Path(dataset)
    if path.is_dir():
        return path.parent.name if path.name == "aclImdb" else path.resolve().name
    if path.is_file():
        return path.name.split(".")[0]
    return dataset


def load_data(cfg: TrainConfig) -> TrainingData:
    """The training and evaluation examples a config names (what `train` and `textfit check` both read)."""
    if not cfg.dataset:
        raise ConfigError("dataset is required (--dataset or `dataset:` in the recipe)")
    return load_training_data(
        cfg.dataset, Columns(cfg.text_column, cfg.label_column, cfg.text_pair_column, cfg.label_pattern),
        train_split=cfg.train_split, eval_split=cfg.eval_split, validation_fraction=cfg.validation_fraction,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples, seed=cfg.seed,
        task=cfg.task)
