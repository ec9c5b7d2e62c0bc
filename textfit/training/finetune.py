"""Fine-tune a pretrained encoder into a text classifier: the recipe, as one class.

    run = FineTune(TrainConfig(dataset="examples/data/imdb_sample", output_dir="outputs/imdb"))
    run.setup()           # data, model, optimizer, schedule on an Accelerator (and the checkpoint, with resume)
    run.train()           # the loop: evaluation every epoch or N steps, the best checkpoint kept, early stopping
    result = run.save()   # the output folder that `transformers.pipeline` loads as it is

train_batch_size is the number of examples per optimizer step over all processes and accumulation micro-steps,
so a recipe learns the same thing on one process or many (torchrun or accelerate launch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from textfit import tracking
from textfit.baseline import BaselineJob
from textfit.batching import (
    Encoded,
    average_windows,
    collate,
    default_cache_dir,
    encode,
    encode_windows,
    length_grouped_batches,
)
from textfit.config import TrainConfig
from textfit.data import Example, TrainingData, load_data
from textfit.data.check import check_data
from textfit.data.dataset import seeded_subset
from textfit.errors import ConfigError, TrainingDiverged
from textfit.io import atomic_write_json
from textfit.metrics import is_improvement, scalar_metrics
from textfit.mistakes import confident_mistakes
from textfit.models import resolve_model
from textfit.precision import resolve_precision
from textfit.training.budget import (
    FINAL_EVAL_FLOOR,
    MAX_EPOCHS,
    REPLAN_AFTER,
    Deadline,
    Plan,
    epochs_for,
    make_plan,
    parse_budget,
    probe,
    refit,
    replan,
)
from textfit.training.callbacks import Callback, Console, StepReport, Tracking
from textfit.training.checkpoints import check_output_dir, load_last, save_best, save_last, saved_settings
from textfit.training.evaluation import gathered_logits
from textfit.training.model import (
    enable_fast_dropout,
    head_in_target_units,
    keep_first_layers,
    load_model,
    set_mode,
)
from textfit.training.optim import build_optimizer, build_schedule, class_weights, retarget
from textfit.training.output import Result, result_elsewhere, write_output_folder
from textfit.training.state import TrainState
from textfit.vocab_trim import trim_vocabulary

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from textfit.training.distill import DistillationReport

EXPLODED_LOSS = 10  # validation loss above 10x a know-nothing model's: the run has diverged, stop it


@dataclass
class Pace:
    """Examples and real tokens trained on since the loop started (all processes), for the rates shown."""

    start: float = field(default_factory=time.perf_counter)
    samples: int = 0
    tokens: int = 0

    def rates(self, elapsed: float | None = None) -> dict[str, float]:
        elapsed = elapsed or time.perf_counter() - self.start
        return {"samples_per_second": self.samples / elapsed, "tokens_per_second": self.tokens / elapsed}


class FineTune:
    """A fine-tuning run. Raises ConfigError/DataError/ModelError with a message naming what is wrong, and
    TrainingDiverged when the loss stops being a number before any evaluation could be kept."""

    def __init__(self, config: TrainConfig, callbacks: list[Callback] | None = None, *,
                 fixed: Collection[str] = (), started: float | None = None, deadline: float | None = None,
                 early_baseline: BaselineJob | None = None):
        """fixed: settings given explicitly (flags, API keywords), which a time budget's plan keeps as they are;
        started: when the user's wait began (time.time(); the command's start), which a time budget counts from;
        deadline: a time.time() by which to have finished, without a plan (a trial of `tune --time-budget`);
        early_baseline: the baseline job `textfit train` started before importing PyTorch."""
        self.config = config
        self.early_baseline = early_baseline
        self.fixed, self.started, self.deadline_at = set(fixed), started or time.time(), deadline
        self.plan: Plan | None = None  # what a time budget planned
        self.replan_at: int | None = None  # the step after which a fresh plan fits its step count to real steps
        self.refit_due = False  # a fresh plan fits its step count again at its first evaluation (budget.refit)
        self.deadline: Deadline | None = None  # when the folder must be written by, with a time budget
        self.callbacks = [Console(), Tracking()] if callbacks is None else callbacks
        self.checkpoints = Path(config.output_dir) / "checkpoints"
        self.state = TrainState()
        self.data_warnings: list[str] = []  # what `textfit check` says about the data, kept for the card
        self.baseline_job: BaselineJob | None = None  # the TF-IDF baseline, fitted beside training
        self.vocab_note: str | None = None  # what trimming the vocabulary did, for the card
        self.eval_probs = None  # the last evaluation's scores, for errors.jsonl
        self.train_seconds = 0.0  # wall time of the loop (evaluations included), set by train()
        self.throughput = {"samples_per_second": 0.0, "tokens_per_second": 0.0}

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Everything before the first step, in the order it happens (the seed makes the order matter)."""
        self._setup_accelerator()
        self._setup_data()
        self._setup_model()
        self._setup_budget()
        self._setup_batches()
        self._setup_optimizer()
        self._prepare()

    def _setup_accelerator(self) -> None:
        cfg = self.config
        self.precision, self.precision_note = resolve_precision(cfg.precision)
        _forget_previous_precision()
        self.accelerator = Accelerator(mixed_precision={"fp32": "no"}.get(self.precision, self.precision),
                                       cpu=not torch.cuda.is_available(),
                                       **tracking.accelerator_kwargs(cfg.report_to, cfg.output_dir, cfg.tracking_uri))
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        check_output_dir(cfg, self.accelerator)
        set_seed(cfg.seed)

    def _setup_data(self) -> None:
        cfg = self.config
        self.data: TrainingData = load_data(cfg)
        self.task = self.data.task
        self.task.check_settings(cfg.class_weights, cfg.threshold)
        train_labels = [ex.label for ex in self.data.train]
        self.class_weights = class_weights(cfg.class_weights, train_labels, self.data.label_names,
                                           self.accelerator.device)
        self.units = self.task.target_units(train_labels)
        self.baseline_job = self._start_baseline()

    def _start_baseline(self) -> BaselineJob | None:
        """The TF-IDF baseline in the background from here, unless the command started it already (baseline.py)."""
        cfg, data = self.config, self.data
        if not BaselineJob.wanted(cfg, self.is_main):
            return None
        return self.early_baseline or BaselineJob.for_examples(data.train, data.eval, self.task,
                                                               len(data.label_names), cfg.seed)

    def _setup_model(self) -> None:
        cfg, names = self.config, self.data.label_names
        self.source = resolve_model(cfg.model)
        self.tokenizer, model = load_model(self.source, cfg.model, self.task, names)
        if cfg.layers:
            keep_first_layers(model, cfg.layers)
        self.task.init_head(model, [ex.label for ex in self.data.train], len(names))
        self.starting_weights(model)
        if cfg.trim_vocab:
            texts = [ex.text for ex in self.data.train] + [ex.text_pair for ex in self.data.train if ex.text_pair]
            self.tokenizer, model, self.vocab_note = trim_vocabulary(self.tokenizer, model, texts)
            print(self.vocab_note, flush=True)
        if cfg.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if self.is_main:  # what `textfit check` would say, before hours go into it
            self.data_warnings = check_data(self.data.train, self.data.eval, names, tokenizer=self.tokenizer,
                                            max_length=cfg.max_length, seed=cfg.seed, task=self.task).warnings
            for warning in self.data_warnings:
                print(f"data warning: {warning}", flush=True)
        self.fast_dropout = cfg.fast_dropout and not torch.cuda.is_available()
        if self.fast_dropout:
            enable_fast_dropout(model)
        self.model = model

    def starting_weights(self, model: PreTrainedModel) -> None:
        """Weights to start from other than the pretrained ones (Distill: the teacher's lower layers)."""

    def _setup_budget(self) -> None:
        """With a time budget: probe on this data, plan what the flags left open, set the deadline (budget.py).
        The saved recipe holds the plan (and no budget), so it repeats the run without a probe."""
        cfg = self.config
        if not cfg.time_budget:
            self.deadline = Deadline(self.deadline_at, eval_seconds=0.0) if self.deadline_at else None
            return
        budget, saved = parse_budget(cfg.time_budget), self.checkpoints / "plan.json"
        plan = None
        resumed = cfg.resume and saved.is_file()
        if resumed:  # the interrupted run's plan (re-planned, if it got that far) goes on; the budget counts from now
            plan = Plan(**json.loads(saved.read_text()))
        elif self.is_main:  # one probe, one plan: every process trains the same one
            plan = make_plan(self, budget, time.time() - self.started, probe(self), self.fixed)
            atomic_write_json(saved, dataclasses.asdict(plan))
        self.plan = broadcast(plan, self.world)
        # before the first evaluation and checkpoint, so that every checkpoint holds the step count the run ends at
        first_eval = self.plan.settings["eval_steps"] if self.plan.settings["eval_strategy"] == "steps" else 0
        self.replan_at = min(REPLAN_AFTER, first_eval - 1) if first_eval else REPLAN_AFTER
        adjustable = not resumed and not {"epochs", "max_steps"} & self.fixed  # else the flags fixed the length
        if not adjustable or self.replan_at < 3:
            self.replan_at = None  # too few steps to time, or nothing to fit
        self.refit_due = adjustable and self.plan.settings["eval_strategy"] == "steps"
        settings = {**self.plan.settings, **self.plan.replanned_settings}
        if resumed:  # the checkpoint's own step count: plan.json may hold a fit made after it was written
            settings |= saved_settings(self.checkpoints, self.plan.replanned_settings)
        self.config = dataclasses.replace(cfg, **settings, time_budget=None)
        self.data.train = seeded_subset(self.data.train, self.config.max_train_samples, cfg.seed)
        self.data.eval = seeded_subset(self.data.eval, self.config.max_eval_samples, cfg.seed)
        self.deadline = Deadline(self.started + budget, self.plan.eval_seconds, self.plan.write_seconds,
                                 self.plan.step_seconds)
        if self.is_main:
            print(self.plan.line(), flush=True)

    def _setup_batches(self) -> None:
        cfg = self.config
        self.max_length = min(cfg.max_length, self.tokenizer.model_max_length)  # the model's limit wins
        self.train_set, self.eval_set = self.training_set(), self.evaluation_set(self.data.eval)
        self.micro_batch = cfg.train_batch_size // cfg.gradient_accumulation_steps
        if self.micro_batch < self.world:
            raise ConfigError(f"train_batch_size={cfg.train_batch_size} is smaller than "
                              f"{self.world} processes x {cfg.gradient_accumulation_steps} accumulation steps")
        micro_steps = math.ceil(len(self.train_set) / self.micro_batch)
        self.steps_per_epoch = math.ceil(micro_steps / cfg.gradient_accumulation_steps)
        self.total_steps = cfg.max_steps or math.ceil(cfg.epochs * self.steps_per_epoch)

    def _setup_optimizer(self) -> None:
        self.optimizer = build_optimizer(self.model, self.config, fresh_head=self.head_is_fresh())
        self.scheduler, self.warmup_steps = build_schedule(self.optimizer, self.config, self.total_steps)

    def _prepare(self) -> None:
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)
        if self.config.resume:
            self.state = load_last(self.accelerator, self.checkpoints, self.config)
            if self.is_main:
                print(f"resuming from {self.checkpoints / 'last'} at step {self.state.global_step} "
                      f"of {self.total_steps}")

    def head_is_fresh(self) -> bool:
        """Whether the output layer starts random (then it learns at head_learning_rate)."""
        return True

    def training_set(self) -> Encoded:
        """What the loop trains on: the training examples and their targets (Distill adds the teacher's scores)."""
        return self.encode(self.data.train)

    def encode(self, examples: list[Example]) -> Encoded:
        labels = self.task.targets([ex.label for ex in examples], len(self.data.label_names))
        pairs = [ex.text_pair for ex in examples] if self.config.text_pair_column else None
        return encode(self.tokenizer, [ex.text for ex in examples], pairs, max_length=self.max_length,
                      labels=self.units.to_model(labels), truncation=self.config.truncation,
                      cache_dir=default_cache_dir() if self.config.tokenize_cache else None)

    def evaluation_set(self, examples: list[Example]) -> Encoded:
        """What each evaluation scores: the examples as trained (truncated), or, with windows, every text whole in
        overlapping windows whose scores per_example() averages back to one row a text."""
        self.eval_owners = None
        if not self.config.windows:
            return self.encode(examples)
        data, self.eval_owners = encode_windows(self.tokenizer, [ex.text for ex in examples],
                                                max_length=self.max_length)
        return data

    def per_example(self, scores: np.ndarray) -> np.ndarray:
        """Scores over the evaluation set, one row per example (the mean of its windows, with windows)."""
        if self.eval_owners is None:
            return scores
        return average_windows(scores, self.eval_owners, len(self.data.eval))

    # ------------------------------------------------------------------ train
    def train(self) -> TrainState:
        """The loop: a step, then whatever is due (a log line, an evaluation and its checkpoints)."""
        cfg, st = self.config, self.state
        self._emit("on_train_begin")
        lengths, pace, accum = self.train_set.lengths(), Pace(), cfg.gradient_accumulation_steps
        while st.global_step < self.total_steps and not st.stopped_early:
            batches = length_grouped_batches(lengths, self.micro_batch, cfg.seed, st.epoch, cfg.group_by_length)
            for first in range(st.step_in_epoch * accum, len(batches), accum):
                loss = self._step(batches[first:first + accum], pace)
                if not self._after_step(loss, pace):
                    break
            if st.step_in_epoch >= self.steps_per_epoch:
                st.epoch, st.step_in_epoch = st.epoch + 1, 0
        self.train_seconds = time.perf_counter() - pace.start
        self.throughput = pace.rates(self.train_seconds)
        self._emit("on_train_end")
        return st

    def _step(self, group: list[list[int]], pace: Pace) -> float:
        """One optimizer step over `group`, its gradient-accumulation micro-batches; returns the step's loss."""
        acc, cfg, st, start = self.accelerator, self.config, self.state, time.perf_counter()
        main_thread_start = time.thread_time()  # the deadline reads how much of a core this thread gets
        self._mode(training=True)
        step_loss = torch.zeros((), dtype=torch.float32)
        for micro, indices in enumerate(group):
            local = indices[acc.process_index::self.world] or indices[:1]
            batch = collate(self.train_set, local, self.tokenizer.pad_token_id, cfg.pad_to_multiple_of)
            batch = {k: v.to(acc.device) for k, v in batch.items()} if acc.device.type != "cpu" else batch
            labels = batch.pop("labels")
            with contextlib.nullcontext() if micro == len(group) - 1 else acc.no_sync(self.model):
                loss = self.loss(self.model(**batch).logits, labels) / len(group)
                acc.backward(loss)
            step_loss += loss.detach()
            pace.tokens += int(batch["attention_mask"].sum()) * self.world
            pace.samples += len(local) * self.world
        if cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        st.global_step, st.step_in_epoch = st.global_step + 1, st.step_in_epoch + 1
        st.train_time += time.perf_counter() - start
        if self.deadline:
            self.deadline.note_step(time.perf_counter() - start, time.thread_time() - main_thread_start)
        value = float(acc.reduce(step_loss, "mean")) if self.world > 1 else float(step_loss)
        return self.units.loss(value)  # regression: back in target units, as validation loss is

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of a micro-batch: the task's (Distill mixes in the teacher's scores)."""
        return self.task.loss(logits, labels, self.class_weights)

    def distillation_report(self, kept_scores: Any) -> DistillationReport | None:
        """What the card says about a teacher (None: this model learned from labels alone)."""
        return None

    def _after_step(self, loss: float, pace: Pace) -> bool:
        """Account for the step and do what is due; False when the loop should stop."""
        cfg, st = self.config, self.state
        if not math.isfinite(loss):
            self._diverged(loss)
            return False
        st.log_loss_sum, st.log_steps = st.log_loss_sum + loss, st.log_steps + 1
        st.window_loss_sum, st.window_steps = st.window_loss_sum + loss, st.window_steps + 1
        rates, lr = pace.rates(), self.scheduler.get_last_lr()[0]
        self._emit("on_step_end", StepReport(loss, lr, rates["samples_per_second"], rates["tokens_per_second"]))
        if st.global_step % cfg.logging_steps == 0:
            self._emit("on_log", {"train/loss": st.log_loss_sum / st.log_steps, "train/learning_rate": lr,
                                  **{f"train/{k}": v for k, v in rates.items()}})
            st.log_loss_sum, st.log_steps = 0.0, 0
        if st.global_step == self.replan_at:
            self._replan()
            cfg = self.config  # the re-planned settings decide what is due from this step on
        end_of_epoch, last = st.step_in_epoch >= self.steps_per_epoch, st.global_step >= self.total_steps
        out_of_time = not last and self._out_of_time()
        if out_of_time:
            self.refit_due = False  # this evaluation ends the run: no step count is left to fit
        if eval_due(cfg, st.global_step, end_of_epoch, last) or (out_of_time and self.deadline.can_evaluate()):
            self._evaluate_and_checkpoint()
        elif (end_of_epoch and cfg.eval_strategy == "no") or (cfg.save_steps and st.global_step % cfg.save_steps == 0):
            save_last(self.accelerator, self.checkpoints, st, cfg)
        if out_of_time and not st.stopped_early:
            kept = f"step {st.best['step']}" if st.best else "the final weights"
            pace = f" (steps ran {self.deadline.slowdown():.1f}x as long as planned)" if self.plan else ""
            self._stop(f"the time budget ran out after step {st.global_step} of {self.total_steps}{pace}; the model "
                       f"kept is the best evaluation so far ({kept})")
        return not (last or st.stopped_early)

    def _replan(self) -> None:
        """Fit the step count (and, if they no longer fit, the evaluations) to the time left at the real steps'
        pace, so the learning rate decays to its end and the evaluations spread over the run, instead of the
        deadline cutting it short (or leaving time unused)."""
        plan, cfg, done = self.plan, self.config, self.state.global_step
        ceiling = max(done + 1, math.ceil(MAX_EPOCHS * self.steps_per_epoch))
        fitted = broadcast(replan(plan, self.deadline, done, ceiling) if self.is_main else None, self.world)
        if fitted.steps == self.total_steps and fitted.evaluations == plan.evaluations:
            return
        changed = {"epochs": epochs_for(fitted.steps, self.steps_per_epoch)}
        if cfg.eval_strategy == "steps" and "eval_steps" not in self.fixed:
            changed["eval_steps"] = math.ceil(fitted.steps / fitted.evaluations)
        fewer = (f", {fitted.evaluations} evaluation(s) instead of {plan.evaluations}"
                 if fitted.evaluations != plan.evaluations else "")
        self._apply_fit(fitted.steps, changed, f"re-planned after {done} steps at {fitted.step_seconds:.3f} s each "
                        f"(the probe said {plan.step_seconds:.3f}): {fitted.steps:,} steps instead of "
                        f"{self.total_steps:,}{fewer}")

    def _refit(self) -> None:
        """At the first evaluation, fit the step count again to the pace of every step so far and the evaluation's
        own seconds (budget.refit); before its checkpoint, so every checkpoint holds the step count the run ends at."""
        self.refit_due = False
        done, every = self.state.global_step, self.config.eval_steps
        ceiling = max(done + 1, math.ceil(MAX_EPOCHS * self.steps_per_epoch))
        steps = broadcast(refit(self.plan, self.deadline, done, ceiling, every) if self.is_main else None, self.world)
        if steps != self.total_steps:
            self._apply_fit(steps, {"epochs": epochs_for(steps, self.steps_per_epoch)},
                            f"re-fitted at the first evaluation (step {done}, {self.deadline.measured_eval:.1f} s): "
                            f"{steps:,} steps instead of {self.total_steps:,}")

    def _apply_fit(self, steps: int, changed: dict[str, Any], line: str) -> None:
        """Run to `steps` from here (the schedule retargeted), and record why in the plan the recipe will repeat."""
        plan = self.plan
        plan.replanned = f"{plan.replanned}; {line}" if plan.replanned else line
        plan.replanned_settings = {**plan.replanned_settings, **changed}
        self.config, self.total_steps = dataclasses.replace(self.config, **changed), steps
        retarget(self.scheduler, self.config, steps)
        if self.is_main:
            atomic_write_json(self.checkpoints / "plan.json", dataclasses.asdict(plan))
        self._emit("on_replan", line)

    def _out_of_time(self) -> bool:
        """The deadline's call, made by the main process for all (clocks and step times differ a little)."""
        if self.deadline is None:
            return False
        verdict = torch.tensor(float(self.deadline.must_stop()))
        return bool(self.accelerator.reduce(verdict, "max")) if self.world > 1 else bool(verdict)

    def _stop(self, reason: str) -> None:
        self.state.stopped_early, self.state.stop_reason = True, reason
        self._emit("on_stop", reason)

    def _diverged(self, loss: float, what: str = "training loss") -> None:
        """A loss that is not a number poisons every weight it touches: stop, keep the last good evaluation."""
        st = self.state
        st.diverged_at = st.global_step
        where = f"training diverged at step {st.global_step} ({what} {loss})"
        if st.best is None:
            raise TrainingDiverged(f"{where} before any good evaluation, so there is no model to keep and nothing "
                                   f"was written. Lower the learning rate ({self.config.learning_rate:g}), or "
                                   "evaluate more often (--eval-strategy steps --eval-steps N).")
        self._stop(f"{where}: stopped; the model kept is the last good evaluation, step {st.best['step']}")

    def _mode(self, training: bool) -> None:
        set_mode(self.accelerator.unwrap_model(self.model), self.model, training, self.fast_dropout)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, data: Encoded, examples: list[Example] | None = None) -> dict[str, Any]:
        """Loss and metrics over `data` (the evaluation set, or any `examples` encoded), in the targets' units."""
        self._mode(training=False)
        logits = gathered_logits(self.model, data, self.accelerator, self.config.eval_batch_size,
                                 self.tokenizer.pad_token_id)
        scores = self.task.scores(self.units.from_model(logits))
        examples = examples or (self.data.eval if data is self.eval_set else self.data.train)
        if data is self.eval_set:
            scores = self.eval_probs = self.per_example(scores)
        languages = [ex.extra.get("language") for ex in examples]
        return self.task.evaluate(scores, [ex.label for ex in examples], self.data.label_names,
                                  threshold=self.config.threshold, languages=languages if all(languages) else None)

    def _evaluate_and_checkpoint(self) -> None:
        cfg, st, start = self.config, self.state, time.perf_counter()
        metrics = self.evaluate(self.eval_set)
        if self.deadline:
            self.deadline.note_evaluation(time.perf_counter() - start)
        exploded = EXPLODED_LOSS * self.task.know_nothing_loss(len(self.data.label_names),
                                                               [ex.label for ex in self.data.train])
        if not math.isfinite(metrics["loss"]) or metrics["loss"] > exploded:  # nothing to keep or go on from
            self._diverged(metrics["loss"], "validation loss")
            return
        row = {"step": st.global_step, "epoch": round(st.global_step / self.steps_per_epoch, 4),
               "train_loss": st.window_loss_sum / max(st.window_steps, 1), **scalar_metrics(metrics),
               "train_time": round(st.train_time, 2)}  # seconds of training (not evaluation) so far
        st.window_loss_sum, st.window_steps = 0.0, 0
        st.history.append(row)
        key = self.task.keep_metric(cfg.metric_for_best)
        if key not in metrics:
            known = ", ".join(scalar_metrics(metrics))
            raise ConfigError(f"metric_for_best={key!r} is not computed; choose one of {known}")
        improved = is_improvement(metrics[key], st.best["value"] if st.best else None, key, metrics["loss"],
                                  st.best_metrics["loss"] if st.best_metrics else None)
        st.evals_since_best = 0 if improved else st.evals_since_best + 1
        # auto: the best so far while the run goes on (early stopping and a time budget keep it), the last
        # evaluation of a run that reaches its end (results/checkpoint_choice.md: it kept the most test accuracy)
        keep_last = cfg.metric_for_best == "auto" and st.global_step >= self.total_steps and not improved
        kept = improved or keep_last
        if kept:
            st.best = {"metric": key, "value": metrics[key], "step": row["step"], "epoch": row["epoch"],
                       "rule": "last" if keep_last else "best"}
            st.best_metrics = metrics
            self._save_best()
        self._emit("on_evaluate", row, kept)
        patience = cfg.early_stopping_patience
        if patience and st.evals_since_best >= patience and st.global_step < self.total_steps:
            self._stop(f"early stopping: {key} has not improved for {patience} evaluations")
        if self.refit_due and st.global_step < self.total_steps and not st.stopped_early:
            self._refit()
        save_last(self.accelerator, self.checkpoints, st, self.config)

    def _save_best(self) -> None:
        model = self.accelerator.unwrap_model(self.model)
        threshold = self.task.threshold_of(self.state.best_metrics)
        if threshold is not None:  # textfit.load and the service read them; pipeline users pass top_k=None
            model.config.multi_label_threshold = threshold
            model.config.multi_label_thresholds = self.task.thresholds_of(self.state.best_metrics,
                                                                          self.data.label_names)
        mistakes = confident_mistakes(self.data.eval, self.eval_probs, self.data.label_names, self.task)
        with head_in_target_units(model, self.units):
            save_best(self.accelerator, model, self.checkpoints, mistakes, self.eval_probs)

    # ------------------------------------------------------------------ save
    def _fit_final_evaluation(self) -> None:
        """A budget that ran out before any evaluation could fit leaves time for part of one: the final weights are
        scored on the seeded share of the evaluation set that fits (at least FINAL_EVAL_FLOOR texts), and the stop
        reason says so. The baseline and the card then use the same texts."""
        deadline, total = self.deadline, len(self.data.eval)
        if deadline is None or self.plan is None or deadline.can_evaluate() or not total:
            return
        per_text = deadline.eval_seconds * deadline.slowdown() / total
        room = deadline.left() - deadline.writing()
        kept = broadcast(max(FINAL_EVAL_FLOOR, int(room / per_text)) if per_text > 0 else total, self.world)
        if kept >= total:
            return
        self.data.eval = seeded_subset(self.data.eval, kept, self.config.seed)
        self.eval_set = self.evaluation_set(self.data.eval)
        reason = self.state.stop_reason or "the time budget was nearly spent"
        self.state.stop_reason = (f"{reason}; the final weights were scored on {kept:,} of the {total:,} evaluation "
                                  "texts, what the time left allowed")

    def save(self) -> Result:
        """Write the output folder (the main process writes; every process takes part in a last evaluation)."""
        st = self.state
        if st.best is None:  # no evaluation was asked for, or none fitted a time budget: keep the final weights
            self._fit_final_evaluation()
            st.best_metrics = self.evaluate(self.eval_set)
            self._save_best()
        self.accelerator.wait_for_everyone()
        result = write_output_folder(self) if self.is_main else result_elsewhere(self)
        self._emit("on_save", result if self.is_main else None)
        return result


def eval_due(cfg: TrainConfig, step: int, end_of_epoch: bool, last: bool) -> bool:
    if cfg.eval_strategy == "no":
        return False
    if cfg.eval_strategy == "epoch" and end_of_epoch:
        return True
    if cfg.eval_strategy == "steps" and step % cfg.eval_steps == 0:
        return True
    return last  # the final model is always evaluated


def broadcast(value: Any, world: int) -> Any:
    """The main process's `value`, on every process."""
    if world == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def _forget_previous_precision() -> None:
    """Accelerate keeps one mixed-precision setting per process; a second run in the same Python session (a
    notebook, the tests) may ask for another. The process-group part of its state is kept."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and hasattr(AcceleratorState, "_reset_state"):
        AcceleratorState._reset_state(reset_partial_state=False)
