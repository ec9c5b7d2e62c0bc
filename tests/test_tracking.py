"""--report-to tensorboard | mlflow: what a run logs, read back with each tracker's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.training import train


def _train(tmp_path: Path, model: Path, report_to: str) -> Path:
    out = tmp_path / f"sst2-{report_to}"
    train(TrainConfig(model=str(model), dataset=str(SAMPLES / "sst2_sample"), output_dir=str(out),
                      max_train_samples=160, max_eval_samples=80, max_length=48, epochs=2, learning_rate=3e-4,
                      eval_strategy="steps", eval_steps=5, logging_steps=5, report_to=report_to))
    return out


def _history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())["history"]


def test_tensorboard_gets_settings_losses_evaluations_and_the_card(small_model, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _train(tmp_path, small_model, "tensorboard")
    logs = out / "runs" / out.name
    events = EventAccumulator(str(logs), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    history = _history(out)
    logged = {e.step: e.value for e in events.Scalars("eval/accuracy")}
    assert logged == pytest.approx({row["step"]: row["accuracy"] for row in history})
    assert [e.step for e in events.Scalars("eval/loss")] == [row["step"] for row in history]
    assert len(events.Scalars("train/loss")) == history[-1]["step"] // 5
    kept = json.loads((out / "metrics.json").read_text())["eval"]
    assert events.Scalars("final/accuracy")[-1].value == pytest.approx(kept["accuracy"])
    card = events.Tensors("model_card/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert card == (out / "README.md").read_text()
    hparams = next(logs.glob("*/hparams.yml")).read_text()
    assert "learning_rate: 0.0003" in hparams and "report_to: tensorboard" in hparams


def test_mlflow_gets_settings_losses_evaluations_and_the_card(small_model, tmp_path):
    from mlflow.tracking import MlflowClient

    out = _train(tmp_path, small_model, "mlflow")
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(out.name)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["learning_rate"] == "0.0003" and run.data.params["max_length"] == "48"
    history = _history(out)
    losses = client.get_metric_history(run.info.run_id, "eval/loss")
    logged = sorted((m.step, m.value) for m in losses)
    assert [step for step, _ in logged] == [r["step"] for r in history]
    assert [value for _, value in logged] == pytest.approx([r["loss"] for r in history])
    kept = json.loads((out / "metrics.json").read_text())["eval"]
    assert run.data.metrics["final/f1"] == pytest.approx(kept["f1"])
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(out / "mlruns")
    card = Path(client.download_artifacts(run.info.run_id, "README.md", str(tmp_path)))
    assert card.read_text() == (out / "README.md").read_text()


def test_unknown_tracker_is_refused():
    with pytest.raises(ConfigError, match="report_to='wandb': choose one of none, tensorboard, mlflow"):
        TrainConfig(report_to="wandb")
