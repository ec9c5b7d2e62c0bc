"""What observes the training loop without living in it: the console, experiment tracking (and, in tune.py,
Optuna's pruning). The loop calls each hook at its moment; a callback reads the run and changes nothing in it.

Hooks (all optional): on_train_begin, on_step_end, on_log, on_replan, on_evaluate, on_stop, on_train_end, on_save.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from textfit import tracking
from textfit.findings import OVERFIT_PATIENCE, overfitting_so_far
from textfit.metrics import scalar_metrics
from textfit.training.output import closing_table

if TYPE_CHECKING:
    from textfit.training.finetune import FineTune
    from textfit.training.output import Result


@dataclass
class StepReport:
    """One optimizer step as the console shows it."""

    loss: float
    learning_rate: float
    samples_per_second: float
    tokens_per_second: float


class Callback:
    """Every hook does nothing; a callback overrides the ones it needs."""

    def on_train_begin(self, run: FineTune) -> None: ...

    def on_step_end(self, run: FineTune, step: StepReport) -> None: ...

    def on_log(self, run: FineTune, values: dict[str, float]) -> None: ...

    def on_replan(self, run: FineTune, line: str) -> None:
        """A time budget fitted the step count to the real steps (run.total_steps is the new count)."""

    def on_evaluate(self, run: FineTune, row: dict[str, Any], kept: bool) -> None:
        """After each evaluation: `row` is the history row just added; `kept`: it is the kept one now (the best so
        far, or the last of a run that reached its end: run.state.best["rule"] says which)."""

    def on_stop(self, run: FineTune, reason: str) -> None:
        """The loop stops before its last step (early stopping, divergence)."""

    def on_train_end(self, run: FineTune) -> None: ...

    def on_save(self, run: FineTune, result: Result | None) -> None:
        """The output folder is written (`result` is None on processes other than the main one)."""


class Console(Callback):
    """The banner, a progress bar, a line every logging_steps and per evaluation, and the closing table."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_begin(self, run: FineTune) -> None:
        if run.is_main:
            print(banner(run))
        self.bar = tqdm(total=run.total_steps, initial=run.state.global_step, disable=None if run.is_main else True,
                        desc="training", unit="step", dynamic_ncols=True)

    def on_step_end(self, run: FineTune, step: StepReport) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{step.loss:.4f}", lr=f"{step.learning_rate:.2e}",
                                 samples_s=f"{step.samples_per_second:.1f}", tokens_s=f"{step.tokens_per_second:.0f}")

    def on_log(self, run: FineTune, values: dict[str, float]) -> None:
        if run.is_main:
            tqdm.write(f"step {run.state.global_step}: train loss {values['train/loss']:.4f}, "
                       f"{values['train/samples_per_second']:.1f} samples/s, "
                       f"{values['train/tokens_per_second']:.0f} tokens/s")

    def on_replan(self, run: FineTune, line: str) -> None:
        if self.bar is not None:
            self.bar.total = run.total_steps
            self.bar.refresh()
        if run.is_main:
            tqdm.write(line)

    def on_evaluate(self, run: FineTune, row: dict[str, Any], kept: bool) -> None:
        if not run.is_main:
            return
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "epoch"))
        tag = f"  [{run.state.best['rule']}, kept]" if kept else ""
        tqdm.write(f"eval @ step {row['step']} (epoch {row['epoch']:g}): {shown}{tag}")
        said = overfitting_so_far(run.state.history, run.task.main_metric)
        if said:
            best = run.state.best
            kept = f"; the checkpoint of step {best['step']} is kept" if best and best["metric"] == "loss" else ""
            metric = run.task.main_metric
            why = ("training loss falls: the model is overfitting" if said == "overfitting" else
                   f"{metric} improves: the model grows confident rather than overfitting")
            other = f" (--metric-for-best {metric} keeps the best {metric})" if kept and said != "overfitting" else ""
            tqdm.write(f"finding: validation loss has risen for {OVERFIT_PATIENCE} evaluations while {why}{kept}"
                       f"{other}")

    def on_stop(self, run: FineTune, reason: str) -> None:
        if run.is_main:
            tqdm.write(reason)

    def on_train_end(self, run: FineTune) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_save(self, run: FineTune, result: Result | None) -> None:
        if result is None:
            return
        print(closing_table(run))
        if result.baseline is not None:
            print(f"baseline: {result.baseline.sentence()}")
        for finding in result.findings:
            print(f"finding: {finding}")


def banner(run: FineTune) -> str:
    d, cfg = run.data, run.config
    return (f"textfit: {run.source.base_model} on {d.dataset_name}: {len(d.train)} train / {len(d.eval)} eval "
            f"({d.eval_split}), labels {', '.join(d.label_names)}\n"
            f"  {run.total_steps} steps ({run.steps_per_epoch}/epoch), batch {cfg.train_batch_size}, "
            f"lr {cfg.learning_rate:g}, {run.precision}{run.precision_note}, {run.world} process(es)")


class Tracking(Callback):
    """Settings, losses, evaluations, the kept model's metrics and the card, through Accelerate's trackers."""

    def on_train_begin(self, run: FineTune) -> None:
        tracking.start(run.accelerator, run.config.to_dict())

    def on_log(self, run: FineTune, values: dict[str, float]) -> None:
        tracking.log(run.accelerator, {k: v for k, v in values.items() if k != "train/tokens_per_second"},
                     run.state.global_step)

    def on_evaluate(self, run: FineTune, row: dict[str, Any], kept: bool) -> None:
        tracking.log(run.accelerator, {f"eval/{k}": v for k, v in row.items() if k not in ("step", "epoch")},
                     row["step"])

    def on_save(self, run: FineTune, result: Result | None) -> None:
        if result is None:
            tracking.finish(run.accelerator, {}, "", run.state.global_step)
        else:
            tracking.finish(run.accelerator, scalar_metrics(result.metrics), result.card, run.state.global_step)
