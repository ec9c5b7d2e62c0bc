"""The training configuration: one flat dataclass whose field names are the recipe keys and the CLI flags.

A recipe YAML is plain kwargs of `TrainConfig`; `textfit train` flags override it. The resolved config
is written next to the model as `recipe.yaml`, so `textfit train --config OUT/recipe.yaml` repeats a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from textfit.errors import ConfigError


@dataclass
class TrainConfig:
    # -- what to train on
    model: str = "minilm-l6"  # packaged short name, local HF folder, or hub id
    dataset: str | None = None  # file, folder of split files, aclImdb folder, or hub dataset name
    output_dir: str = "outputs/run"
    text_column: str = "text"
    text_pair_column: str | None = None  # second text column for sentence-pair tasks
    label_column: str = "label"
    label_pattern: str | None = None  # regex whose group, found in label_column, is the label: "_(?P<rating>\d+)$"
    task: str = "auto"  # single | multi-label | regression; auto: a list of labels per text or a fraction says
    train_split: str = "train"
    eval_split: str | None = None  # None: "validation" if present, else carved from train
    validation_fraction: float = 0.1  # share of train held out when no evaluation split exists
    max_train_samples: int | None = None  # seeded random subset, as the reference cards' subset runs
    max_eval_samples: int | None = None
    # -- tokenization
    max_length: int = 256  # IMDB reviews: 256 keeps 56% untruncated at 1/4 the attention cost of 512
    truncation: str = "head"  # what a long text keeps: head | tail | head+tail (first quarter + last 3/4)
    # -- what to train (multilingual-e5-small: 96M of its 118M parameters are the word embedding matrix)
    freeze_embeddings: bool = False  # keep the word embeddings fixed: no gradient or Adam state for them
    trim_vocab: bool = False  # keep only the tokens the training data uses (Unigram tokenizers): smaller, faster
    threshold: float | None = None  # multi-label: a label applies from this probability; unset: tuned on validation
    class_weights: str = "none"  # none | auto (total / (labels x count): rare labels weigh more) | "1,3.5,..."
    # -- optimisation (defaults follow the reference cards: Adam(0.9, 0.999, 1e-8), linear, seed 42)
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler_type: str = "linear"  # linear | constant
    warmup_ratio: float = 0.0  # share of optimizer steps spent warming up
    warmup_steps: int = 0  # overrides warmup_ratio when > 0
    train_batch_size: int = 16  # per optimizer step, across all processes
    eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0  # clipping; 0 disables
    epochs: float = 3
    max_steps: int | None = None  # optimizer steps; overrides epochs
    seed: int = 42
    # -- evaluation, logging, checkpoints
    eval_strategy: str = "epoch"  # epoch | steps | no
    eval_steps: int = 50
    logging_steps: int = 50
    metric_for_best: str = "loss"  # validation loss, or accuracy | f1 | precision | recall ...
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    # -- speed
    precision: str = "auto"  # auto (bf16 where the hardware has it) | fp32 | bf16 | fp16 (GPU)
    group_by_length: bool = True  # length-grouped shuffled batches: far less padding, same randomness
    pad_to_multiple_of: int = 32  # few distinct batch shapes: peak RSS 4.5 -> 2.7 GB at 256 tokens, same speed
    tokenize_cache: bool = True  # keep token ids in ~/.cache/textfit (or $TEXTFIT_CACHE): reruns skip tokenizing
    fast_dropout: bool = True  # CPU dropout masks from 15-bit integers: same p, ~2.5x cheaper (fast_dropout.py)
    # -- run control
    resume: bool = False  # continue from OUTPUT_DIR/checkpoints/last
    overwrite: bool = False  # replace a finished model in OUTPUT_DIR
    keep_checkpoints: bool = False  # keep optimizer state after a successful run
    # -- experiment tracking (tracking.py): settings, losses, evaluations and the card
    report_to: str = "none"  # none | tensorboard (OUTPUT/runs) | mlflow (SQLite store OUTPUT/mlflow.db)
    tracking_uri: str | None = None  # tensorboard: a log folder; mlflow: a tracking URI ($MLFLOW_TRACKING_URI)

    def __post_init__(self) -> None:
        choices = {
            "eval_strategy": ("epoch", "steps", "no"),
            "precision": ("auto", "fp32", "bf16", "fp16"),
            "lr_scheduler_type": ("linear", "constant"),
            "truncation": ("head", "tail", "head+tail"),
            "task": ("auto", "single", "multi-label", "regression"),
            "report_to": ("none", "tensorboard", "mlflow"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r}: choose one of {', '.join(allowed)}")
        positive = ("learning_rate", "train_batch_size", "eval_batch_size", "max_length",
                    "gradient_accumulation_steps", "epochs", "eval_steps", "logging_steps", "pad_to_multiple_of")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be greater than 0")
        for name in ("max_steps", "max_train_samples", "max_eval_samples", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value!r}: must be greater than 0 (or left unset)")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"threshold={self.threshold!r}: must be between 0 and 1 (or left unset: tuned)")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction={self.validation_fraction!r}: must be between 0 and 1")
        if self.train_batch_size % self.gradient_accumulation_steps:
            raise ConfigError(
                f"train_batch_size={self.train_batch_size} is not divisible by "
                f"gradient_accumulation_steps={self.gradient_accumulation_steps}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """YAML recipe (if any) first, then non-None overrides (the CLI flags) on top."""
        values: dict[str, Any] = load_recipe_file(yaml_path) if yaml_path else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


RECIPE_ONLY_KEYS = ("card_model", "description", "search_space")  # keys for documentation and `textfit tune`


def load_recipe_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of settings, got {type(values).__name__}")
    for key in RECIPE_ONLY_KEYS:
        values.pop(key, None)
    text_fields = {f.name for f in fields(TrainConfig) if "bool" not in str(f.type)}
    for key, value in values.items():
        if key in text_fields and isinstance(value, bool):  # YAML 1.1 reads a bare `no` as false
            values[key] = "no" if value is False else "yes"
    return values


def save_recipe(config: TrainConfig, path: Path) -> None:
    from textfit.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
