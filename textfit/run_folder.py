"""A finished run's output folder, read in one place: what the model is, and how it was trained.

    folder = RunFolder.load("outputs/imdb")
    folder.config        # the TrainConfig it was trained with, defaults included (None: not written by textfit)
    folder.labels, folder.task, folder.threshold, folder.max_length, folder.truncation, folder.windows
    folder.metrics()     # metrics.json: the kept model's evaluation, findings, data warnings

predict, evaluate, export, serve and report read a folder only through this class, so the defaults of a recipe
are TrainConfig's and nowhere typed out again, and the max_length used for prediction is the one training used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from textfit.config import TrainConfig
from textfit.data import Columns
from textfit.errors import ModelError
from textfit.task import DEFAULT_THRESHOLD, Task, of_config

FALLBACK_MAX_LENGTH = 512  # a folder textfit did not write: the encoders' usual limit


@dataclass
class RunFolder:
    path: Path
    config: TrainConfig | None  # None for a folder textfit did not write (a Trainer's, a hub download)
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]  # in output order
    task: Task
    threshold: float  # multi-label: a label applies from this probability (config.json's multi_label_threshold)
    thresholds: list[float] | None  # multi-label: one per label, tuned on validation (multi_label_thresholds)
    max_length: int  # tokens per text, as in training; never past the tokenizer's own limit
    truncation: str  # what a long text keeps: head | tail | head+tail, as in training
    windows: bool  # read long texts whole (overlapping windows), as training's evaluation did

    @classmethod
    def load(cls, path: str | Path) -> RunFolder:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json); pass a textfit output folder")
        model_config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = cls.read_config(path)
        wanted = config.max_length if config else FALLBACK_MAX_LENGTH
        return cls(path=path, config=config, tokenizer=tokenizer,
                   labels=[model_config.id2label[i] for i in range(model_config.num_labels)],
                   task=of_config(model_config),
                   threshold=float(getattr(model_config, "multi_label_threshold", None) or DEFAULT_THRESHOLD),
                   thresholds=getattr(model_config, "multi_label_thresholds", None),
                   max_length=min(wanted, tokenizer.model_max_length),
                   truncation=config.truncation if config else "head", windows=bool(config and config.windows))

    @staticmethod
    def read_config(path: str | Path) -> TrainConfig | None:
        """The recipe a folder was trained with (recipe.yaml), as a TrainConfig with its defaults filled in."""
        recipe = Path(path) / "recipe.yaml"
        return TrainConfig.from_sources(recipe) if recipe.is_file() else None

    @property
    def columns(self) -> Columns:
        """Where texts and labels were in the training data (for evaluating on data of the same layout)."""
        c = self.config or TrainConfig()
        return Columns(c.text_column, c.label_column, c.text_pair_column, c.label_pattern)

    @property
    def seed(self) -> int:
        return (self.config or TrainConfig()).seed

    def metrics(self) -> dict[str, Any]:
        """metrics.json: the kept model's evaluation ("eval"), which evaluation was kept, findings, warnings."""
        path = self.path / "metrics.json"
        if not path.is_file():
            raise ModelError(f"{self.path}: no metrics.json; pass the output folder of a finished `textfit train` run")
        return json.loads(path.read_text(encoding="utf-8"))

    def card(self) -> str | None:
        path = self.path / "README.md"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def card_metadata(self) -> dict[str, Any]:
        """The card's Hub metadata block (base_model, datasets, model-index ...); empty without a card."""
        card = self.card()
        if not card or not card.startswith("---"):
            return {}
        return yaml.safe_load(card.split("---", 2)[1]) or {}

    def errors_file(self) -> Path | None:
        path = self.path / "errors.jsonl"
        return path if path.is_file() else None
