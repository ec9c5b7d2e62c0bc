"""Multi-label (GoEmotions) and regression (IMDb star ratings) on real data, through train, evaluate, load,
transformers.pipeline and the HTTP service."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.conftest import SAMPLES, SHARED_DATA, run_textfit
from tests.serve.conftest import start_service
from textfit.data import Columns, load_training_data
from textfit.errors import DataError
from textfit.metrics import best_threshold, multilabel_metrics, regression_metrics

GO_EMOTIONS = SHARED_DATA / "go_emotions"
IMDB = SHARED_DATA / "imdb"
RATING = r"_(?P<rating>\d+)$"  # IMDb ids end in _<stars>


def test_the_task_is_read_from_the_labels():
    data = load_training_data(str(GO_EMOTIONS), Columns(), max_train_samples=300, max_eval_samples=50)
    assert data.task.name == "multi-label"
    assert len(data.label_names) == 28 and data.label_names[27] == "neutral"
    assert all(isinstance(ex.label, list) and ex.label for ex in data.train)
    assert any(len(ex.label) > 1 for ex in data.train)

    ratings = load_training_data(str(IMDB), Columns(label="id", label_pattern=RATING), eval_split="test",
                                 task="regression", max_train_samples=300, max_eval_samples=50)
    assert ratings.task.name == "regression" and ratings.label_names == ["rating"]
    for ex in ratings.train + ratings.eval:
        assert ex.label == float(ex.extra["id"].rsplit("_", 1)[1])
    assert {ex.label for ex in ratings.train} <= {1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 9.0, 10.0}

    forced = load_training_data(str(SAMPLES / "sst2_sample"), Columns(), task="multi-label")
    assert forced.task.name == "multi-label" and all(len(ex.label) == 1 for ex in forced.train)
    assert load_training_data(str(SAMPLES / "sst2_sample"), Columns()).task.name == "single"


def test_label_sets_in_csv_and_fractional_targets(tmp_path):
    labels = tmp_path / "tags.csv"
    labels.write_text('text,label\n"good and cheap","price,quality"\nslow delivery,shipping\n'
                      'fine,"[""quality""]"\n', encoding="utf-8")
    data = load_training_data(str(labels), Columns(), task="multi-label", validation_fraction=0.34)
    assert data.label_names == ["price", "quality", "shipping"]
    by_text = {ex.text: [data.label_names[i] for i in ex.label] for ex in data.train + data.eval}
    assert by_text == {"good and cheap": ["price", "quality"], "slow delivery": ["shipping"], "fine": ["quality"]}

    scores = tmp_path / "scores.jsonl"
    scores.write_text("\n".join(json.dumps({"text": f"text {i}", "label": i / 4}) for i in range(8)) + "\n")
    assert load_training_data(str(scores), Columns()).task.name == "regression"


def test_bad_targets_and_patterns_name_the_row(tmp_path):
    rows = tmp_path / "scores.jsonl"
    rows.write_text('{"text": "a", "label": 1.5}\n{"text": "b", "label": "high"}\n')
    with pytest.raises(DataError, match=r"scores.jsonl:2: target 'high' in column 'label' is not a number"):
        load_training_data(str(rows), Columns(), task="regression")
    with pytest.raises(DataError, match=r"train.jsonl.gz:1: label_pattern .* does not match '1' in column 'label'"):
        load_training_data(str(IMDB), Columns(label_pattern=RATING), max_train_samples=10)
    with pytest.raises(DataError, match="needs a group"):
        load_training_data(str(IMDB), Columns(label="id", label_pattern=r"_\d+$"), max_train_samples=10)


def test_multilabel_and_regression_metrics_by_hand():
    targets = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.4], [0.1, 0.7, 0.1], [0.6, 0.3, 0.2]])
    m = multilabel_metrics(targets, probs, ["a", "b", "c"], 0.5)
    # predicted at 0.5: {a}, {b}, {a} of {a, c}, {b}, {a, b}: 3 true positives, 0 false positives, 2 missed
    assert m["precision_micro"] == 1.0 and m["recall_micro"] == pytest.approx(3 / 5)
    assert m["f1_micro"] == pytest.approx(0.75) and m["subset_accuracy"] == pytest.approx(1 / 3)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # 0.3 also catches b in row 3 and c in row 1: every label right
    assert best_threshold(targets, probs) == pytest.approx(0.3)
    assert multilabel_metrics(targets, probs, ["a", "b", "c"], 0.3)["subset_accuracy"] == 1.0

    r = regression_metrics([1, 2, 3, 4], [1, 2, 4, 5])
    assert r["mse"] == pytest.approx(0.5) and r["mae"] == pytest.approx(0.5) and r["spearman"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def goemotions_model(small_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("goemotions") / "model"
    result = run_textfit("train", "--dataset", GO_EMOTIONS, "--model", small_model, "--output-dir", out,
                         "--max-train-samples", 1600, "--max-eval-samples", 200, "--max-length", 48,
                         "--epochs", 2, "--learning-rate", 5e-4, "--train-batch-size", 32,
                         "--eval-strategy", "steps", "--eval-steps", 25,
                         # fp32: `evaluate` below must repeat the card's micro F1 to 1e-3; trained in bf16 autocast
                         # (auto, on a CPU with native bf16), one decision near its threshold flips (0.4021 -> 0.4011)
                         "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_goemotions_reports_micro_macro_and_per_label_f1(goemotions_model):
    metrics = json.loads((goemotions_model / "metrics.json").read_text())["eval"]
    for key in ("f1_micro", "f1_macro", "precision_micro", "recall_micro", "subset_accuracy", "threshold"):
        assert 0 <= metrics[key] <= 1, key
    assert len(metrics["per_class"]) == 28 and "f1" in metrics["per_class"]["gratitude"]
    assert metrics["f1_micro_global"] >= metrics["f1_micro_at_0.5"]  # the global threshold: the best micro F1
    # per-label thresholds raise micro F1 on the set they are chosen on, starting from the global one
    assert metrics["f1_micro"] >= metrics["f1_micro_global"]
    own = {n: t for n, t in metrics["thresholds"].items() if t != metrics["threshold"]}
    assert all(metrics["per_class"][n]["support"] >= 25 for n in own)  # only labels with enough positives
    # it learned more than "neutral" (the majority label alone: micro F1 0.30 on this sample), and got there
    learned = [name for name, m in metrics["per_class"].items() if m["f1"] > 0]
    assert len(learned) >= 3 and "neutral" in learned, learned
    history = json.loads((goemotions_model / "history.json").read_text())["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    config = json.loads((goemotions_model / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["multi_label_threshold"] == metrics["threshold"]
    assert config["multi_label_thresholds"] == [metrics["thresholds"][config["id2label"][str(i)]] for i in range(28)]
    card = (goemotions_model / "README.md").read_text()
    assert "multi-label head over 28 labels" in card and "### Results per label" in card
    assert "top_k=None" in card and "Confusion matrix" not in card


def test_goemotions_label_sets_through_load_pipeline_evaluate_and_service(goemotions_model):
    from transformers import pipeline

    import textfit

    texts = ["Thank you so much, this made my day!", "I am so angry right now, this is disgusting.",
             "What do you mean? I don't get it.", "That is hilarious lol"]
    clf = textfit.load(goemotions_model, precision="fp32")
    predictions = clf.predict(texts)
    cut = dict(zip(clf.labels, clf.thresholds, strict=True))  # each label's own threshold
    for pred in predictions:
        above = sorted((n for n, s in pred["scores"].items() if s >= cut[n]), key=lambda n: -pred["scores"][n])
        assert pred["labels"] == above
    piped = pipeline("text-classification", model=str(goemotions_model), top_k=None)(texts)
    for pred, scored in zip(predictions, piped, strict=True):
        assert len(scored) == 28
        for item in scored:  # sigmoid scores, as textfit.load gives them
            assert item["score"] == pytest.approx(pred["scores"][item["label"]], abs=1e-4)

    scored = goemotions_model / "validation.eval.json"
    result = run_textfit("evaluate", goemotions_model, "--dataset", GO_EMOTIONS, "--split", "validation",
                         "--max-eval-samples", 200, "--precision", "fp32", "--output", scored)
    assert result.returncode == 0, result.stderr[-2000:]
    again, trained = json.loads(scored.read_text()), json.loads((goemotions_model / "metrics.json").read_text())
    assert again["f1_micro"] == pytest.approx(trained["eval"]["f1_micro"], abs=1e-3)
    assert again["threshold"] == trained["eval"]["threshold"]
    assert again["thresholds"] == trained["eval"]["thresholds"]

    server, url = start_service(goemotions_model, "--precision", "fp32")
    try:
        answer = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=60).json()["predictions"]
        assert [a["labels"] for a in answer] == [p["labels"] for p in predictions]
        assert all("label" not in a for a in answer)
        assert httpx.get(f"{url}/metadata").json()["task"] == "multi-label"
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_imdb_ratings_regression(small_model, tmp_path):
    from transformers import pipeline

    import textfit

    out = tmp_path / "ratings"
    result = run_textfit("train", "--dataset", IMDB, "--model", small_model, "--output-dir", out,
                         "--label-column", "id", "--label-pattern", RATING, "--task", "regression",
                         "--eval-split", "test",
                         "--max-train-samples", 800, "--max-eval-samples", 200, "--max-length", 96,
                         "--epochs", 2, "--learning-rate", 4e-4, "--eval-strategy", "steps", "--eval-steps", 25)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())["eval"]
    assert json.loads((out / "config.json").read_text())["problem_type"] == "regression"
    assert metrics["spearman"] > 0.45  # it orders reviews by rating (0.54 when written)
    assert metrics["mse"] < 0.85 * 12.1  # under the variance of the ratings: better than always the mean (0.69x)

    texts = ["A masterpiece. I loved every minute of it.", "Dreadful, boring and far too long. Avoid."]
    values = [p["value"] for p in textfit.load(out, precision="fp32").predict(texts)]
    assert values[0] > values[1] + 1
    piped = pipeline("text-classification", model=str(out), function_to_apply="none")(texts)
    assert [p["score"] for p in piped] == pytest.approx(values, abs=1e-3)  # the saved head is in stars

    scored = out / "test.eval.json"
    result = run_textfit("evaluate", out, "--dataset", IMDB, "--split", "test", "--max-eval-samples", 200,
                         "--precision", "fp32", "--output", scored)
    assert result.returncode == 0, result.stderr[-2000:]
    again = json.loads(scored.read_text())
    # the same model on the same reviews; training evaluated in bf16 autocast, this in fp32
    assert again["mae"] == pytest.approx(metrics["mae"], rel=2e-3) and "spearman" in result.stdout
    assert "regression head: one output, the predicted `rating`" in (out / "README.md").read_text()


def test_per_label_thresholds_by_hand():
    from textfit.metrics import per_label_thresholds

    rng = np.random.default_rng(0)
    n = 200
    common = rng.random(n) < 0.5  # 100 positives: its own threshold
    rare = np.zeros(n, dtype=bool)
    rare[:5] = True  # 5 positives: too few to tune on, the global threshold stays
    targets = np.stack([common, rare], 1).astype(float)
    # the common label's positives score 0.12-0.18, its negatives 0.02-0.08: only a low threshold finds them
    probs = np.stack([np.where(common, 0.12 + 0.06 * rng.random(n), 0.02 + 0.06 * rng.random(n)),
                      np.where(rare, 0.9, 0.1)], 1)
    assert per_label_thresholds(targets, probs, fallback=0.4, min_positives=25) == [0.1, 0.4]
    metrics = multilabel_metrics(targets, probs, ["common", "rare"], 0.4, per_label=[0.1, 0.4])
    assert metrics["per_class"]["common"]["f1"] == 1.0 and metrics["thresholds"] == {"common": 0.1, "rare": 0.4}
    assert multilabel_metrics(targets, probs, ["common", "rare"], 0.4)["per_class"]["common"]["f1"] == 0.0
