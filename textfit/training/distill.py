"""Distillation: a smaller student learns a fine-tuned teacher's scores, and the labels where there are any.

    textfit distill outputs/imdb --layers 2 --output-dir outputs/imdb-student
    textfit.train(teacher="outputs/imdb", layers=2, dataset=..., output_dir="outputs/imdb-student")

The student is the model the teacher was fine-tuned from, cut to its first `layers` layers: real pretrained
weights and the teacher's own tokenizer (with student_init teacher: the teacher's own first layers and head).
The teacher scores every training text once, before the first step (extra unlabelled texts too), so the loop
costs what fine-tuning the student alone costs. Each training target
row carries the teacher's raw outputs, then the label (NaN for a text without one); `loss` splits them again.
Evaluation, the checkpoint kept and the output folder are FineTune's: the student's folder is an ordinary one,
whose card says whose student it is.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from textfit.batching import Encoded, default_cache_dir, encode
from textfit.compare import in_words, paired_difference
from textfit.data.dataset import read_unlabelled_texts
from textfit.errors import ConfigError
from textfit.run_folder import RunFolder
from textfit.training.evaluation import gathered_logits
from textfit.training.finetune import FineTune
from textfit.training.model import output_layer


@dataclass
class DistillationReport:
    """The student beside its teacher on the same evaluation examples, for the card and metrics.json."""

    teacher: str  # the teacher's folder, as given
    teacher_layers: int
    student_layers: int
    texts: int  # training texts the teacher scored
    unlabelled: int  # of which without labels
    temperature: float
    soft_weight: float
    metric: str  # the task's main metric
    teacher_value: float
    student_value: float
    teacher_ci: list[float] | None
    student_ci: list[float] | None
    agreement_kind: str  # "same answers" (a share) or "mean absolute difference" (regression)
    agreement: float
    examples: int  # evaluation examples both were scored on
    difference: float  # student - teacher in the main metric, on those examples
    difference_ci: list[float]  # its 95% paired bootstrap interval

    def sentence(self) -> str:
        if self.agreement_kind == "same answers":
            agree = f"gives the teacher's answer for {self.agreement:.1%} of them"
        else:
            agree = f"is {self.agreement:.3f} from the teacher's value on average"
        return (f"This is a {self.student_layers}-layer student of `{self.teacher}` ({self.teacher_layers} layers), "
                f"distilled from the teacher's scores on {self.texts:,} training texts ({self.unlabelled:,} of them "
                f"without labels; temperature {self.temperature:g}, {self.soft_weight:.0%} of the loss from the "
                f"teacher). On the same {self.examples:,} evaluation examples it {agree}; {self.metric} "
                f"{self.student_value:.4f} against the teacher's {self.teacher_value:.4f} "
                f"({in_words(self.metric, self.difference, self.difference_ci)}).")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Distill(FineTune):
    """FineTune whose loss also follows a teacher. The teacher is read with the data (its labels and task must be
    the data's), checked against the student's tokenizer, and run once over the training and evaluation texts."""

    def _setup_data(self) -> None:
        super()._setup_data()
        cfg = self.config
        self.teacher = RunFolder.load(cfg.teacher)
        if self.teacher.labels != self.data.label_names or self.teacher.task is not self.task:
            raise ConfigError(f"teacher {cfg.teacher}: a {self.teacher.task} model of labels {self.teacher.labels}; "
                              f"the data {cfg.dataset} is {self.task} with labels {self.data.label_names}")
        if cfg.unlabelled and cfg.text_pair_column:
            raise ConfigError("unlabelled texts are single texts; this run reads sentence pairs")
        self.unlabelled = read_unlabelled_texts(cfg.unlabelled, cfg.text_column) if cfg.unlabelled else []

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.tokenizer.get_vocab() != self.teacher.tokenizer.get_vocab():
            raise ConfigError(f"teacher {self.config.teacher}: its tokenizer is not {self.config.model}'s, so the two "
                              "would read different tokens; pass --model with the model the teacher was trained from")

    def head_is_fresh(self) -> bool:
        """A head taken from the teacher is trained already (a regression teacher's stays behind: see below)."""
        return self.config.student_init != "teacher" or not self.units.identity

    def starting_weights(self, model: PreTrainedModel) -> None:
        """With student_init teacher: the teacher's embeddings, its first N layers and its head, where names and shapes
        match. A regression teacher's head is saved in target units, so the student keeps its own head there."""
        if self.config.student_init != "teacher":
            return
        last = output_layer(model)
        own = model.state_dict()
        head = {f"{name}.{p}" for name, module in model.named_modules() if module is last for p in ("weight", "bias")}
        teacher = load_file(self.teacher.path / "model.safetensors")
        taken = {k: v for k, v in teacher.items() if k in own and own[k].shape == v.shape
                 and (self.units.identity or k not in head)}
        layers = sorted({int(m.group(1)) for k in taken if (m := re.search(r"\.layers?\.(\d+)\.", k))})
        if not layers:
            raise ConfigError(f"teacher {self.config.teacher}: none of its layers fits {self.config.model}'s; "
                              "student_init teacher needs the model the teacher was trained from")
        model.load_state_dict(taken, strict=False)
        if self.is_main:
            print(f"student: starts from the teacher's layers {layers[0]}-{layers[-1]} and {len(taken)} of its "
                  f"{len(own)} tensors in all", flush=True)

    def _setup_batches(self) -> None:
        """The teacher runs here, once: over the training texts (in training_set) and the evaluation set."""
        start = time.perf_counter()
        self.teacher_model = AutoModelForSequenceClassification.from_pretrained(self.teacher.path).eval()
        self.teacher_layers = self.teacher_model.config.num_hidden_layers
        super()._setup_batches()
        self.teacher_eval = self.per_example(self.task.scores(self._teacher_logits(self.eval_set)))  # as evaluate's
        del self.teacher_model
        if self.is_main:
            print(f"teacher: scored {len(self.train_set):,} training and {len(self.data.eval):,} evaluation texts in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)

    def training_set(self) -> Encoded:
        """Labelled and unlabelled texts; each target row is the teacher's outputs (model units), then the label."""
        labelled = self.encode(self.data.train)
        texts = Encoded(labelled.input_ids, labelled.token_type_ids)
        if self.unlabelled:  # single texts only (checked in _setup_data)
            extra = encode(self.tokenizer, self.unlabelled, max_length=self.max_length,
                           truncation=self.config.truncation,
                           cache_dir=default_cache_dir() if self.config.tokenize_cache else None)
            texts = Encoded(labelled.input_ids + extra.input_ids, None)
        teacher = (self._teacher_logits(texts) - self.units.shift) / self.units.scale
        targets = [np.atleast_1d(np.asarray(t, dtype=np.float32)) for t in labelled.labels]
        targets += [np.full(targets[0].size, np.nan, dtype=np.float32)] * len(self.unlabelled)
        texts.labels = [[*row.tolist(), *target.tolist()] for row, target in zip(teacher, targets, strict=True)]
        return texts

    def _teacher_logits(self, data: Encoded) -> np.ndarray:
        with self.accelerator.autocast():
            return gathered_logits(self.teacher_model, data, self.accelerator, self.config.eval_batch_size,
                                   self.tokenizer.pad_token_id)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """soft_weight x the distance to the teacher + the rest x the labels' loss (over the texts that have one)."""
        cfg, outputs = self.config, logits.shape[-1]
        teacher, targets = labels[:, :outputs], labels[:, outputs:]
        soft = self.task.soft_loss(logits, teacher, cfg.temperature)
        known = ~torch.isnan(targets).any(dim=1)
        if cfg.soft_weight == 1 or not bool(known.any()):
            return soft
        hard = self.task.loss(logits[known], self.task.hard_targets(targets[known]), self.class_weights)
        return cfg.soft_weight * soft + (1 - cfg.soft_weight) * hard

    def distillation_report(self, kept_scores: np.ndarray) -> DistillationReport:
        task, names, best = self.task, self.data.label_names, self.state.best_metrics or {}
        labels = [ex.label for ex in self.data.eval]
        teacher_cut = np.asarray(self.teacher.thresholds) if self.teacher.thresholds else self.teacher.threshold
        student_cut = task.thresholds_of(best, names) or task.threshold_of(best) or self.teacher.threshold
        kind, agreement = task.agreement(self.teacher_eval, kept_scores, teacher_cut, np.asarray(student_cut))
        teacher = task.evaluate(self.teacher_eval, labels, names, threshold=self.teacher.threshold,
                                per_label=self.teacher.thresholds)
        metric, cfg = task.main_metric, self.config
        targets = np.asarray(task.targets(labels, len(names)))
        paired = paired_difference(task, kept_scores, self.teacher_eval, targets, np.asarray(student_cut), teacher_cut,
                                   cfg.seed)
        return DistillationReport(
            teacher=str(cfg.teacher), teacher_layers=self.teacher_layers,
            student_layers=self.accelerator.unwrap_model(self.model).config.num_hidden_layers,
            texts=len(self.train_set), unlabelled=len(self.unlabelled), temperature=cfg.temperature,
            soft_weight=cfg.soft_weight, metric=metric, teacher_value=float(teacher[metric]),
            student_value=float(best[metric]), teacher_ci=teacher.get(f"{metric}_ci"),
            student_ci=best.get(f"{metric}_ci"), agreement_kind=kind, agreement=agreement, examples=len(labels),
            difference=paired.difference, difference_ci=list(paired.interval))
