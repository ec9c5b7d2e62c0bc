"""The output folder of a finished run, and what `train` returns.

The folder is built in a staging folder from checkpoints/best and moved in file by file, the card last: a folder
with a README.md is complete. `transformers.pipeline` and `AutoModelForSequenceClassification` load it as it is.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textfit.baseline import BaselineComparison, compare
from textfit.card import render_card, results_rows
from textfit.card.data import CardData
from textfit.card.pictures import write_pictures
from textfit.config import save_recipe
from textfit.findings import kept_words, run_findings
from textfit.io import atomic_write_json, atomic_write_text
from textfit.mistakes import card_quotes
from textfit.training.checkpoints import SCORES, space_checked

if TYPE_CHECKING:
    from textfit.predict import Classifier
    from textfit.training.distill import DistillationReport
    from textfit.training.finetune import FineTune


@dataclass
class Result:
    """What a finished run wrote and found."""

    output_dir: Path
    metrics: dict[str, Any]  # the kept model's metrics on the evaluation set
    kept: dict[str, Any] | None  # which evaluation was kept, by which metric
    history: list[dict[str, Any]]  # every evaluation
    findings: list[str]  # what the run found, in plain words
    task: str
    train_seconds: float
    card: str  # the model card (README.md)
    baseline: BaselineComparison | None = None  # the TF-IDF baseline on the same examples

    def load(self, **kwargs: Any) -> Classifier:
        """The trained model, ready to predict (`textfit.load(result.output_dir)`)."""
        from textfit.predict import load

        return load(self.output_dir, **kwargs)


def write_output_folder(run: FineTune) -> Result:
    """Weights, tokenizer, recipe, history, metrics, errors, pictures and the card (main process only)."""
    out = Path(run.config.output_dir)
    staging = out / ".final-staging"
    shutil.rmtree(staging, ignore_errors=True)
    with space_checked(staging, "the output folder"):
        return _write_output_folder(run, out, staging)


def _write_output_folder(run: FineTune, out: Path, staging: Path) -> Result:
    state = run.state
    shutil.copytree(out / "checkpoints" / "best", staging)
    # the saved tokenizer truncates where training did, so pipeline(..., truncation=True) sees the same tokens
    run.tokenizer.model_max_length = run.max_length
    run.tokenizer.save_pretrained(staging)
    save_recipe(run.config, staging / "recipe.yaml")
    errors = staging / "errors.jsonl"  # absent in a checkpoint written before textfit kept it
    mistakes = [json.loads(line) for line in errors.open(encoding="utf-8")] if errors.is_file() else []
    # the kept model's evaluation scores (absent in a checkpoint from an older textfit)
    kept_scores = np.load(staging / SCORES) if (staging / SCORES).is_file() else None
    baseline = compare_with_baseline(run, kept_scores)
    distilled = run.distillation_report(kept_scores) if kept_scores is not None else None
    (staging / SCORES).unlink(missing_ok=True)  # the folder holds the model, not evaluation by-products
    eval_counts = run.task.counts([ex.label for ex in run.data.eval], run.data.label_names)
    findings = run_findings(state.history, state.best, state.best_metrics, eval_counts, run.config.learning_rate,
                            state.diverged_at, run.task)
    if baseline is not None and not baseline.model_is_better:
        findings.append(baseline_finding(baseline))
    atomic_write_json(staging / "history.json", {"history": state.history, "best": state.best,
                                                 "stopped_early": state.stopped_early,
                                                 "stop_reason": state.stop_reason,
                                                 "plan": run.plan.to_json() if run.plan else None, **summary(run)})
    atomic_write_json(staging / "metrics.json", {"eval": state.best_metrics, "kept": state.best,
                                                 "eval_split": run.data.eval_split, "findings": findings,
                                                 "data_warnings": run.data_warnings,
                                                 "baseline": baseline.to_json() if baseline else None,
                                                 "distillation": distilled.to_json() if distilled else None})
    pictures = write_pictures(staging, state.history, state.best, state.best_metrics, run.data.label_names)
    card = render_card(card_data(run, findings, pictures, mistakes, baseline, distilled))
    atomic_write_text(staging / "README.md", card)
    for path in sorted(staging.iterdir(), key=lambda p: p.name == "README.md"):  # the card goes in last
        path.replace(out / path.name)
    staging.rmdir()
    if not run.config.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return Result(out, state.best_metrics, state.best, state.history, findings, run.task.name, run.train_seconds,
                  card, baseline)


def compare_with_baseline(run: FineTune, kept_scores: np.ndarray | None) -> BaselineComparison | None:
    """The TF-IDF baseline beside the kept model, on the same examples (None with baseline none, or when a
    checkpoint from an older textfit holds no scores)."""
    if run.config.baseline == "none" or kept_scores is None:
        return None
    best = run.state.best_metrics or {}
    threshold = run.task.thresholds_of(best, run.data.label_names) or run.task.threshold_of(best) or 0.5
    computed = run.baseline_job.result(run.data.train, run.data.eval) if run.baseline_job else None
    return compare(run.task, kept_scores, run.data.train, run.data.eval, run.data.label_names,
                   np.asarray(threshold), run.config.seed, computed)


def baseline_finding(baseline: BaselineComparison) -> str:
    return (f"No better than a bag of words: {baseline.sentence()} The interval includes no gain, so the "
            f"fine-tuned model is not shown to beat it. Try more training data or epochs, a larger max_length, "
            f"or a learning rate search (textfit tune); or keep the baseline, which is far cheaper to run.")


def result_elsewhere(run: FineTune) -> Result:
    """What a process other than the main one returns: the same metrics; the folder and card are the main one's."""
    state = run.state
    return Result(Path(run.config.output_dir), state.best_metrics, state.best, state.history, [], run.task.name,
                  run.train_seconds, card="")


def summary(run: FineTune) -> dict[str, Any]:
    """Speed and set-up of the run, for history.json."""
    out = {"train_seconds": round(run.train_seconds, 2), **{k: round(v, 2) for k, v in run.throughput.items()},
           "precision": run.precision, "processes": run.world}
    projected = projected_full_seconds(run)
    if projected is not None:
        out["projected_full_train_seconds"] = round(projected, 1)
    return out


def projected_full_seconds(run: FineTune) -> float | None:
    """When max_steps cut the run short of its epochs: how long the full run would train at this pace."""
    cfg = run.config
    planned = math.ceil(cfg.epochs * run.steps_per_epoch)
    if not cfg.max_steps or cfg.max_steps >= planned or not run.state.global_step:
        return None
    return run.train_seconds / run.state.global_step * planned


def card_data(run: FineTune, findings: list[str], pictures: list[tuple[str, str]],
              mistakes: list[dict[str, Any]], baseline: BaselineComparison | None = None,
              distilled: DistillationReport | None = None) -> CardData:
    data, state, task = run.data, run.state, run.task
    return CardData(
        config=run.config.to_dict(), base_model=run.source.base_model, license=run.source.license,
        dataset=data.dataset_name, eval_split=data.eval_split, label_names=data.label_names,
        train_counts=task.counts([ex.label for ex in data.train], data.label_names),
        eval_counts=task.counts([ex.label for ex in data.eval], data.label_names), task=task.name,
        train_size=len(data.train),
        targets=task.target_summary({"train": [ex.label for ex in data.train],
                                     "evaluation": [ex.label for ex in data.eval]}),
        vocab_note=run.vocab_note, findings=findings, pictures=pictures, data_warnings=run.data_warnings,
        mistakes=card_quotes(mistakes), mistake_count=len(mistakes),
        class_weights=None if run.class_weights is None else run.class_weights.tolist(),
        history=state.history, kept=state.best, metrics=state.best_metrics, precision=run.precision,
        total_steps=state.global_step, planned_steps=run.total_steps, steps_per_epoch=run.steps_per_epoch,
        warmup_steps=run.warmup_steps, processes=run.world, stopped_early=state.stopped_early,
        stop_reason=state.stop_reason, plan=run.plan.line() if run.plan else None,
        architecture=type(run.accelerator.unwrap_model(run.model)).__name__,
        baseline=baseline.sentence() if baseline else None,
        distillation=distilled.sentence() if distilled else None, head_learning_rate=head_learning_rate(run))


def head_learning_rate(run: FineTune) -> float | None:
    """The output layer's base rate where it differs from the encoder's (a Trainer card has one rate for all)."""
    rates = set(run.scheduler.base_lrs)
    return max(rates) if len(rates) > 1 else None


def closing_table(run: FineTune) -> str:
    """The results table, the kept step and the speed, as the terminal shows them at the end."""
    header, rows = results_rows(run.state.history, run.data.label_names)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(row: list[str]) -> str:
        return "  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True))

    kept = run.state.best
    lines = [line(header), *map(line, rows)]
    if kept:
        lines.append(f"kept: step {kept['step']} (epoch {kept['epoch']:g}), {kept_words(kept)}")
    speed = run.throughput
    lines.append(f"model written to {Path(run.config.output_dir)}  ({speed['samples_per_second']:.1f} samples/s, "
                 f"{speed['tokens_per_second']:.0f} tokens/s, {run.train_seconds:.0f} s)")
    projected = projected_full_seconds(run)
    if projected is not None:
        cfg = run.config
        planned = math.ceil(cfg.epochs * run.steps_per_epoch)
        lines.append(f"max_steps {cfg.max_steps} of the {planned:,} steps {cfg.epochs:g} epochs take: the full run "
                     f"would train for about {duration(projected)} here")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
