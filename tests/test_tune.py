"""`textfit tune`: an Optuna search over real SST-2 sentences that is killed midway and started again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import SAMPLES, run_textfit
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.tune import search_space

TRIALS = 6


def _recipe(tmp_path, small_model) -> str:
    recipe = {"dataset": str(SAMPLES / "sst2_sample"), "model": str(small_model), "max_length": 48,
              "max_train_samples": 400, "max_eval_samples": 150, "epochs": 1, "eval_strategy": "steps",
              "eval_steps": 5, "learning_rate": 1e-5, "train_batch_size": 16,
              "search_space": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
                               "train_batch_size": {"choices": [16, 32]}}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _trials(db, *states: str) -> list:
    import optuna
    from optuna.trial import TrialState

    if not db.exists():
        return []
    try:
        study = optuna.load_study(study_name="textfit", storage=f"sqlite:///{db}")
    except KeyError:  # the study is being created
        return []
    return study.get_trials(deepcopy=False, states=tuple(TrialState[s] for s in states))


def _finished(db) -> list:
    return _trials(db, "COMPLETE", "PRUNED")


def _progress(db) -> tuple[int, bool]:
    """(trials finished, whether a running trial has drawn both its settings), read straight from Optuna's SQLite
    tables: loading the study each time was too slow to poll while trials take a few seconds each."""
    if not db.exists():
        return 0, False
    with contextlib.closing(sqlite3.connect(db, timeout=1)) as con:
        try:
            done = con.execute("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()[0]
            drawn = con.execute("SELECT count(*) FROM trial_params JOIN trials USING (trial_id) "
                                "WHERE trials.state = 'RUNNING'").fetchone()[0]
        except sqlite3.OperationalError:  # the tables are being created
            return 0, False
    return done, drawn == 2


@pytest.mark.slow
def test_a_killed_search_continues_to_the_same_number_of_trials(small_model, tmp_path):
    import optuna

    import textfit

    recipe, out = _recipe(tmp_path, small_model), tmp_path / "search"
    command = [sys.executable, "-m", "textfit", "tune", "--config", recipe, "--trials", str(TRIALS),
               "--output-dir", str(out)]
    first = subprocess.Popen(command, env=os.environ | {"HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    db = out / "study.db"
    # the kill lands inside a trial: at least 3 finished and the next one started with its settings drawn
    while True:
        done, drawn = _progress(db)
        if (done >= 3 and drawn) or first.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = len(_finished(out / "study.db"))
    assert 3 <= before < TRIALS

    again = run_textfit("tune", "--config", recipe, "--trials", TRIALS, "--output-dir", out, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="textfit", storage=f"sqlite:///{out / 'study.db'}")
    assert len(_finished(out / "study.db")) == TRIALS  # the same number as an uninterrupted search
    # the kill cut a trial short: it ran again with its own settings, and the cut one is marked failed
    assert "was interrupted" in again.stdout
    reruns = [t for t in study.trials if "rerun_of" in t.user_attrs]
    assert len(reruns) == 1
    interrupted = study.trials[reruns[0].user_attrs["rerun_of"]]
    assert reruns[0].params == interrupted.params and interrupted.state.name == "FAIL"

    report = (out / "trials.md").read_text()
    assert report.count("\n| ") == TRIALS + 1  # header and one row per finished trial
    assert "(the recipe's settings)" in report
    assert ("beats the recipe's own settings" in report) != ("did not beat the recipe's own settings" in report)
    assert (out / "tuning.png").stat().st_size > 10_000
    # the best trial's model is an ordinary output folder, scored as the study says
    kept = json.loads((out / "best" / "metrics.json").read_text())["eval"]
    assert kept["accuracy"] == pytest.approx(study.best_value, abs=1e-9)  # the objective: the task's main metric
    assert textfit.load(out / "best").predict(["a gorgeous, witty film"])[0]["label"] in ("negative", "positive")
    default = next(t for t in study.trials if t.user_attrs.get("recipe_defaults"))
    assert default.number == 0 and default.params == {"learning_rate": 1e-5, "train_batch_size": 16}


def test_search_space_is_checked_where_it_is_read(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search_space:\n  learning_rat: {low: 1.0e-5, high: 1.0e-4}\n")
    with pytest.raises(ConfigError, match="'learning_rat' is not a training setting"):
        search_space(bad)
    bad.write_text("search_space:\n  learning_rate: {low: 1.0e-4, high: 1.0e-5}\n")
    with pytest.raises(ConfigError, match=r"low \(0.0001\) must be below high"):
        search_space(bad)
    bad.write_text("search_space:\n  epochs: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"search_space\.epochs: give"):
        search_space(bad)
    assert "learning_rate" in search_space(None)
    # a recipe with a search space still trains as an ordinary recipe
    ok = tmp_path / "ok.yaml"
    ok.write_text("dataset: x\nsearch_space:\n  epochs: {low: 1, high: 3}\n")
    assert TrainConfig.from_sources(ok).dataset == "x"
