"""The Python API: `textfit.train(TrainConfig(...))` and `textfit.train(dataset=..., **settings)`, and the
callbacks that observe a run."""

from __future__ import annotations

import json

import pytest

import textfit
from textfit.errors import ConfigError
from textfit.training import Callback, FineTune


def test_train_with_settings_returns_the_result(small_model, sst2_sample, tmp_path):
    result = textfit.train(dataset=str(sst2_sample), model=str(small_model), output_dir=str(tmp_path / "run"),
                           max_steps=30, max_train_samples=480, max_eval_samples=96, learning_rate=3e-4,
                           max_length=48, eval_strategy="steps", eval_steps=15)
    assert isinstance(result, textfit.Result)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result.metrics == saved["eval"] and result.kept == saved["kept"] and result.findings == saved["findings"]
    assert [row["step"] for row in result.history] == [15, 30]
    assert result.card == (tmp_path / "run" / "README.md").read_text()
    assert result.task == "single" and result.train_seconds > 0
    assert result.load().predict(["a gorgeous , witty , seductive movie ."])[0]["label"] in ("negative", "positive")


def test_a_config_and_settings_over_it(small_model, sst2_sample, tmp_path):
    config = textfit.TrainConfig(dataset=str(sst2_sample), model=str(small_model), output_dir=str(tmp_path / "a"),
                                 max_steps=4, max_train_samples=64, max_eval_samples=32, max_length=32,
                                 eval_strategy="no")
    result = textfit.train(config, output_dir=str(tmp_path / "b"), seed=7)
    assert result.output_dir == tmp_path / "b" and not (tmp_path / "a").exists()
    assert "seed: 7" in (tmp_path / "b" / "recipe.yaml").read_text()


def test_a_misspelt_setting_names_the_right_one():
    with pytest.raises(ConfigError, match=r"learnig_rate \(did you mean learning_rate\?\)"):
        textfit.train(dataset="x", learnig_rate=1e-4)
    config = textfit.TrainConfig(dataset="x")
    with pytest.raises(ConfigError, match=r"epoch \(did you mean epochs\?\)"):
        textfit.train(config, epoch=2)


class Recorder(Callback):
    def __init__(self):
        self.events: list[str] = []

    def on_train_begin(self, run):
        self.events.append("begin")

    def on_log(self, run, values):
        self.events.append(f"log {run.state.global_step} {sorted(values)}")

    def on_evaluate(self, run, row, kept):
        self.events.append(f"evaluate {row['step']} {kept == (run.state.best['step'] == row['step'])}")

    def on_train_end(self, run):
        self.events.append("end")

    def on_save(self, run, result):
        self.events.append(f"save {result.output_dir.name}")


def test_callbacks_observe_the_loop(small_model, sst2_sample, tmp_path, capsys):
    recorder = Recorder()
    run = FineTune(textfit.TrainConfig(dataset=str(sst2_sample), model=str(small_model), max_steps=10,
                                       max_train_samples=160, max_eval_samples=32, max_length=32,
                                       eval_strategy="steps", eval_steps=5, logging_steps=5,
                                       output_dir=str(tmp_path / "observed")), callbacks=[recorder])
    run.setup()
    state = run.train()
    assert not (tmp_path / "observed" / "README.md").exists()  # train() trains; save() writes the folder
    assert state.global_step == 10 and len(state.history) == 2
    run.save()
    logged = "['train/learning_rate', 'train/loss', 'train/samples_per_second', 'train/tokens_per_second']"
    assert recorder.events == ["begin", f"log 5 {logged}", "evaluate 5 True", f"log 10 {logged}",
                               "evaluate 10 True", "end", "save observed"]
    assert "training" not in capsys.readouterr().out  # the console is a callback too: without it, silence
