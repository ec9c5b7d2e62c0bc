"""End-to-end training on real data with a real (2-layer) pretrained model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import small_run_config
from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.training import train


def config(model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    return small_run_config(model, data, out, **kw)


def majority_accuracy(data: Path, split: str) -> float:
    labels = [json.loads(line)["label"] for line in (data / f"{split}.jsonl").open()]
    return Counter(labels).most_common(1)[0][1] / len(labels)


def test_fine_tune_beats_majority_class(trained, sst2_sample):
    metrics = json.loads((trained / "metrics.json").read_text())["eval"]
    baseline = majority_accuracy(sst2_sample, "validation")
    assert metrics["num_examples"] == 300
    assert metrics["accuracy"] >= baseline + 0.15, (metrics["accuracy"], baseline)


def test_output_folder_contents(trained):
    for name in ("model.safetensors", "config.json", "tokenizer.json", "recipe.yaml", "history.json",
                 "metrics.json", "README.md"):
        assert (trained / name).is_file(), name
    assert not (trained / "checkpoints").exists()  # optimizer state is dropped after a successful run
    history = json.loads((trained / "history.json").read_text())
    steps = [row["step"] for row in history["history"]]
    assert steps == [40, 80, 120, 125]  # every 40 steps, plus the final step
    assert all(row["train_loss"] > 0 for row in history["history"])
    # kept by default (auto) in a run that trains to its end: the last evaluation, called the best when no earlier
    # one was more accurate, or as accurate with a lower validation loss
    *earlier, last = history["history"]
    beaten = any(row["accuracy"] > last["accuracy"] or (row["accuracy"] == last["accuracy"]
                                                        and row["loss"] <= last["loss"]) for row in earlier)
    assert history["best"] == {"metric": "accuracy", "value": last["accuracy"], "step": 125,
                               "epoch": last["epoch"], "rule": "last" if beaten else "best"}
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["eval"]["loss"] == pytest.approx(last["loss"]) and metrics["eval"]["accuracy"] == last["accuracy"]
    assert sum(map(sum, metrics["eval"]["confusion_matrix"])) == 300
    assert set(metrics["eval"]["per_class"]) == {"negative", "positive"}


def test_recipe_repeats_the_run(trained):
    recipe = yaml.safe_load((trained / "recipe.yaml").read_text())
    again = TrainConfig.from_sources(trained / "recipe.yaml")
    assert again.to_dict() == recipe
    assert recipe["learning_rate"] == 3e-4 and recipe["eval_steps"] == 40


def test_transformers_loads_output_with_label_names(trained):
    from transformers import AutoModelForSequenceClassification, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(trained)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    clf = pipeline("text-classification", model=str(trained))
    assert clf("a gorgeous , witty , seductive movie .")[0]["label"] in {"negative", "positive"}


def test_pipeline_and_textfit_predict_the_same(trained, sst2_sample):
    from transformers import pipeline

    import textfit

    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()][:64]
    ours = textfit.load(trained, precision="fp32").predict(texts)  # the pipeline computes in fp32
    theirs = pipeline("text-classification", model=str(trained), top_k=None)(texts, truncation=True)
    for mine, other in zip(ours, theirs, strict=True):
        scores = {d["label"]: d["score"] for d in other}
        assert mine["label"] == max(scores, key=scores.get)
        for label, score in scores.items():
            assert mine["scores"][label] == pytest.approx(score, abs=1e-4)


def test_default_precision_agrees_with_fp32(trained, sst2_sample):
    """The default (bf16 where the CPU has it natively) may move probabilities a little, never many labels."""
    import textfit

    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()][:200]
    fast, exact = textfit.load(trained), textfit.load(trained, precision="fp32")
    ours, reference = fast.predict(texts), exact.predict(texts)
    same = sum(a["label"] == b["label"] for a, b in zip(ours, reference, strict=True)) / len(texts)
    assert same >= 0.97, (fast.backend, fast.precision, same)
    drift = max(abs(a["scores"][k] - b["scores"][k]) for a, b in zip(ours, reference, strict=True) for k in a["scores"])
    assert drift < 0.1, (fast.precision, drift)


def test_model_card_parses_and_matches_metrics(trained):
    from huggingface_hub import ModelCard

    card = ModelCard.load(trained / "README.md")
    metrics = json.loads((trained / "metrics.json").read_text())["eval"]
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert set(results) == {"accuracy", "precision", "recall", "f1"}
    for key, value in results.items():
        assert value == pytest.approx(metrics[key], abs=1e-4)
    text = card.text
    assert "| Training Loss | Epoch | Step | Validation Loss | Accuracy |" in text
    kept = json.loads((trained / "metrics.json").read_text())["kept"]
    evaluations = len(json.loads((trained / "history.json").read_text())["history"])
    where = f"step {kept['step']} (epoch {kept['epoch']:g})"
    said = f"the last of {evaluations} evaluations, {where}" if kept["rule"] == "last" else f"the checkpoint of {where}"
    assert f"The model kept is {said}" in text
    assert "- learning_rate: 0.0003" in text
    assert "mixed_precision_training:" in text


def test_refuses_to_overwrite_a_finished_model(trained, small_model, sst2_sample):
    with pytest.raises(ConfigError, match="finished model"):
        train(config(small_model, sst2_sample, trained))


@pytest.mark.parametrize("keep", ["loss", "auto"])
def test_early_stopping_keeps_best(small_model, sst2_sample, tmp_path, keep):
    # a learning rate far too high: the model gets no better after the first evaluations. A run stopped early keeps
    # its best evaluation, by the loss or (auto) by accuracy, never the last
    out = tmp_path / "run"
    train(config(small_model, sst2_sample, out, learning_rate=3e-3, epochs=3, max_train_samples=480,
                 eval_strategy="steps", eval_steps=5, early_stopping_patience=2, warmup_steps=0,
                 metric_for_best=keep))
    history = json.loads((out / "history.json").read_text())
    rows = history["history"]
    assert history["stopped_early"] is True
    assert rows[-1]["step"] < 90  # 3 epochs of 30 steps were planned
    if keep == "loss":
        best = min(rows, key=lambda r: r["loss"])
    else:  # the first of the most accurate, unless an equally accurate one had a lower loss
        best = rows[0]
        for row in rows[1:]:
            if (row["accuracy"], -row["loss"]) > (best["accuracy"], -best["loss"]):
                best = row
    assert history["best"]["step"] == best["step"] and history["best"]["rule"] == "best"
    assert rows[-1]["step"] - best["step"] == 10  # two evaluations without improvement


def test_sentence_pairs_and_multiclass(small_model, shared_data, tmp_path):
    """3 classes from the multilingual tweets, and the text repeated as a pair column (exercises both paths)."""
    import gzip

    rows = []
    with gzip.open(shared_data / "tweet_sentiment_multilingual" / "train.jsonl.gz", "rt") as handle:
        for line in handle:
            row = json.loads(line)
            if row.get("language") == "en":
                rows.append({"tweet": row["text"], "context": row["text"][:40], "sentiment": row["label"]})
            if len(rows) == 240:
                break
    data = tmp_path / "tweets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    train(config(small_model, data, out, text_column="tweet", text_pair_column="context",
                 label_column="sentiment", max_steps=4))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["eval"]) >= {"f1", "f1_weighted", "precision_weighted"}
    assert len(metrics["eval"]["confusion_matrix"]) == 3
    assert metrics["eval_split"].startswith("train (10% held out")
    assert metrics["eval"]["num_examples"] == 24


def test_output_files_are_readable_by_others(trained):
    import stat

    for name in ("README.md", "metrics.json", "recipe.yaml", "history.json"):
        assert (trained / name).stat().st_mode & stat.S_IROTH, name


def test_two_runs_with_different_precision_in_one_process(small_model, sst2_sample, tmp_path):
    for precision in ("fp32", "auto"):
        out = tmp_path / precision
        train(config(small_model, sst2_sample, out, max_steps=2, max_eval_samples=16, precision=precision))
        assert (out / "README.md").is_file()


def test_a_run_cut_short_by_max_steps_projects_the_full_run(small_model, sst2_sample, tmp_path, capsys):
    out = tmp_path / "short"
    train(small_run_config(small_model, sst2_sample, out, max_steps=8, epochs=2, eval_strategy="no"))
    history = json.loads((out / "history.json").read_text())
    per_step = history["train_seconds"] / 8
    assert history["projected_full_train_seconds"] == pytest.approx(per_step * 250, abs=0.2)
    assert "of the 250 steps 2 epochs take: the full run would train for about" in capsys.readouterr().out


def test_class_weights_lift_the_rare_label(small_model, sst2_sample, tmp_path):
    """Real SST-2 sentences made 1:9 imbalanced: with the loss weighted, the rare label is no longer rare to the
    model, so on balanced validation data it gives that label far more probability."""
    import textfit

    rows = [json.loads(line) for line in (sst2_sample / "train.jsonl").open()]
    labels = json.loads((sst2_sample / "labels.json").read_text())
    kept = [r for r in rows if r["label"] == 0] + [r for r in rows if r["label"] == 1][:100]
    data = tmp_path / "imbalanced"
    data.mkdir()
    (data / "labels.json").write_text(json.dumps(labels))
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (data / "validation.jsonl").write_text((sst2_sample / "validation.jsonl").read_text())
    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()]
    rare_probability = {}
    for setting in ("none", "auto"):
        out = tmp_path / setting
        train(small_run_config(small_model, data, out, class_weights=setting))
        rare_probability[setting] = float(textfit.load(out, precision="fp32").predict_proba(texts)[:, 1].mean())
    assert rare_probability["auto"] > rare_probability["none"] + 0.15, rare_probability
    # unweighted, the model learned to answer the common label only, and says so
    findings = json.loads((tmp_path / "none" / "metrics.json").read_text())["findings"]
    assert any(f.startswith(f"One class: the kept model predicts {labels[0]!r}") for f in findings), findings
    card = (tmp_path / "auto" / "README.md").read_text()
    assert f"- class_weights: auto ({labels[0]} 0.5" in card
    assert "Data checks before training:\n- labels are imbalanced in train" in card  # train ran the data check

    with pytest.raises(ConfigError, match="needs 2 positive numbers"):
        train(small_run_config(small_model, data, tmp_path / "bad", class_weights="1,2,3"))
