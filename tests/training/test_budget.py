"""--time-budget (textfit/training/budget.py): the plan from a probe, flags that win over it, and runs on real
data that end inside their budget, with the CPU made busy after the plan was made (train) and trials that stop
starting when the next would not fit (tune)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from tests.conftest import SAMPLES, SHARED_DATA
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.training.budget import ENOUGH_EXAMPLES, Probe, make_plan, parse_budget, worth_timing

ENV = os.environ | {"HF_HUB_OFFLINE": "1"}


def test_budgets_are_read_with_their_unit():
    assert parse_budget("90s") == 90 and parse_budget("20m") == 1200 and parse_budget("1.5h") == 5400
    for bad in ("20", "ten minutes", "0m", "-5m"):
        with pytest.raises(ConfigError, match=r"with its unit, e\.g\. 90s, 20m or 1h"):
            parse_budget(bad)


def _run(n_train: int, n_eval: int, **settings) -> SimpleNamespace:
    """What make_plan reads of a run: its config and its examples."""
    examples = [SimpleNamespace(text="x")]
    return SimpleNamespace(config=TrainConfig(**settings), data=SimpleNamespace(train=examples * n_train,
                                                                                eval=examples * n_eval))


def _probe(token_lengths: list[int], fixed_length: int | None = None) -> Probe:
    """What the probe would measure for texts of these lengths, at the lengths it would time."""
    lengths = np.array(token_lengths)
    # seconds per example at full length, roughly MiniLM-L6 bf16 on 2 cores: linear in tokens, attention on top
    train = {n: 0.02 * n / 128 * (1 + n / 1536) for n in worth_timing(lengths, 512, fixed_length)}
    return Probe(train, {n: s / 4 for n, s in train.items()}, lengths, seconds=3.0)


def test_the_plan_buys_examples_first_then_length_then_epochs():
    reviews = _probe([900] * 50 + [200] * 50)  # IMDB-like: half the texts longer than 512 tokens
    small = make_plan(_run(25_000, 25_000), 300, 10, reviews, set())
    large = make_plan(_run(25_000, 25_000), 3600, 10, reviews, set())
    assert small.settings["max_length"] < large.settings["max_length"]
    assert small.train_examples >= min(ENOUGH_EXAMPLES, 25_000) or small.settings["max_length"] == 64
    assert large.settings["truncation"] == "head+tail"  # half the texts are cut: keep their endings
    assert large.eval_examples < 25_000 and large.evaluations >= 1  # one evaluation may not eat the budget
    for plan in (small, large):
        assert plan.eta <= plan.budget
    few = make_plan(_run(1_000, 200), 3600, 10, reviews, set())
    assert few.settings["epochs"] == 3 and few.settings["max_train_samples"] is None  # all data, 3 epochs
    sentences = make_plan(_run(60_000, 872), 600, 10, _probe([20] * 99 + [70]), set())
    assert sentences.settings["max_length"] == 64 and sentences.settings["truncation"] == "head"


def test_flags_win_over_the_plan():
    reviews = _probe([900] * 100, fixed_length=128)
    plan = make_plan(_run(25_000, 300, max_length=128, epochs=1, max_eval_samples=300), 1200, 10, reviews,
                     {"max_length", "epochs", "max_eval_samples"})
    assert plan.settings["max_length"] == 128 and plan.settings["epochs"] == 1
    assert plan.eval_examples == 300 and plan.settings["max_eval_samples"] == 300
    with pytest.raises(ConfigError, match="too little for one training step"):
        make_plan(_run(25_000, 25_000), 12, 10, reviews, set())


def _watch(command: list[str], budget: float, busy_after: str | None = None) -> tuple[float, str]:
    """Run a textfit command; with `busy_after`, start two CPU-bound processes when that line is printed (the
    machine gets busier after the plan was made). Returns its wall time and output."""
    start = time.time()
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, burners = [], []
    for line in process.stdout:
        lines.append(line)
        if busy_after and line.startswith(busy_after) and not burners:
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    process.wait(timeout=budget * 3)
    for burner in burners:
        burner.kill()
    assert process.returncode == 0, "".join(lines)
    return time.time() - start, "".join(lines)


def test_a_run_on_real_data_ends_inside_its_budget_on_a_busy_cpu(small_model, tmp_path):
    out, budget = tmp_path / "budget", 60
    seconds, output = _watch([sys.executable, "-m", "textfit", "train", "--model", str(small_model), "--dataset",
                              str(SHARED_DATA / "imdb"), "--eval-split", "test", "--time-budget", f"{budget}s",
                              "--max-length", "128", "--learning-rate", "1e-4", "--output-dir", str(out)], budget,
                             busy_after="plan:")
    assert seconds <= budget, output
    assert "plan: " in output and "of 25,000 training texts" in output and "128 tokens" in output
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["time_budget"] is None and recipe["eval_strategy"] == "steps"  # it repeats without a probe
    assert recipe["max_length"] == 128 and recipe["learning_rate"] == 1e-4  # the flags given won over the plan
    planned = next(line for line in output.splitlines() if line.startswith("plan: "))
    card = (out / "README.md").read_text()
    assert f"Trained within a time budget; {planned}." in card
    history = yaml.safe_load((out / "history.json").read_text())
    assert history["plan"]["settings"]["max_length"] == recipe["max_length"]
    if history["stopped_early"]:  # the busy CPU made the plan too long: it says so, and kept an evaluation
        assert "the time budget ran out" in history["stop_reason"] and "the time budget ran out" in card


def test_tune_starts_no_trial_that_would_not_fit(small_model, tmp_path):
    recipe = {"dataset": str(SAMPLES / "sst2_sample"), "model": str(small_model), "max_length": 48,
              "max_train_samples": 400, "max_eval_samples": 150, "epochs": 2, "learning_rate": 1e-4,
              "search_space": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(recipe))
    budget = 35
    seconds, output = _watch([sys.executable, "-m", "textfit", "tune", "--config", str(path), "--time-budget",
                              f"{budget}s", "--output-dir", str(tmp_path / "search")], budget)
    assert seconds <= budget, output
    assert "no further trial" in output and (tmp_path / "search" / "trials.md").is_file()
    assert (tmp_path / "search" / "best" / "README.md").is_file()
