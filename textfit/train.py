"""Fine-tune a pretrained encoder into a text classifier: the whole training loop in one class.

    textfit train --dataset examples/data/imdb_sample --output-dir outputs/imdb
    textfit train --config recipes/imdb-distilbert-subset.yaml --model minilm-l6
    accelerate launch --cpu --num_processes 2 -m textfit train --config my.yaml   # several processes
    torchrun --nproc_per_node 2 -m textfit train --config my.yaml                 # the same, with torchrun

`setup()` reads and tokenizes the data and builds model, optimizer and schedule on an Accelerator;
`train()` runs the loop: evaluation every epoch or N steps, the best checkpoint kept, early stopping,
a resumable checkpoint at every evaluation; `finish()` writes the output folder that
`transformers.pipeline` and `AutoModelForSequenceClassification` load as it is.

train_batch_size is the number of examples per optimizer step over all processes and accumulation
micro-steps, so a recipe learns the same thing on one process or many.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_scheduler

from textfit import task, tracking
from textfit.batching import Encoded, collate, default_cache_dir, encode, length_grouped_batches, sorted_batches
from textfit.card import render_card, results_rows
from textfit.card.pictures import write_pictures
from textfit.config import TrainConfig, save_recipe
from textfit.data import Columns, Example, TrainingData, load_training_data
from textfit.data.check import check_data
from textfit.errors import ConfigError, TrainingDiverged
from textfit.fast_dropout import ATTENTION_NAME, register_attention, use_fast_dropout
from textfit.findings import OVERFIT_PATIENCE, overfitting_so_far, run_findings
from textfit.io import atomic_write_json, atomic_write_text, replace_dir
from textfit.metrics import is_improvement, scalar_metrics
from textfit.mistakes import card_quotes, confident_mistakes
from textfit.models import ModelSource, offline_hint, resolve_model
from textfit.precision import resolve_precision
from textfit.vocab_trim import trim_vocabulary

FINAL_FILES = ("README.md", "metrics.json", "model.safetensors")  # their presence marks a finished run
EXPLODED_LOSS = 10  # validation loss above 10x a know-nothing model's: the run has diverged, stop it
RESUME_IGNORED = ("resume", "overwrite", "keep_checkpoints", "output_dir")


class FineTune:
    """A fine-tuning run. Raises ConfigError/DataError/ModelError with a message naming what is wrong."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.out = Path(config.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.findings: list[str] = []
        self.pictures: list[tuple[str, str]] = []
        self.data_warnings: list[str] = []
        self.mistakes: list[dict[str, Any]] = []
        self.eval_probs: np.ndarray | None = None  # the last evaluation's probabilities, for errors.jsonl
        # called after each evaluation with (examples trained on, metrics); `textfit tune` prunes trials from it
        self.on_evaluate: Callable[[int, dict[str, Any]], None] | None = None
        self.state: dict[str, Any] = {"global_step": 0, "epoch": 0, "step_in_epoch": 0, "history": [],
                                      "best": None, "best_metrics": None, "evals_since_best": 0,
                                      "log_loss_sum": 0.0, "log_steps": 0, "eval_loss_sum": 0.0,
                                      "eval_steps_seen": 0, "stopped_early": False, "train_time": 0.0}

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.config
        self.precision, self.precision_note = resolve_precision(cfg.precision)
        _forget_previous_precision()
        self.accelerator = Accelerator(mixed_precision={"fp32": "no"}.get(self.precision, self.precision),
                                       cpu=not torch.cuda.is_available(),
                                       **tracking.accelerator_kwargs(cfg.report_to, cfg.output_dir, cfg.tracking_uri))
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        self._check_output_dir()
        set_seed(cfg.seed)

        self.data = load_data(cfg)
        names, self.task = self.data.label_names, self.data.task
        if cfg.class_weights != "none" and self.task != "single":
            raise ConfigError(f"class_weights={cfg.class_weights!r} is for single-label tasks; this one is {self.task}")
        if cfg.threshold is not None and self.task != "multi-label":
            raise ConfigError(f"threshold={cfg.threshold} is for multi-label tasks; this one is {self.task}")
        self.class_weights = class_weights(cfg.class_weights, [ex.label for ex in self.data.train], names)
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(self.accelerator.device)
        self.source: ModelSource = resolve_model(cfg.model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source.path)
            model = AutoModelForSequenceClassification.from_pretrained(
                self.source.path, num_labels=task.num_outputs(self.task, names), id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)}, problem_type=task.PROBLEM_TYPES[self.task],
                ignore_mismatched_sizes=True)
        except OSError as exc:
            raise offline_hint(cfg.model, exc) from exc
        self.threshold: float | None = cfg.threshold  # multi-label; None: tuned at each evaluation
        # regression learns standardised targets (mean 0, std 1: the scale the new head starts at, so it need not
        # grow to IMDb's 1-10 first); the saved head is scaled back, and every reported loss is in target units
        self.target_shift, self.target_scale = 0.0, 1.0
        if self.task == "regression":
            values = np.asarray([ex.label for ex in self.data.train], dtype=float)
            self.target_shift, self.target_scale = float(values.mean()), float(values.std()) or 1.0
        if self.task == "multi-label":  # start from each label's log-odds in train, so the first steps learn from
            # texts rather than the labels' rarity (BCE 0.69 per label -> ~0.15 on GoEmotions before any step)
            share = (np.asarray(task.targets(self.task, [ex.label for ex in self.data.train], len(names)))
                     .mean(0).clip(1e-4, 1 - 1e-4))
            with torch.no_grad():
                output_layer(model).bias.copy_(torch.from_numpy(np.log(share / (1 - share))))
        self.vocab_note: str | None = None
        if cfg.trim_vocab:
            texts = [ex.text for ex in self.data.train] + [ex.text_pair for ex in self.data.train if ex.text_pair]
            self.tokenizer, model, self.vocab_note = trim_vocabulary(self.tokenizer, model, texts)
            print(self.vocab_note, flush=True)
        if cfg.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if self.is_main:  # what `textfit check` would say, before hours go into it
            report = check_data(self.data.train, self.data.eval, names, tokenizer=self.tokenizer,
                                max_length=cfg.max_length, seed=cfg.seed, task=self.task)
            self.data_warnings = report.warnings
            for warning in report.warnings:
                print(f"data warning: {warning}", flush=True)
        self.fast_dropout = cfg.fast_dropout and not torch.cuda.is_available()
        if self.fast_dropout:
            register_attention()
            use_fast_dropout(model)
        max_length = min(cfg.max_length, self.tokenizer.model_max_length)
        self.train_set = self._encode(self.data.train, max_length)
        self.eval_set = self._encode(self.data.eval, max_length)

        micro_batch = cfg.train_batch_size // cfg.gradient_accumulation_steps
        if micro_batch < self.world:
            raise ConfigError(f"train_batch_size={cfg.train_batch_size} is smaller than "
                              f"{self.world} processes x {cfg.gradient_accumulation_steps} accumulation steps")
        self.micro_batch = micro_batch
        micro_steps = math.ceil(len(self.train_set) / micro_batch)
        self.steps_per_epoch = math.ceil(micro_steps / cfg.gradient_accumulation_steps)
        self.total_steps = cfg.max_steps or math.ceil(cfg.epochs * self.steps_per_epoch)
        warmup = cfg.warmup_steps or round(cfg.warmup_ratio * self.total_steps)

        trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        decay = [p for n, p in trained if not n.endswith("bias") and "LayerNorm" not in n]
        no_decay = [p for n, p in trained if n.endswith("bias") or "LayerNorm" in n]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon, fused=True)
        # the schedule counts optimizer steps itself, so it is not prepared (accelerate would step it per process)
        self.scheduler = get_scheduler(cfg.lr_scheduler_type, optimizer, num_warmup_steps=warmup,
                                       num_training_steps=self.total_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.warmup_steps = warmup
        if cfg.resume:
            self._load_checkpoint()
        tracking.start(self.accelerator, cfg.to_dict())

    def _encode(self, examples: list[Example], max_length: int) -> Encoded:
        pairs = [ex.text_pair for ex in examples] if self.config.text_pair_column else None
        labels = task.targets(self.task, [ex.label for ex in examples], len(self.data.label_names))
        if self.task == "regression":
            labels = [(v - self.target_shift) / self.target_scale for v in labels]
        return encode(self.tokenizer, [ex.text for ex in examples], pairs, max_length=max_length,
                      labels=labels, truncation=self.config.truncation,
                      cache_dir=default_cache_dir() if self.config.tokenize_cache else None)

    def _check_output_dir(self) -> None:
        cfg = self.config
        finished = any((self.out / f).exists() for f in FINAL_FILES)
        interrupted = (self.ckpt_dir / "last").is_dir()
        if cfg.overwrite:
            if self.is_main and self.ckpt_dir.exists():
                shutil.rmtree(self.ckpt_dir)
            self.accelerator.wait_for_everyone()
        elif cfg.resume and not interrupted:
            raise ConfigError(f"{self.out}: nothing to resume (no checkpoints/last); run without --resume")
        elif not cfg.resume and interrupted:
            raise ConfigError(f"{self.out}: holds an interrupted run; pass --resume to continue it "
                              "or --overwrite to start over")
        elif not cfg.resume and finished:
            raise ConfigError(f"{self.out}: holds a finished model; pass --overwrite to replace it "
                              "or choose another --output-dir")

    # ------------------------------------------------------------------ train
    def train(self) -> dict[str, Any]:
        cfg, st, acc = self.config, self.state, self.accelerator
        if self.is_main:
            print(self._banner())
        bar = tqdm(total=self.total_steps, initial=st["global_step"], disable=None if self.is_main else True,
                   desc="training", unit="step", dynamic_ncols=True)
        lengths = self.train_set.lengths()
        t_start, tokens_seen, samples_seen = time.perf_counter(), 0, 0
        while st["global_step"] < self.total_steps and not st["stopped_early"]:
            batches = length_grouped_batches(lengths, self.micro_batch, cfg.seed, st["epoch"], cfg.group_by_length)
            accum = cfg.gradient_accumulation_steps
            for first in range(st["step_in_epoch"] * accum, len(batches), accum):
                group = batches[first:first + accum]
                step_start = time.perf_counter()
                self._mode("train")
                step_loss = torch.zeros((), dtype=torch.float32)
                for micro, indices in enumerate(group):
                    local = indices[acc.process_index::self.world] or indices[:1]
                    batch = self._to_device(collate(self.train_set, local, self.tokenizer.pad_token_id,
                                                    cfg.pad_to_multiple_of))
                    labels = batch.pop("labels")
                    sync = micro == len(group) - 1
                    with contextlib.nullcontext() if sync else acc.no_sync(self.model):
                        logits = self.model(**batch).logits
                        loss = task.loss(self.task, logits, labels, self.class_weights) / len(group)
                        acc.backward(loss)
                    step_loss += loss.detach()
                    tokens_seen += int(batch["attention_mask"].sum()) * self.world
                    samples_seen += len(local) * self.world
                if cfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                st["global_step"] += 1
                st["step_in_epoch"] += 1
                st["train_time"] += time.perf_counter() - step_start
                loss_value = float(acc.reduce(step_loss, "mean")) if self.world > 1 else float(step_loss)
                loss_value *= self.target_scale ** 2  # regression: back in target units, as validation loss is
                if not math.isfinite(loss_value):
                    self._diverged(loss_value)
                    break
                for key in ("log", "eval"):
                    st[f"{key}_loss_sum"] += loss_value
                st["log_steps"] += 1
                st["eval_steps_seen"] += 1
                elapsed = time.perf_counter() - t_start
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                                samples_s=f"{samples_seen / elapsed:.1f}", tokens_s=f"{tokens_seen / elapsed:.0f}")
                if st["global_step"] % cfg.logging_steps == 0:
                    mean = st["log_loss_sum"] / st["log_steps"]
                    if self.is_main:
                        tqdm.write(f"step {st['global_step']}: train loss {mean:.4f}, "
                                   f"{samples_seen / elapsed:.1f} samples/s, {tokens_seen / elapsed:.0f} tokens/s")
                    tracking.log(acc, {"train/loss": mean, "train/learning_rate": self.scheduler.get_last_lr()[0],
                                       "train/samples_per_second": samples_seen / elapsed}, st["global_step"])
                    st["log_loss_sum"], st["log_steps"] = 0.0, 0
                end_of_epoch = st["step_in_epoch"] >= self.steps_per_epoch
                last = st["global_step"] >= self.total_steps
                if self._eval_due(end_of_epoch, last):
                    self._evaluate_and_checkpoint()
                elif end_of_epoch and cfg.eval_strategy == "no":
                    self._save_last()
                if last or st["stopped_early"]:
                    break
            if st["step_in_epoch"] >= self.steps_per_epoch:
                st["epoch"] += 1
                st["step_in_epoch"] = 0
        bar.close()
        self.train_seconds = time.perf_counter() - t_start
        self.throughput = {"samples_per_second": samples_seen / self.train_seconds,
                           "tokens_per_second": tokens_seen / self.train_seconds}
        return self.finish()

    def _diverged(self, loss_value: float, what: str = "training loss") -> None:
        """A loss that is not a number poisons every weight it touches: stop, keep the last good evaluation."""
        st = self.state
        st["diverged_at"], st["stopped_early"] = st["global_step"], True
        if st["best"] is None:
            raise TrainingDiverged(
                f"training diverged at step {st['global_step']} ({what} {loss_value}) before any good evaluation, so "
                f"there is no model to keep and nothing was written. Lower the learning rate "
                f"({self.config.learning_rate:g}), or evaluate more often (--eval-strategy steps --eval-steps N).")
        if self.is_main:
            tqdm.write(f"training diverged at step {st['global_step']} ({what} {loss_value}): stopped; the model kept "
                       f"is the last good evaluation, step {st['best']['step']}")

    def _eval_due(self, end_of_epoch: bool, last: bool) -> bool:
        cfg = self.config
        if cfg.eval_strategy == "no":
            return False
        if cfg.eval_strategy == "epoch" and end_of_epoch:
            return True
        if cfg.eval_strategy == "steps" and self.state["global_step"] % cfg.eval_steps == 0:
            return True
        return last  # the final model is always evaluated

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        return batch if device.type == "cpu" else {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def _mode(self, mode: str) -> None:
        """Train or eval mode, with the faster attention kernel for each on CPU.

        With attention dropout, PyTorch's CPU SDPA falls back to an unfused path that is slower than eager
        attention (MiniLM-L6, 16x256, bf16: 1.27 s vs 1.06 s a step), and eager with fast dropout is faster
        still; without dropout (evaluation) SDPA is fastest. The arithmetic is the same, so only speed changes.
        """
        model = self.accelerator.unwrap_model(self.model)
        dropout = getattr(model.config, "attention_probs_dropout_prob", 0) or 0
        wanted = "sdpa"
        if mode == "train" and dropout > 0 and not torch.cuda.is_available():
            wanted = ATTENTION_NAME if self.fast_dropout else "eager"
        if model.config._attn_implementation != wanted:
            model.set_attn_implementation(wanted)
        self.model.train(mode == "train")

    # ------------------------------------------------------------------ evaluate
    @torch.no_grad()
    def evaluate(self, data: Encoded) -> dict[str, Any]:
        """Loss and metrics over `data`, each process taking every world-th batch, gathered on all."""
        acc = self.accelerator
        self._mode("eval")
        batches = sorted_batches(data.lengths(), self.config.eval_batch_size)
        local = []
        for indices in batches[acc.process_index::self.world]:
            batch = self._to_device(collate(data, indices, self.tokenizer.pad_token_id))
            batch.pop("labels")
            local.append((indices, self.model(**batch).logits.float().cpu()))
        parts = gather_object(local) if self.world > 1 else local
        order = [i for indices, _ in parts for i in indices]
        logits = torch.cat([lg for _, lg in parts])[torch.argsort(torch.tensor(order))].numpy()
        logits = logits * self.target_scale + self.target_shift  # regression: standardised -> target units
        examples = self.data.eval if data is self.eval_set else self.data.train
        languages = [ex.extra.get("language") for ex in examples]
        if data is self.eval_set:
            self.eval_probs = task.scores(self.task, logits)
        return task.evaluate_scores(self.task, task.scores(self.task, logits), [ex.label for ex in examples],
                                    self.data.label_names, threshold=self.threshold,
                                    languages=languages if all(languages) else None)

    def _evaluate_and_checkpoint(self) -> None:
        cfg, st = self.config, self.state
        metrics = self.evaluate(self.eval_set)
        exploded = EXPLODED_LOSS * task.know_nothing_loss(self.task, len(self.data.label_names),
                                                          [ex.label for ex in self.data.train])
        if not math.isfinite(metrics["loss"]) or metrics["loss"] > exploded:  # nothing to keep or go on from
            self._diverged(metrics["loss"], "validation loss")
            return
        row = {"step": st["global_step"], "epoch": round(st["global_step"] / self.steps_per_epoch, 4),
               "train_loss": st["eval_loss_sum"] / max(st["eval_steps_seen"], 1), **scalar_metrics(metrics),
               "train_time": round(st["train_time"], 2)}  # seconds of training (not evaluation) so far
        st["eval_loss_sum"], st["eval_steps_seen"] = 0.0, 0
        st["history"].append(row)
        tracking.log(self.accelerator, {f"eval/{k}": v for k, v in row.items() if k not in ("step", "epoch")},
                     row["step"])
        key = cfg.metric_for_best
        if key not in metrics:
            known = ", ".join(scalar_metrics(metrics))
            raise ConfigError(f"metric_for_best={key!r} is not computed; choose one of {known}")
        improved = is_improvement(metrics[key], st["best"]["value"] if st["best"] else None, key)
        if improved:
            st["best"] = {"metric": key, "value": metrics[key], "step": row["step"], "epoch": row["epoch"]}
            st["best_metrics"] = metrics
            st["evals_since_best"] = 0
            self._save_best()
        else:
            st["evals_since_best"] += 1
        if self.is_main:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "epoch"))
            mark = "  [best]" if improved else ""
            tqdm.write(f"eval @ step {row['step']} (epoch {row['epoch']:g}): {shown}{mark}")
            if overfitting_so_far(st["history"]):
                kept = f"; the checkpoint of step {st['best']['step']} is kept" if key == "loss" else ""
                tqdm.write(f"finding: validation loss has risen for {OVERFIT_PATIENCE} evaluations while training "
                           f"loss falls: the model is overfitting{kept}")
        if self.on_evaluate is not None:
            self.on_evaluate(st["global_step"] * cfg.train_batch_size, metrics)
        patience = cfg.early_stopping_patience
        if patience and st["evals_since_best"] >= patience and st["global_step"] < self.total_steps:
            st["stopped_early"] = True
            if self.is_main:
                tqdm.write(f"early stopping: {key} has not improved for {patience} evaluations")
        self._save_last()

    # ------------------------------------------------------------------ checkpoints
    def _save_best(self) -> None:
        """Weights only, for the final folder; written whole, then swapped in."""
        staging = self.ckpt_dir / ".best-staging"
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            model = self.accelerator.unwrap_model(self.model)
            if self.task == "multi-label":  # textfit.load and the service read it; pipeline users pass top_k=None
                model.config.multi_label_threshold = self.state["best_metrics"]["threshold"]
            with self._head_in_target_units(model):
                model.save_pretrained(staging, safe_serialization=True)
            mistakes = confident_mistakes(self.data.eval, self.eval_probs, self.data.label_names, self.task)
            atomic_write_text(staging / "errors.jsonl", "".join(json.dumps(m, ensure_ascii=False) + "\n"
                                                                for m in mistakes))
            replace_dir(staging, self.ckpt_dir / "best")
        self.accelerator.wait_for_everyone()

    @contextlib.contextmanager
    def _head_in_target_units(self, model: torch.nn.Module):
        """Regression: while saving, the head outputs targets in their own units (pipeline and load need no shift)."""
        if self.task != "regression":
            yield
            return
        layer = output_layer(model)
        weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
        with torch.no_grad():
            layer.weight.mul_(self.target_scale)
            layer.bias.mul_(self.target_scale).add_(self.target_shift)
        try:
            yield
        finally:
            with torch.no_grad():
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)

    def _save_last(self) -> None:
        """Everything a resumed run needs: weights, optimizer, schedule, RNG states and loop position."""
        staging = self.ckpt_dir / ".last-staging"
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(staging))
        if self.is_main:
            atomic_write_json(staging / "trainer_state.json", self.state)
            save_recipe(self.config, staging / "recipe.yaml")
            replace_dir(staging, self.ckpt_dir / "last")
        self.accelerator.wait_for_everyone()

    def _load_checkpoint(self) -> None:
        last = self.ckpt_dir / "last"
        import yaml

        saved = yaml.safe_load((last / "recipe.yaml").read_text())
        now = self.config.to_dict()
        changed = [k for k in now if k not in RESUME_IGNORED and saved.get(k) != now[k]]
        if changed:
            diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
            raise ConfigError(f"{last}: cannot resume with different settings ({diffs})")
        self.accelerator.load_state(str(last))
        self.state = json.loads((last / "trainer_state.json").read_text())
        if self.is_main:
            print(f"resuming from {last} at step {self.state['global_step']} of {self.total_steps}")

    # ------------------------------------------------------------------ finish
    def finish(self) -> dict[str, Any]:
        """Write the output folder: the kept weights, tokenizer, recipe, history, metrics and card."""
        st, acc = self.state, self.accelerator
        if st["best"] is None:  # no evaluation was asked for: keep the final weights
            st["best_metrics"] = self.evaluate(self.eval_set)
            self._save_best()
        acc.wait_for_everyone()
        if not self.is_main:
            tracking.finish(acc, {}, "", st["global_step"])
            return st["best_metrics"]
        staging = self.out / ".final-staging"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(self.ckpt_dir / "best", staging)
        # the saved tokenizer truncates where training did, so pipeline(..., truncation=True) sees the same tokens
        self.tokenizer.model_max_length = min(self.config.max_length, self.tokenizer.model_max_length)
        self.tokenizer.save_pretrained(staging)
        save_recipe(self.config, staging / "recipe.yaml")
        summary = self.summary()
        errors = staging / "errors.jsonl"  # absent in a checkpoint written before textfit kept it
        self.mistakes = [json.loads(line) for line in errors.open(encoding="utf-8")] if errors.is_file() else []
        self.findings = run_findings(st["history"], st["best"], st["best_metrics"], self._counts(self.data.eval),
                                     self.config.learning_rate, st.get("diverged_at"), self.task)
        atomic_write_json(staging / "history.json", {"history": st["history"], "best": st["best"],
                                                     "stopped_early": st["stopped_early"], **summary})
        atomic_write_json(staging / "metrics.json", {"eval": st["best_metrics"], "kept": st["best"],
                                                     "eval_split": self.data.eval_split, "findings": self.findings,
                                                     "data_warnings": self.data_warnings})
        self.pictures = write_pictures(staging, st["history"], st["best"], st["best_metrics"], self.data.label_names)
        card = render_card(self.card_facts())
        atomic_write_text(staging / "README.md", card)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "README.md"):  # the card goes in last
            path.replace(self.out / path.name)
        staging.rmdir()
        if not self.config.keep_checkpoints:
            shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        print(self._closing_table())
        for finding in self.findings:
            print(f"finding: {finding}")
        tracking.finish(acc, scalar_metrics(st["best_metrics"]), card, st["global_step"])
        return st["best_metrics"]

    def summary(self) -> dict[str, Any]:
        out = {"train_seconds": round(self.train_seconds, 2), **{k: round(v, 2) for k, v in self.throughput.items()},
               "precision": self.precision, "processes": self.world}
        if self.projected_full_seconds is not None:
            out["projected_full_train_seconds"] = round(self.projected_full_seconds, 1)
        return out

    @property
    def projected_full_seconds(self) -> float | None:
        """When max_steps cut the run short of its epochs: how long the full run would train at this pace."""
        cfg = self.config
        planned = math.ceil(cfg.epochs * self.steps_per_epoch)
        if not cfg.max_steps or cfg.max_steps >= planned or not self.state["global_step"]:
            return None
        return self.train_seconds / self.state["global_step"] * planned

    def _counts(self, examples: list[Example]) -> dict[str, int]:
        """Examples per label (multi-label: texts carrying it); empty for regression, which has no labels."""
        from collections import Counter

        if self.task == "regression":
            return {}
        c = Counter(i for ex in examples for i in (ex.label if self.task == "multi-label" else [ex.label]))
        return {name: c.get(i, 0) for i, name in enumerate(self.data.label_names)}

    def card_facts(self) -> dict[str, Any]:
        counts = self._counts
        return {"config": self.config.to_dict(), "base_model": self.source.base_model, "license": self.source.license,
                "dataset": self.data.dataset_name, "eval_split": self.data.eval_split,
                "label_names": self.data.label_names, "train_counts": counts(self.data.train),
                "eval_counts": counts(self.data.eval), "task": self.task,
                "train_size": len(self.data.train), "targets": target_summary(self.data, self.task),
                "vocab_note": self.vocab_note, "findings": self.findings, "pictures": self.pictures,
                "data_warnings": self.data_warnings,
                "mistakes": card_quotes(self.mistakes), "mistake_count": len(self.mistakes),
                "class_weights": None if self.class_weights is None else self.class_weights.tolist(),
                "history": self.state["history"], "kept": self.state["best"],
                "metrics": self.state["best_metrics"], "precision": self.precision,
                "total_steps": self.state["global_step"], "planned_steps": self.total_steps,
                "steps_per_epoch": self.steps_per_epoch, "warmup_steps": self.warmup_steps,
                "processes": self.world, "stopped_early": self.state["stopped_early"],
                "architecture": type(self.accelerator.unwrap_model(self.model)).__name__}

    def _banner(self) -> str:
        d, cfg = self.data, self.config
        return (f"textfit: {self.source.base_model} on {d.dataset_name}: {len(d.train)} train / {len(d.eval)} eval "
                f"({d.eval_split}), labels {', '.join(d.label_names)}\n"
                f"  {self.total_steps} steps ({self.steps_per_epoch}/epoch), batch {cfg.train_batch_size}, "
                f"lr {cfg.learning_rate:g}, {self.precision}{self.precision_note}, {self.world} process(es)")

    def _closing_table(self) -> str:
        header, rows = results_rows(self.state["history"], self.data.label_names)
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        fmt = lambda r: "  ".join(str(x).rjust(w) for x, w in zip(r, widths, strict=True))  # noqa: E731
        kept = self.state["best"]
        lines = [fmt(header), *map(fmt, rows)]
        if kept:
            lines.append(f"kept: step {kept['step']} (epoch {kept['epoch']:g}), "
                         f"best {kept['metric']} {kept['value']:.4f}")
        lines.append(f"model written to {self.out}  ({self.throughput['samples_per_second']:.1f} samples/s, "
                     f"{self.throughput['tokens_per_second']:.0f} tokens/s, {self.train_seconds:.0f} s)")
        if self.projected_full_seconds is not None:
            planned = math.ceil(self.config.epochs * self.steps_per_epoch)
            lines.append(f"max_steps {self.config.max_steps} of the {planned:,} steps {self.config.epochs:g} epochs "
                         f"take: the full run would train for about {_duration(self.projected_full_seconds)} here")
        return "\n".join(lines)


def load_data(cfg: TrainConfig) -> TrainingData:
    """The training and evaluation examples a config names (what `train` and `textfit check` both read)."""
    return load_training_data(
        cfg.dataset or _missing("dataset"),
        Columns(cfg.text_column, cfg.label_column, cfg.text_pair_column, cfg.label_pattern),
        train_split=cfg.train_split, eval_split=cfg.eval_split, validation_fraction=cfg.validation_fraction,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples, seed=cfg.seed,
        task=cfg.task)


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The head's last layer (BERT's `classifier`, RoBERTa's `classifier.out_proj`, ...)."""
    outputs = model.config.num_labels
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == outputs]
    if not last or last[-1].bias is None:
        raise ConfigError(f"{type(model).__name__}: no output layer with a bias found")
    return last[-1]


def target_summary(data: TrainingData, task_name: str) -> dict[str, dict[str, float]] | None:
    """Regression: mean, standard deviation and range of the targets per split, for the card."""
    if task_name != "regression":
        return None
    out = {}
    for split, examples in (("train", data.train), ("evaluation", data.eval)):
        values = np.asarray([ex.label for ex in examples], dtype=float)
        out[split] = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                      "max": float(values.max())}
    return out


def class_weights(setting: str, labels: list[int], names: list[str]) -> torch.Tensor | None:
    """Per-label weights for the training loss (validation loss stays unweighted, comparable across runs)."""
    if setting == "none":
        return None
    if setting == "auto":
        counts = torch.bincount(torch.tensor(labels), minlength=len(names)).float()
        return len(labels) / (len(names) * counts.clamp(min=1))
    try:
        values = [float(v) for v in setting.split(",")]
    except ValueError:
        raise ConfigError(f"class_weights={setting!r}: use none, auto, or one number per label "
                          f"({', '.join(names)}), e.g. {','.join('1' for _ in names)}") from None
    if len(values) != len(names) or any(v <= 0 for v in values):
        raise ConfigError(f"class_weights={setting!r}: needs {len(names)} positive numbers, one per label in the "
                          f"order {', '.join(names)}")
    return torch.tensor(values)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 60 else \
        f"{seconds:.0f} s"


def _forget_previous_precision() -> None:
    """Accelerate keeps one mixed-precision setting per process; a second run in the same Python session (a
    notebook, the tests) may ask for another. The process-group part of its state is kept."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and hasattr(AcceleratorState, "_reset_state"):
        AcceleratorState._reset_state(reset_partial_state=False)


def _missing(name: str) -> str:
    raise ConfigError(f"{name} is required (--{name.replace('_', '-')} or `{name}:` in the recipe)")


def train(config: TrainConfig) -> dict[str, Any]:
    run = FineTune(config)
    run.setup()
    return run.train()
