"""--time-budget (textfit/training/budget.py): the plan from a probe, flags that win over it, and runs on real
data that end inside their budget, with the CPU made busy after the plan was made (train) and trials that stop
starting when the next would not fit (tune)."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import SAMPLES, SHARED_DATA
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.training.budget import (
    ENOUGH_EXAMPLES,
    PLANNED_LR,
    SAFETY,
    Deadline,
    Probe,
    epochs_for,
    make_plan,
    parse_budget,
    refit,
    replan,
    worth_timing,
)
from textfit.training.optim import build_schedule, retarget

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
    for plan in (small, large, few, sentences):  # few steps: the faster of the usual fine-tuning rates
        assert plan.settings["learning_rate"] == PLANNED_LR != TrainConfig().learning_rate
        assert f"lr {PLANNED_LR:g}," in plan.line()


def test_flags_win_over_the_plan():
    reviews = _probe([900] * 100, fixed_length=128)
    plan = make_plan(_run(25_000, 300, max_length=128, epochs=1, max_eval_samples=300, learning_rate=1e-5), 1200,
                     10, reviews, {"max_length", "epochs", "max_eval_samples", "learning_rate"})
    assert plan.settings["max_length"] == 128 and plan.settings["epochs"] == 1
    assert plan.settings["learning_rate"] == 1e-5
    assert plan.eval_examples == 300 and plan.settings["max_eval_samples"] == 300
    with pytest.raises(ConfigError, match="too little for one training step"):
        make_plan(_run(25_000, 25_000), 12, 10, reviews, set())


def test_short_texts_cost_at_least_what_a_step_costs_whatever_the_texts():
    sentences, reviews = np.array([6] * 100), np.array([500] * 100)
    scaled = Probe({64: 0.01}, {64: 0.004}, sentences, 1.0)  # the padded cost scaled by the tokens alone
    floored = Probe({64: 0.01}, {64: 0.004}, sentences, 1.0, train_floor=0.005, eval_floor=0.002)
    assert floored.per_example(64) > scaled.per_example(64) and floored.per_example(64) >= 0.005
    assert floored.per_example(64, eval_=True) >= 0.002
    long = Probe({64: 0.01}, {64: 0.004}, reviews, 1.0, train_floor=0.005, eval_floor=0.002)
    assert long.per_example(64) == pytest.approx(0.01)  # texts that fill the length cost the padded batch


def test_windows_make_each_evaluation_cost_what_reading_the_texts_whole_costs():
    reviews = _probe([900] * 50 + [200] * 50, fixed_length=256)
    truncated = make_plan(_run(25_000, 25_000, max_length=256), 1200, 10, reviews, {"max_length"})
    whole = make_plan(_run(25_000, 25_000, max_length=256, windows=True), 1200, 10, reviews, {"max_length"})
    # a 900-token review is 7 windows of 256 tokens, half a window apart, a 200-token one 1: 4 on average
    assert whole.eval_seconds / whole.eval_examples == pytest.approx(
        4 * truncated.eval_seconds / truncated.eval_examples, rel=0.1)
    assert whole.eval_examples < truncated.eval_examples and whole.eta <= whole.budget


def test_the_first_evaluation_fits_the_step_count_to_what_the_run_has_measured():
    """SST-2 at 10 min ended after 463 s: the probe had put steps 15% and an evaluation 2.4x too high. At the first
    evaluation the run knows both: the step count then fills the time left (less the margin), evaluations due
    at the same cadence included, and not one step more."""
    plan = make_plan(_run(60_000, 872), 600, 10, _probe([20] * 99 + [70]), set())
    pace, one_eval, done, every = plan.step_seconds * 0.85, plan.eval_seconds / 2.4, 447, 447
    deadline = Deadline(time.time() + 420, plan.eval_seconds, plan.write_seconds, plan.step_seconds,
                        taken=[pace] * done, measured_eval=one_eval)
    steps = refit(plan, deadline, done, 10_000, every)
    room = deadline.left() - SAFETY * plan.budget - deadline.writing()

    def needs(n: int) -> float:
        return (n - done) * pace + ((n - 1) // every - done // every + 1) * one_eval

    assert steps > done + 1000 and needs(steps) <= room < needs(steps + 1)
    assert refit(plan, deadline, done, ceiling=1200, eval_steps=every) == 1200  # never past MAX_EPOCHS of the data
    late = Deadline(time.time() + 5, plan.eval_seconds, plan.write_seconds, plan.step_seconds, taken=[pace] * done,
                    measured_eval=one_eval)
    assert refit(plan, late, done, 10_000, every) == done + 1  # out of time: the deadline decides


def test_the_step_count_is_fitted_to_the_real_steps():
    plan = make_plan(_run(60_000, 872), 300, 10, _probe([20] * 99 + [70]), set())
    slow, fast = (Deadline(time.time() + 250, plan.eval_seconds, plan.write_seconds, plan.step_seconds)
                  for _ in range(2))
    for _ in range(20):
        slow.note_step(plan.step_seconds * 1.4)  # steps 40% slower than the probe said (SST-2 at 5 min: 1.29x)
        fast.note_step(plan.step_seconds * 0.7)
    fewer, more = replan(plan, slow, 20, 10_000).steps, replan(plan, fast, 20, 10_000).steps
    assert fewer < more
    # at the slow pace, the steps left, the evaluations and the folder end inside the time left, less the margin
    to_come = (fewer - 20) * plan.step_seconds * 1.4 + 1.4 * (plan.evaluations * plan.eval_seconds
                                                                 + plan.write_seconds)  # 1.4x: under WRITE_SLOWDOWN
    assert to_come <= slow.left() - SAFETY * plan.budget + plan.step_seconds * 1.4
    assert replan(plan, fast, 20, ceiling=300).steps == 300  # never past MAX_EPOCHS of the data
    late = Deadline(time.time() + 1, plan.eval_seconds, plan.write_seconds, plan.step_seconds, taken=[1.0] * 20)
    assert replan(plan, late, 20, 10_000).steps == 21  # out of time: one more step, and the deadline decides
    crawling = Deadline(time.time() + 250, plan.eval_seconds, plan.write_seconds, plan.step_seconds,
                        taken=[plan.step_seconds * 10] * 20)  # evaluations at 10x no longer fit 15% of the budget
    assert replan(plan, crawling, 20, 10_000).evaluations < plan.evaluations
    assert replan(plan, slow, 20, 10_000).evaluations == plan.evaluations
    warming = Deadline(time.time() + 100, 2.0, 10.0, planned_step=0.3)
    warming.note_step(3.0)  # the first step warms kernels up: no slowdown is read from it
    assert warming.slowdown() == 1.0
    for _ in range(4):
        warming.note_step(0.6)
    assert warming.slowdown() == pytest.approx(2.0)
    for steps, per_epoch in ((1077, 157), (1, 3), (7815, 1563), (999_983, 4_211)):
        assert math.ceil(epochs_for(steps, per_epoch) * per_epoch) == steps


def test_the_folder_is_reserved_the_time_its_one_thread_needs_at_the_share_of_a_core_it_gets():
    """Steps no slower than the probe's (it met the same crowd) do not mean an idle machine: the main thread's own
    CPU seconds say how much of a core the one thread that writes the folder will get."""
    idle, crowded = (Deadline(time.time() + 100, 2.0, 10.0, planned_step=0.5) for _ in range(2))
    for _ in range(5):
        idle.note_step(0.5, main_thread_cpu=0.5)
        crowded.note_step(0.5, main_thread_cpu=0.2)  # 2 of 5 runnable threads' worth of 2 cores
    assert idle.slowdown() == crowded.slowdown() == 1.0
    assert idle.writing() == pytest.approx(10.0) and crowded.writing() == pytest.approx(25.0)
    assert crowded.reserve() == pytest.approx(2.0 + 25.0)
    assert crowded.must_stop() is False and Deadline(time.time() + 20, 2.0, 10.0, 0.5, taken=crowded.taken,
                                                      main_thread=crowded.main_thread).must_stop()
    assert Deadline(time.time() + 100, 2.0, 10.0, 0.5, taken=[0.5] * 5).core_share() == 1.0  # not measured: idle


def test_a_retargeted_schedule_decays_to_its_new_end():
    config = TrainConfig(learning_rate=1e-3, warmup_ratio=0.1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
    schedule, _ = build_schedule(optimizer, config, 100)
    for _ in range(20):
        optimizer.step()
        schedule.step()
    retarget(schedule, config, 60)  # as after 20 real steps that were slower than planned
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (60 - 20) / (60 - 6))
    rates = []
    for _ in range(40):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[-1] == 0 and all(a > b for a, b in itertools.pairwise(rates))
    again, _ = build_schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3), config, 100)
    again.load_state_dict(schedule.state_dict())  # a resumed run decays to the same end
    assert again.lr_lambdas[0].total == 60


def _watch(command: list[str], budget: float, busy_after: tuple[str, ...] = ()) -> tuple[float, str]:
    """Run a textfit command; start one CPU-bound process beside it when each line in `busy_after` is printed
    (the machine gets busier after the plan was made, and again later). Returns its wall time and output."""
    start = time.time()
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, burners, waiting = [], [], list(busy_after)
    for line in process.stdout:
        lines.append(line)
        if waiting and line.startswith(waiting[0]):
            waiting.pop(0)
            burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    process.wait(timeout=budget * 3)
    for burner in burners:
        burner.kill()
    assert process.returncode == 0, "".join(lines)
    return time.time() - start, "".join(lines)


def test_a_run_on_real_data_ends_inside_its_budget_on_a_busy_cpu(small_model, tmp_path):
    """One CPU-bound process starts beside the run when the plan is printed (its steps slow down), a second when
    the step count has been fitted to that pace: the run still ends inside its budget."""
    out, budget = tmp_path / "budget", 70
    seconds, output = _watch([sys.executable, "-m", "textfit", "train", "--model", str(small_model), "--dataset",
                              str(SHARED_DATA / "imdb"), "--eval-split", "test", "--time-budget", f"{budget}s",
                              "--max-length", "128", "--learning-rate", "1e-4", "--output-dir", str(out)], budget,
                             busy_after=("plan:", "re-planned after"))
    assert seconds <= budget, output
    assert "plan: " in output and "of 25,000 training texts" in output and "128 tokens" in output
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["time_budget"] is None and recipe["eval_strategy"] == "steps"  # it repeats without a probe
    assert recipe["max_length"] == 128 and recipe["learning_rate"] == 1e-4  # the flags given won over the plan
    planned = next(line for line in output.splitlines() if line.startswith("plan: "))
    card = (out / "README.md").read_text()
    assert f"Trained within a time budget; {planned}" in card
    # the steps' pace differed from the probe's: the step count was fitted to it, and the saved recipe follows.
    # Slower here alone; under `pytest -n auto` the other worker may have crowded the probe and gone quiet since
    # (CI: a re-plan to 80 steps instead of 75), so the direction is read from the paces the line prints
    replanned = next(line for line in output.splitlines() if line.startswith("re-planned after "))
    history = history_of(out)
    assert replanned in card and f"; {replanned}" in history["plan"]["line"]
    paced, probed, steps, planned_steps = (float(n.replace(",", "")) for n in re.search(
        r"at ([\d.]+) s each \(the probe said ([\d.]+)\): ([\d,]+) steps instead of ([\d,]+)", replanned).groups())
    assert steps < planned_steps or paced <= probed, replanned  # slower steps: fewer of them
    # the first evaluation may have fitted it again, to the pace since and its own seconds: the last count holds
    final = int(re.findall(r": ([\d,]+) steps instead of", history["plan"]["line"])[-1].replace(",", ""))
    per_epoch = math.ceil((recipe["max_train_samples"] or 25_000) / recipe["train_batch_size"])
    assert math.ceil(recipe["epochs"] * per_epoch) == final  # the saved recipe repeats the re-planned run
    if history["stopped_early"]:  # the second process slowed it again: it says so, and what it kept
        assert "the time budget ran out" in history["stop_reason"] and "the time budget ran out" in card
    cut = re.search(r"scored on ([\d,]+) of the ([\d,]+) evaluation texts", history["stop_reason"] or "")
    if cut:  # no evaluation fitted before the stop: the final weights were scored on what the time left allowed
        scored = json.loads((out / "metrics.json").read_text())["eval"]["num_examples"]
        assert scored == int(cut.group(1).replace(",", "")) < int(cut.group(2).replace(",", ""))


def history_of(out: Path) -> dict:
    return json.loads((out / "history.json").read_text())


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
