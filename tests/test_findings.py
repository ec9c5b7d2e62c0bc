"""Findings: each one provoked with real data and a real run, and silence on a healthy run."""

from __future__ import annotations

import json
import re

from tests.conftest import run_textfit, small_run_config
from textfit.findings import kept_words, overfitting_so_far, run_findings
from textfit.training import train


def findings_of(out) -> list[str]:
    return json.loads((out / "metrics.json").read_text())["findings"]


PROBLEMS = ("Overfitting", "No learning", "Training diverged", "One class")


def test_healthy_run_has_no_problem_findings(trained):
    """The shared run (2 layers, 2,000 sentences, one epoch) learns without a problem; what it does find is what
    its own numbers say: no clear gain over the TF-IDF baseline, and loss and accuracy peaking apart."""
    found = findings_of(trained)
    assert not [f for f in found if f.startswith(PROBLEMS)], found
    saved = json.loads((trained / "metrics.json").read_text())
    assert any(f.startswith("No better than a bag of words") for f in found) == \
        (not saved["baseline"]["model_is_better"])
    history = json.loads((trained / "history.json").read_text())["history"]
    by_loss = min(history, key=lambda r: r["loss"])
    disagree = by_loss["accuracy"] < max(r["accuracy"] for r in history)
    assert any("disagree on the best evaluation" in f for f in found) == disagree
    card = (trained / "README.md").read_text()
    assert card.count("**Finding.**") == len(found)


def test_overfitting_is_named_with_the_kept_evaluation(small_model, sst2_sample, tmp_path, capsys):
    # 160 sentences, 8 epochs at a high learning rate: the model memorises them and validation loss climbs
    out = tmp_path / "overfit"
    train(small_run_config(small_model, sst2_sample, out, max_train_samples=160, epochs=8, learning_rate=5e-4,
                           metric_for_best="loss"))
    history = json.loads((out / "history.json").read_text())["history"]
    by_loss = min(history, key=lambda row: row["loss"])
    # said as it happens, judged on the evaluations so far
    assert re.search(r"(grows confident rather than|the model is) overfitting; the checkpoint of step \d+ is kept",
                     capsys.readouterr().out)
    # at the end, judged on the whole history: accuracy at the end below the loss-best's is overfitting
    confident = history[-1]["accuracy"] > by_loss["accuracy"]
    found = findings_of(out)
    start = "Growing confident, not overfitting: " if confident else "Overfitting: "
    overfit = [f for f in found if f.startswith(start + "validation loss was lowest at")]
    assert len(overfit) == 1, found
    kept = json.loads((out / "metrics.json").read_text())["kept"]
    assert kept["step"] == by_loss["step"]
    if confident:  # the kept evaluation and the flag that keeps the other are in the disagreement finding
        assert any("--metric-for-best accuracy keeps" in f for f in found), found
    else:
        assert f"The model kept is that best evaluation, step {kept['step']}" in overfit[0]
    assert f"**Finding.** {start}" in (out / "README.md").read_text()


def test_a_learning_rate_too_low_is_no_learning(small_model, sst2_sample, tmp_path):
    out = tmp_path / "lr1e-9"
    train(small_run_config(small_model, sst2_sample, out, learning_rate=1e-9, max_train_samples=640,
                           eval_strategy="steps", eval_steps=10, head_learning_rate=0))  # the head at 1e-9 too
    found = findings_of(out)
    assert any(f.startswith("No learning") and "1e-09" in f for f in found), found


def test_a_learning_rate_of_ten_is_caught(small_model, sst2_sample, tmp_path):
    import pytest

    from textfit.errors import TrainingDiverged

    # at 1.0 the loss of step 10 landed either side of the limit (10x a know-nothing model's) by CPU: 6.5 on an
    # AMD EPYC with AVX512-BF16, above 6.9 on others. At 10 it is far past it on every CPU
    with pytest.raises(TrainingDiverged, match=r"diverged at step 10 \(validation loss"):
        train(small_run_config(small_model, sst2_sample, tmp_path / "lr10", learning_rate=10.0, max_train_samples=640,
                               eval_strategy="steps", eval_steps=10))
    assert not (tmp_path / "lr10" / "model.safetensors").exists()


def test_divergence_stops_and_keeps_the_last_good_evaluation(small_model, sst2_sample, tmp_path):
    # the learning rate ramps up by 10 per step: fine at step 1, exploded at step 2
    out = tmp_path / "ramp"
    train(small_run_config(small_model, sst2_sample, out, learning_rate=1e6, warmup_steps=100_000, max_grad_norm=0,
                           max_train_samples=640, eval_strategy="steps", eval_steps=1))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["kept"]["step"] == 1 and saved["eval"]["loss"] < 1.0
    history = json.loads((out / "history.json").read_text())
    assert history["stopped_early"] and history["history"][-1]["step"] == 1  # stopped at step 2
    assert any(f.startswith("Training diverged") and "last good evaluation, step 1" in f for f in saved["findings"])


def test_divergence_before_any_evaluation_writes_nothing(small_model, sst2_sample, tmp_path):
    out = tmp_path / "nan"
    result = run_textfit("train", "--model", small_model, "--dataset", sst2_sample, "--output-dir", out,
                         "--learning-rate", "1e6", "--max-grad-norm", "0", "--max-train-samples", "640",
                         "--max-length", "64")
    assert result.returncode == 2
    assert "training diverged at step" in result.stderr and "nothing was written" in result.stderr
    assert not (out / "model.safetensors").exists()


def test_rules_on_histories():
    row = lambda step, train_loss, loss: {"step": step, "epoch": step / 10, "train_loss": train_loss, "loss": loss}  # noqa: E731
    counts = {"neg": 50, "pos": 50}
    metrics = {"accuracy": 0.9, "confusion_matrix": [[45, 5], [5, 45]]}
    card_like = [row(10, 0.40, 0.30), row(20, 0.20, 0.29), row(30, 0.10, 0.35), row(40, 0.05, 0.41)]
    kept = {"step": 20, "epoch": 2, "metric": "loss", "value": 0.29}
    (overfit,) = run_findings(card_like, kept, metrics, counts, 2e-5)
    assert "lowest at step 20 (epoch 2), 0.2900, and higher" in overfit and "the 2 evaluations after it" in overfit
    # one evaluation above the minimum is noise, not a finding
    assert run_findings(card_like[:3], kept, metrics, counts, 2e-5) == []
    # kept by accuracy at another step: the finding says which one the loss would have kept
    by_acc = {"step": 40, "epoch": 4, "metric": "accuracy", "value": 0.9}
    assert "with metric_for_best=loss it would be step 20" in run_findings(card_like, by_acc, metrics, counts, 2e-5)[0]
    nan = [row(10, 0.7, 0.7), row(20, float("nan"), float("nan"))]
    assert run_findings(nan, None, metrics, counts, 1.0)[0].startswith("Training diverged: the loss is not a number")
    one = {"accuracy": 0.5, "confusion_matrix": [[50, 0], [50, 0]]}
    assert any(f.startswith("One class: the kept model predicts 'neg'") for f in run_findings([], None, one, counts, 1))


def test_confident_mistakes_are_written_and_quoted(trained):
    import textfit

    rows = [json.loads(line) for line in (trained / "errors.jsonl").open()]
    metrics = json.loads((trained / "metrics.json").read_text())["eval"]
    assert len(rows) == round((1 - metrics["accuracy"]) * metrics["num_examples"])
    confidences = [r["confidence"] for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert all(r["label"] != r["predicted"] for r in rows)
    # the kept model itself gives the first one that label with that confidence
    first = textfit.load(trained, precision="fp32").predict([rows[0]["text"]])[0]
    assert first["label"] == rows[0]["predicted"]
    assert abs(first["scores"][rows[0]["predicted"]] - rows[0]["confidence"]) < 0.02
    card = (trained / "README.md").read_text()
    assert "### Most confident mistakes" in card and f"predicted **{rows[0]['predicted']}**" in card


def test_trained_run_reports_intervals_and_calibration(trained):
    metrics = json.loads((trained / "metrics.json").read_text())["eval"]
    low, high = metrics["accuracy_ci"]
    assert low < metrics["accuracy"] < high and high - low < 0.15  # 300 examples: about +-5 points
    assert 0 <= metrics["ece"] < 0.3
    assert "95% bootstrap confidence intervals (300 evaluation examples" in (trained / "README.md").read_text()


def test_pictures_are_drawn_and_shown_in_the_card(trained):
    from PIL import Image

    card = (trained / "README.md").read_text()
    for name in ("training_curves.png", "confusion_matrix.png", "reliability.png"):
        with Image.open(trained / name) as image:
            assert image.format == "PNG" and image.width >= 300 and image.height >= 300
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
            assert len(colours) > 20  # drawn, not blank
        assert f"]({name})" in card


def test_loss_best_and_accuracy_best_disagree_in_one_sentence():
    def row(step, loss, accuracy):
        return {"step": step, "epoch": step / 100, "train_loss": 0.5 - step / 1000, "loss": loss,
                "accuracy": accuracy}

    history = [row(100, 0.40, 0.824), row(200, 0.43, 0.834), row(300, 0.47, 0.830)]
    counts, metrics = {"neg": 50, "pos": 50}, {"accuracy": 0.824, "confusion_matrix": [[40, 10], [8, 42]]}
    by_loss = {"step": 100, "epoch": 1, "metric": "loss", "value": 0.40}
    (said,) = [f for f in run_findings(history, by_loss, metrics, counts, 5e-5) if "disagree" in f]
    assert ("loss was lowest at step 100 (epoch 1) (0.4000, accuracy 0.8240), accuracy highest at step 200 "
            "(epoch 2) (0.8340, loss 0.4300)") in said
    assert said.endswith("The model kept is step 100 (epoch 1)'s (best loss); --metric-for-best "
                         "accuracy keeps step 200 (epoch 2)'s.")
    by_accuracy = {"step": 200, "epoch": 2, "metric": "accuracy", "value": 0.834}
    (said,) = [f for f in run_findings(history, by_accuracy, metrics, counts, 5e-5) if "disagree" in f]
    assert "--metric-for-best loss keeps step 100 (epoch 1)'s" in said
    # loss rose twice while accuracy ended above the loss-best's: confidence, not overfitting, and said so
    (confident,) = [f for f in run_findings(history, by_loss, metrics, counts, 5e-5) if "validation loss was" in f]
    assert confident.startswith("Growing confident, not overfitting: validation loss was lowest at step 100")
    assert "yet accuracy went from 0.8240 to 0.8300" in confident and "calibration error" not in confident
    calibrated = [{**r, "ece": e} for r, e in zip(history, (0.02, 0.05, 0.08), strict=True)]
    (confident,) = [f for f in run_findings(calibrated, by_loss, metrics, counts, 5e-5) if "validation loss was" in f]
    assert confident.endswith("Its calibration error went from 0.0200 to 0.0800.")
    worse = [*history[:2], row(300, 0.47, 0.820)]  # the last evaluation below the loss-best's accuracy: overfitting
    assert any(f.startswith("Overfitting: ") for f in run_findings(worse, by_loss, metrics, counts, 5e-5))
    assert overfitting_so_far(history, "accuracy") == "growing confident"
    assert overfitting_so_far(worse, "accuracy") == "overfitting"
    assert overfitting_so_far(history[:2], "accuracy") is None  # one rise is noise
    agree = [row(100, 0.40, 0.834), row(200, 0.43, 0.834)]  # a tie that includes the loss-best: no finding
    assert not [f for f in run_findings(agree, by_loss, metrics, counts, 5e-5) if "disagree" in f]


def test_a_kept_last_evaluation_names_how_to_keep_the_best_ones():
    def row(step, loss, accuracy):
        return {"step": step, "epoch": step / 100, "train_loss": 0.5 - step / 1000, "loss": loss,
                "accuracy": accuracy}

    counts, metrics = {"neg": 50, "pos": 50}, {"accuracy": 0.83, "confusion_matrix": [[40, 10], [8, 42]]}
    history = [row(100, 0.40, 0.824), row(200, 0.43, 0.834), row(300, 0.47, 0.830)]
    last = {"step": 300, "epoch": 3, "metric": "accuracy", "value": 0.830, "rule": "last"}
    (said,) = [f for f in run_findings(history, last, metrics, counts, 5e-5) if "disagree" in f]
    assert said.endswith("The model kept is step 300 (epoch 3)'s (the last evaluation); --metric-for-best accuracy "
                         "keeps step 200 (epoch 2)'s, --metric-for-best loss step 100 (epoch 1)'s.")
    # loss and accuracy agree on an earlier evaluation than the last: one sentence says so, and the flag
    both = [row(100, 0.40, 0.840), row(200, 0.43, 0.834)]
    last = {"step": 200, "epoch": 2, "metric": "accuracy", "value": 0.834, "rule": "last"}
    said = run_findings(both, last, metrics, counts, 5e-5)
    assert ("The last evaluation was kept, step 200 (epoch 2) (accuracy 0.8340); validation loss and accuracy were "
            "both best at step 100 (epoch 1) (accuracy 0.8400, loss 0.4000), which --metric-for-best accuracy "
            "keeps.") in said
    # the last evaluation as accurate as the best: nothing to say
    tie = [row(100, 0.40, 0.834), row(200, 0.43, 0.834)]
    assert not [f for f in run_findings(tie, last, metrics, counts, 5e-5) if "last evaluation was kept" in f]
    assert kept_words(last) == "the last evaluation (accuracy 0.8340; the run trained to its end)"
    assert kept_words({**last, "rule": "best"}) == kept_words({k: v for k, v in last.items() if k != "rule"}) == \
        "best accuracy 0.8340"
