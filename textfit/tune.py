"""Hyperparameter search with Optuna: each trial is an ordinary training run with sampled settings.

    textfit tune --recipe sst2-distilbert --trials 12 --output-dir outputs/sst2-tuned --max-train-samples 4000

- The search space is the recipe's `search_space:` mapping (setting -> {low, high[, log]} or {choices: [...]}),
  else SEARCH_SPACE below; the objective is the recipe's metric_for_best (the task's main metric unless told).
- Trial 0 runs the recipe's own settings, so the table says whether the search beat them.
- Every evaluation is reported to Optuna at the number of examples trained on (comparable across batch sizes); a
  trial trailing the median of earlier trials there is pruned (stopped early).
- The study lives in OUTPUT/study.db (SQLite). Killed and started again, the search goes on from the trials it
  has until N have finished; the trial the kill cut short is run again with the same settings.
- The best trial's model is OUTPUT/best, an ordinary output folder; OUTPUT/trials.md tables every trial and
  OUTPUT/tuning.png draws the history and which settings mattered.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textfit.config import TrainConfig, load_recipe_file
from textfit.errors import ConfigError, TrainingDiverged
from textfit.io import atomic_write_text, replace_dir
from textfit.metrics import LOWER_IS_BETTER
from textfit.training.budget import parse_budget
from textfit.training.callbacks import Callback

if TYPE_CHECKING:
    from textfit.training import FineTune

SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"low": 1e-5, "high": 2e-4, "log": True},  # the knob that matters most for fine-tuning
    "train_batch_size": {"choices": [16, 32]},
    "epochs": {"low": 1, "high": 4},
    "warmup_ratio": {"low": 0.0, "high": 0.2},
    "weight_decay": {"low": 0.0, "high": 0.1},
}
UNLIMITED = 1_000_000  # trials, when only a time budget ends the search
REPORT_SECONDS = 10.0  # writing trials.md and its picture at the end
STARTUP_TRIALS = 2  # trials that run to the end before pruning starts: the median needs something to stand on
STUDY_NAME = "textfit"


def search_space(recipe_file: str | Path | None) -> dict[str, dict[str, Any]]:
    """The recipe's `search_space:` (validated against the settings train knows), or the default one."""
    space = SEARCH_SPACE
    if recipe_file:
        raw = _yaml(recipe_file).get("search_space")
        if raw is not None:
            space = raw
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{recipe_file}: search_space must map settings to {{low, high}} or {{choices: [...]}}")
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, spec in space.items():
        if name not in known:
            raise ConfigError(f"search_space: {name!r} is not a training setting; known: {', '.join(sorted(known))}")
        if not isinstance(spec, dict) or not ("choices" in spec or {"low", "high"} <= set(spec)):
            raise ConfigError(f"search_space.{name}: give {{low: .., high: ..}} (optionally log: true) "
                              f"or {{choices: [..]}}, not {spec!r}")
        if "choices" not in spec and not spec["low"] < spec["high"]:
            raise ConfigError(f"search_space.{name}: low ({spec['low']}) must be below high ({spec['high']})")
    return space


def _yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    load_recipe_file(path)  # the same checks and error messages as train
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


WHOLE = ("epochs",)  # float settings searched over whole numbers when the range is given in whole numbers


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    if "choices" in spec:
        return trial.suggest_categorical(name, list(spec["choices"]))
    kind = str(next(f.type for f in dataclasses.fields(TrainConfig) if f.name == name))
    ints = isinstance(spec["low"], int) and isinstance(spec["high"], int)
    if ints and ("int" in kind or name in WHOLE):
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))


def _recipe_values(base: TrainConfig, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The recipe's own settings as trial 0, each moved into its range (a warning says when one had to be)."""
    values = {}
    for name, spec in space.items():
        value = getattr(base, name)
        if "choices" in spec:
            value = value if value in spec["choices"] else spec["choices"][0]
        else:
            value = min(max(value, spec["low"]), spec["high"])
            if name == "epochs" and isinstance(spec["low"], int):
                value = round(value)
        if value != getattr(base, name):
            print(f"tune: the recipe's {name}={getattr(base, name)!r} is outside the search space; trial 0 uses "
                  f"{value!r}")
        values[name] = value
    return values


def objective_metric(base: TrainConfig) -> str:
    """What the search optimises: metric_for_best, with auto read from the data's task (its main metric)."""
    if base.metric_for_best != "auto":
        return base.metric_for_best
    from textfit.training.finetune import load_data

    return load_data(base).task.main_metric


def tune(base: TrainConfig, trials: int | None, space: dict[str, dict[str, Any]],
         started: float | None = None) -> dict[str, Any]:
    """Run the search until `trials` trials have finished (completed or pruned), or until the next trial would not
    fit in base.time_budget (counted from `started`); return the best trial's summary."""
    if trials is None and not base.time_budget:
        raise ConfigError("give --trials N, --time-budget (e.g. 1h), or both")
    trials = UNLIMITED if trials is None else trials
    if trials < 1:
        raise ConfigError(f"--trials {trials}: must be at least 1")
    end = (started or time.time()) + parse_budget(base.time_budget) if base.time_budget else None
    base = dataclasses.replace(base, metric_for_best=objective_metric(base))  # every trial keeps by the objective
    out = Path(base.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = _open_study(base, space, out)
    objective = Objective(base, space, out, study, end)
    longest = 0.0  # the longest trial of this process: what the next one may take
    while _finished(study) < trials:
        if end is not None and longest and time.time() + longest > end - REPORT_SECONDS:
            print(f"tune: {end - time.time():.0f} s of the time budget left, less than the longest trial so far "
                  f"({longest:.0f} s): no further trial", flush=True)
            break
        start = time.time()
        study.optimize(objective, n_trials=1, catch=())
        longest = max(longest, time.time() - start)
        shown = "" if trials == UNLIMITED else f" of {trials}"
        print(f"tune: {_finished(study)}{shown} trials finished", flush=True)
    summary = write_report(study, out, base.metric_for_best, min(trials, _finished(study)))
    print(summary["text"])
    return summary


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("textfit tune needs Optuna: pip install 'textfit[tune]' (or optuna)") from None
    return optuna


def _open_study(base: TrainConfig, space: dict[str, dict[str, Any]], out: Path) -> Any:
    """The study in OUT/study.db, new or continued: a killed process's trial is queued again with its settings,
    and a new study starts with the recipe's own settings."""
    optuna = _optuna()
    from optuna.trial import TrialState

    metric = base.metric_for_best
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{(out / 'study.db').resolve()}", study_name=STUDY_NAME, direction=direction,
        load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0))
    if study.trials:  # a continued search: the sampler must not draw the first run's settings all over again
        study.sampler = optuna.samplers.TPESampler(seed=base.seed + len(study.trials))
    if study.direction.name.lower() != direction:
        raise ConfigError(f"{out / 'study.db'}: holds a study that {study.direction.name.lower()}s; this one "
                          f"{direction}s {metric}. Use another --output-dir")
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # a killed process's trial
        study._storage.set_trial_state_values(stale._trial_id, TrialState.FAIL)
        study.enqueue_trial(stale.params, user_attrs={"rerun_of": stale.number})
        print(f"tune: trial {stale.number} was interrupted; it runs again with the same settings")
    if not study.trials:
        study.enqueue_trial(_recipe_values(base, space), user_attrs={"recipe_defaults": True})
    shutil.rmtree(out / "trials", ignore_errors=True)  # an interrupted trial's partial folder
    return study


class Objective:
    """One trial: train with the sampled settings (pruned by the median rule, stopped by the budget's end); the
    best model so far is kept as OUT/best."""

    def __init__(self, base: TrainConfig, space: dict[str, dict[str, Any]], out: Path, study: Any,
                 end: float | None):
        self.base, self.space, self.out, self.study, self.end = base, space, out, study, end

    def __call__(self, trial: Any) -> float:
        from textfit.training import FineTune
        from textfit.training.callbacks import Console, Tracking

        optuna, metric = _optuna(), self.base.metric_for_best
        params = {name: _suggest(trial, name, spec) for name, spec in self.space.items()}
        folder = self.out / "trials" / f"trial-{trial.number:03d}"
        config = dataclasses.replace(self.base, **params, output_dir=str(folder), overwrite=True, resume=False,
                                     time_budget=None)  # a trial is not planned: the search compares settings
        print(f"tune: trial {trial.number}: " + ", ".join(f"{k}={_show(v)}" for k, v in params.items()), flush=True)
        run = FineTune(config, [Console(), Tracking(), PruneTrial(trial, metric)], deadline=self.end)
        try:
            run.setup()
            run.train()
            run.save()
        except TrainingDiverged as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except optuna.TrialPruned:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        trial.set_user_attr("kept_step", run.state.best["step"])
        return self._keep_if_best(trial, folder, float(run.state.best["value"]))

    def _keep_if_best(self, trial: Any, folder: Path, value: float) -> float:
        direction = self.study.direction.name.lower()
        previous = _best_value(self.study, direction)
        if previous is None or (value < previous if direction == "minimize" else value > previous):
            replace_dir(folder, self.out / "best")  # the best model so far, as an ordinary output folder
            trial.set_user_attr("saved_as_best", True)
        shutil.rmtree(folder, ignore_errors=True)
        return value


class PruneTrial(Callback):
    """Optuna's median pruning, at each evaluation: a trial whose validation metric trails the median of earlier
    trials after as many examples stops there."""

    def __init__(self, trial: Any, metric: str):
        self.trial, self.metric = trial, metric

    def on_evaluate(self, run: FineTune, row: dict[str, Any], kept: bool) -> None:
        import optuna

        seen = run.state.global_step * run.config.train_batch_size
        self.trial.report(float(row[self.metric]), seen)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.metric} {row[self.metric]:.4f} after {seen:,} examples trails the "
                                     "median of earlier trials")


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _best_value(study: Any, direction: str) -> float | None:
    from optuna.trial import TrialState

    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not values:
        return None
    return min(values) if direction == "minimize" else max(values)


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_report(study: Any, out: Path, metric: str, wanted: int) -> dict[str, Any]:
    """OUTPUT/trials.md (every trial, and whether the search beat the recipe's settings) and OUTPUT/tuning.png."""
    from optuna.trial import TrialState

    shown = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    names = sorted({k for t in shown for k in t.params})
    lines = [f"# Hyperparameter search: {len(shown)} trials, objective validation {metric} "
             f"({study.direction.name.lower()})", "",
             "| trial | state | " + " | ".join(names) + f" | {metric} |",
             "|---|---|" + "---|" * len(names) + "---|"]
    for t in shown:
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                      if t.intermediate_values else math.nan)
        state = "complete" if t.state == TrialState.COMPLETE else "pruned"
        if t.user_attrs.get("recipe_defaults"):
            state += " (the recipe's settings)"
        if "rerun_of" in t.user_attrs:
            state += f" (trial {t.user_attrs['rerun_of']} again: a kill interrupted it)"
        lines.append(f"| {t.number} | {state} | " + " | ".join(_show(t.params.get(n, "")) for n in names)
                     + f" | {value:.4f} |")
    complete = [t for t in shown if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"all {len(shown)} trials were pruned or diverged; widen the search space")
    best = study.best_trial
    default = next((t for t in shown if t.user_attrs.get("recipe_defaults")), None)
    verdict = f"Best: trial {best.number}, validation {metric} {best.value:.4f}; its model is {out / 'best'}."
    if default is not None and default.state == TrialState.COMPLETE and default.number != best.number:
        verdict += (f" It beats the recipe's own settings (trial {default.number}: {default.value:.4f}) by "
                    f"{abs(best.value - default.value):.4f}.")
    elif default is not None and default.number == best.number:
        verdict += " The search did not beat the recipe's own settings (trial 0 is the best)."
    lines += ["", verdict]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "trials.md", text)
    picture = _draw(study, out)
    return {"text": text, "best_trial": best.number, "best_value": best.value, "best_params": best.params,
            "recipe_value": default.value if default is not None else None, "trials": len(shown),
            "picture": picture}


def _draw(study: Any, out: Path) -> str | None:
    """History of the objective and the importance of each setting (fANOVA), side by side."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        history = plot_optimization_history(study).figure
        history.savefig(out / ".history.png", dpi=90, bbox_inches="tight")
        plt.close(history)
        try:
            importance = plot_param_importances(study).figure
        except (RuntimeError, ValueError):  # fewer than two finished trials, or no setting varied
            importance = None
        if importance is not None:
            importance.savefig(out / ".importance.png", dpi=90, bbox_inches="tight")
            plt.close(importance)
    parts = [out / ".history.png"] + ([out / ".importance.png"] if importance is not None else [])
    images = [plt.imread(p) for p in parts]
    fig, axes = plt.subplots(1, len(images), figsize=(6.5 * len(images), 4.2))
    for axis, image in zip([axes] if len(images) == 1 else axes, images, strict=True):
        axis.imshow(image)
        axis.axis("off")
    fig.tight_layout()
    staging = out / ".tuning.png"
    fig.savefig(staging, dpi=100)
    plt.close(fig)
    staging.replace(out / "tuning.png")
    for p in parts:
        p.unlink(missing_ok=True)
    return "tuning.png"
