"""Experiment tracking through Accelerate's trackers: `--report-to tensorboard | mlflow | none`.

What goes to the tracker: the run's settings (as hyperparameters), training loss and learning rate every
logging_steps, every evaluation's metrics (`eval/accuracy`, `eval/loss`, ...), the kept model's metrics
(`final/...`) and the model card. Where it goes, unless `tracking_uri` says otherwise:
- tensorboard: OUTPUT/runs/<output folder name>/ (`tensorboard --logdir OUTPUT/runs`);
- mlflow: $MLFLOW_TRACKING_URI when set, else a SQLite store OUTPUT/mlflow.db with artifacts in OUTPUT/mlruns
  (`mlflow ui --backend-store-uri sqlite:///OUTPUT/mlflow.db`); the experiment is named after the output folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from accelerate.utils import ProjectConfiguration

from textfit.errors import ConfigError

TRACKERS = ("none", "tensorboard", "mlflow")
NEEDS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # the module each tracker imports


def accelerator_kwargs(report_to: str, output_dir: str, tracking_uri: str | None) -> dict[str, Any]:
    """`log_with` and where the tracker writes, for `Accelerator(...)`."""
    if report_to not in TRACKERS:
        raise ConfigError(f"report_to={report_to!r}: choose one of {', '.join(TRACKERS)}")
    if report_to == "none":
        return {}
    try:
        __import__(NEEDS[report_to])
    except ImportError:
        raise ConfigError(f"--report-to {report_to} needs {NEEDS[report_to]}: pip install 'textfit[tracking]'") \
            from None
    out = Path(output_dir).resolve()
    if report_to == "tensorboard":
        logging_dir = tracking_uri or str(out / "runs")
    else:
        logging_dir = str(out / "mlruns")  # artifacts (the card); the runs themselves go to the tracking URI
        import mlflow

        mlflow.set_tracking_uri(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                                or f"sqlite:///{out / 'mlflow.db'}")
    return {"log_with": report_to, "project_config": ProjectConfiguration(project_dir=str(out),
                                                                          logging_dir=logging_dir)}


def start(accelerator: Any, config: dict[str, Any]) -> None:
    """Open the run and record the settings (None becomes "none": trackers take numbers, text and booleans)."""
    if not accelerator.log_with:
        return
    settings = {k: ("none" if v is None else v) for k, v in config.items()}
    # MLflow is not given Accelerate's logging_dir: without it, artifacts would land in ./mlruns wherever we run
    mlflow = any(getattr(kind, "value", kind) == "mlflow" for kind in accelerator.log_with)
    artifacts = {"mlflow": {"logging_dir": accelerator.logging_dir}} if mlflow else {}
    accelerator.init_trackers(Path(config["output_dir"]).name, config=settings, init_kwargs=artifacts)


def log(accelerator: Any, values: dict[str, float], step: int) -> None:
    if accelerator.log_with:
        accelerator.log(values, step=step)


def finish(accelerator: Any, metrics: dict[str, float], card: str, step: int) -> None:
    """The kept model's metrics and the card, then close the run."""
    if not accelerator.log_with:
        return
    accelerator.log({f"final/{k}": v for k, v in metrics.items()}, step=step)
    if accelerator.is_main_process:
        for tracker in accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_text("model_card", card, global_step=step)
                tracker.writer.flush()
            elif tracker.name == "mlflow":
                import mlflow

                mlflow.log_text(card, "README.md")
    accelerator.end_training()
