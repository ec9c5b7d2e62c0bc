"""The TF-IDF baseline beside every run: fitted on the same training split, scored on the same evaluation set,
with a paired interval of the difference; a finding when fine-tuning does not beat it."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from tests.conftest import small_run_config
from textfit.baseline import BaselineJob, baseline_scores, compare
from textfit.data import Example
from textfit.task import MULTI_LABEL, REGRESSION, SINGLE
from textfit.training import train


def _examples(n: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    words = {0: ["dreadful", "boring", "awful", "tedious"], 1: ["wonderful", "moving", "superb", "delightful"]}
    out = []
    for i in range(n):
        label = int(rng.integers(2))
        text = f"the film was {rng.choice(words[label])} and {rng.choice(words[label])}, story number {i}"
        out.append(Example(text, label))
    return out


def test_paired_difference_on_the_same_examples():
    train_set, evaluation = _examples(200, 0), _examples(100, 1)
    gold = np.array([ex.label for ex in evaluation])
    perfect = np.eye(2)[gold]
    result = compare(SINGLE, perfect, train_set, evaluation, ["neg", "pos"], 0.5)
    assert result.baseline == 1.0 and result.model == 1.0 and result.interval == (0.0, 0.0)
    assert not result.model_is_better  # equal is not better
    wrong_half = perfect.copy()
    wrong_half[:50] = 1 - wrong_half[:50]
    worse = compare(SINGLE, wrong_half, train_set, evaluation, ["neg", "pos"], 0.5)
    assert worse.difference == pytest.approx(-0.5) and worse.interval[1] < 0
    assert "-50.0 points" in worse.sentence()


def test_multi_label_and_regression_baselines_have_their_shapes():
    train_set, evaluation = _examples(120, 2), _examples(40, 3)
    sets = [Example(ex.text, [ex.label]) for ex in train_set]
    scores = baseline_scores(sets, evaluation, MULTI_LABEL, 3)  # label 2 never occurs: probability 0
    assert scores.shape == (40, 3) and (scores[:, 2] == 0).all()
    numbers = [Example(ex.text, float(ex.label * 9 + 1)) for ex in train_set]
    values = baseline_scores(numbers, evaluation, REGRESSION, 1)
    assert values.shape == (40, 1) and np.corrcoef(values[:, 0], [ex.label for ex in evaluation])[0, 1] > 0.9


def test_the_baseline_fitted_in_the_background_is_the_one_fitted_in_process():
    train_set, evaluation = _examples(200, 0), _examples(60, 1)
    job = BaselineJob.for_examples(train_set, evaluation, SINGLE, 2, seed=42)
    scores, seconds = job.result(train_set, evaluation, wait=300)  # at nice 19 on a busy machine: give it time
    np.testing.assert_allclose(scores, baseline_scores(train_set, evaluation, SINGLE, 2, seed=42), atol=1e-9)
    assert seconds > 0
    # the scores are taken only for the very examples the job fitted and scored
    assert job.result(list(train_set), evaluation) is not None  # the same examples in another list: the same
    assert job.result(train_set[1:], evaluation) is None  # fitted on other training examples: not theirs
    assert job.result(train_set, evaluation[::3]) is None  # examples it did not all score
    # a job that fails (a multi-label task given single labels) leaves the run to fit the baseline itself
    dead = BaselineJob.for_examples(train_set, evaluation, MULTI_LABEL, 2, seed=42)
    assert dead.result(train_set, evaluation, wait=300) is None


def test_a_finished_run_does_not_wait_long_for_a_starved_job():
    # on a busy machine the job at nice 19 may still be at work when the run ends: the run fits the baseline
    # itself rather than wait for it
    train_set, evaluation = _examples(20, 0), _examples(10, 1)
    slow = BaselineJob(lambda: (time.sleep(60), (train_set, evaluation, SINGLE, 2, 42))[1])
    started = time.monotonic()
    assert slow.result(train_set, evaluation, wait=0.5) is None
    assert time.monotonic() - started < 5


def test_a_job_that_has_sent_its_scores_exits_before_the_run_ends():
    # scores for many evaluation texts are more than a pipe holds: unread until the run's end, they kept the
    # finished job alive with all its memory (1.1 GB on full IMDB) for hours
    train_set, evaluation = _examples(200, 0), _examples(20_000, 1)  # 20,000 x 2 float64 scores: 320 KB
    job = BaselineJob.for_examples(train_set, evaluation, SINGLE, 2, seed=42)
    deadline = time.monotonic() + 300
    while job._process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not job._process.is_alive()  # gone before anyone asked for the result
    scores, _ = job.result(train_set, evaluation, wait=0)
    assert scores.shape == (20_000, 2)


def test_the_job_started_from_a_config_reads_the_data_as_the_run_does(small_model, sst2_sample, tmp_path):
    # `textfit train` forks it before importing PyTorch: the child reads the data itself, and the run's own
    # reading of it must give the same examples, or the scores would be another set's
    from textfit.data import load_data

    config = small_run_config(small_model, sst2_sample, tmp_path / "out")
    job = BaselineJob.from_config(config)
    data = load_data(config)
    scores, _ = job.result(data.train, data.eval, wait=300)
    expected = baseline_scores(data.train, data.eval, data.task, len(data.label_names), seed=config.seed)
    np.testing.assert_allclose(scores, expected, atol=1e-9)
    other = dataclasses.replace(config, max_train_samples=len(data.train) - 1)
    assert BaselineJob.from_config(other).result(data.train, data.eval, wait=300) is None


def test_every_run_carries_the_baseline(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    baseline = metrics["baseline"]
    assert baseline["metric"] == "accuracy" and baseline["examples"] == 300 and baseline["train_examples"] > 0
    assert baseline["model"] == pytest.approx(metrics["eval"]["accuracy"])
    assert baseline["difference"] == pytest.approx(baseline["model"] - baseline["baseline"])
    lo, hi = baseline["interval"]
    assert lo <= baseline["difference"] <= hi and 0 < baseline["baseline"] < 1
    assert baseline["background"] and baseline["seconds"] > 0  # fitted beside the training, not after it
    card = (trained / "README.md").read_text()
    assert "A TF-IDF + logistic regression baseline fitted on the same" in card
    assert not list(trained.glob("*.npy"))  # the folder is the fine-tuned model, nothing of the baseline's


def test_no_baseline_when_asked_and_a_finding_when_it_is_not_beaten(small_model, sst2_sample, tmp_path, capsys):
    out = tmp_path / "none"
    train(small_run_config(small_model, sst2_sample, out, max_steps=5, eval_strategy="no", baseline="none"))
    assert json.loads((out / "metrics.json").read_text())["baseline"] is None
    assert "baseline" not in (out / "README.md").read_text()

    # a model that learns nothing (learning rate 1e-9) does not beat a bag of words
    out = tmp_path / "stalled"
    train(small_run_config(small_model, sst2_sample, out, learning_rate=1e-9, max_train_samples=640, max_steps=10,
                           eval_strategy="no"))
    printed = capsys.readouterr().out
    assert "baseline: A TF-IDF + logistic regression baseline" in printed
    findings = json.loads((out / "metrics.json").read_text())["findings"]
    assert any(f.startswith("No better than a bag of words") for f in findings), findings
