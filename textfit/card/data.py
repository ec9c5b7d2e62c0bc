"""What a model card says, as one typed object: filled from the finished run, rendered by `render_card`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from textfit.task import SINGLE


@dataclass
class CardData:
    config: dict[str, Any]  # the resolved TrainConfig, as saved in recipe.yaml
    base_model: str  # the hub id the weights came from (or a folder's name)
    dataset: str
    eval_split: str  # where the evaluation examples came from
    label_names: list[str]
    train_counts: dict[str, int]  # examples per label (empty for regression)
    eval_counts: dict[str, int]
    history: list[dict[str, Any]]  # one row per evaluation
    kept: dict[str, Any] | None  # the kept evaluation: {"metric", "value", "step", "epoch"}
    metrics: dict[str, Any]  # every metric of the kept model
    precision: str  # fp32 | bf16 | fp16, as trained
    total_steps: int  # optimizer steps taken
    planned_steps: int  # optimizer steps the settings asked for
    steps_per_epoch: int
    warmup_steps: int
    processes: int
    stopped_early: bool
    architecture: str = "BertForSequenceClassification"
    task: str = SINGLE.name
    train_size: int | None = None
    license: str | None = None
    targets: dict[str, dict[str, float]] | None = None  # regression: the targets' range per split
    vocab_note: str | None = None
    class_weights: list[float] | None = None
    findings: list[str] = field(default_factory=list)
    data_warnings: list[str] = field(default_factory=list)
    pictures: list[tuple[str, str]] = field(default_factory=list)  # (caption, file name)
    mistakes: list[dict[str, Any]] = field(default_factory=list)  # the first few, quoted
    mistake_count: int = 0
    versions: list[tuple[str, str]] | None = None  # framework versions; None: the installed ones
    baseline: str | None = None  # the TF-IDF baseline beside the model, in one sentence
    stop_reason: str | None = None  # why training stopped before its last step, in words
    plan: str | None = None  # what a time budget planned, in one line
    distillation: str | None = None  # a student: of which teacher, and how closely it follows it
    head_learning_rate: float | None = None  # the fresh output layer's own rate; None: the learning rate's

    def as_facts(self) -> dict[str, Any]:
        """A shallow mapping for the template (no deep copy of the history)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
