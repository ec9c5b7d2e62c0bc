"""The command line as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import csv
import json

from tests.conftest import run_textfit as textfit


def test_predict_texts(trained):
    result = textfit("predict", trained, "a gorgeous , witty , seductive movie .", "dull , lifeless and boring .")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("positive\t") and lines[1].startswith("negative\t")


def test_predict_file_to_jsonl_and_csv(trained, sst2_sample, tmp_path):
    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()][:50]
    out = tmp_path / "preds.jsonl"
    result = textfit("predict", trained, "--input", sst2_sample / "validation.jsonl", "--output", out)
    assert result.returncode == 0, result.stderr
    preds = [json.loads(line) for line in out.open()]
    assert len(preds) == 300
    import textfit as tf

    direct = tf.load(trained).predict(texts)
    assert [p["label"] for p in preds[:50]] == [d["label"] for d in direct]
    assert set(preds[0]["scores"]) == {"negative", "positive"}

    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review"])
        writer.writerows([[t] for t in texts])
    out_csv = tmp_path / "preds.csv"
    result = textfit("predict", trained, "--input", source, "--text-column", "review", "--output", out_csv)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["label"] for r in rows] == [d["label"] for d in direct]
    assert set(rows[0]) == {"label", "score_negative", "score_positive"}


def test_evaluate_on_another_split(trained, shared_data, tmp_path):
    out = tmp_path / "eval.json"
    result = textfit("evaluate", trained, "--dataset", shared_data / "sst2", "--split", "validation", "--output", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert metrics["num_examples"] == 872 and metrics["split"] == "validation"
    assert metrics["accuracy"] > 0.6
    assert "accuracy" in result.stdout


def test_bad_input_is_named_and_nothing_is_written(small_model, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine", "label": 1}\n{"text": "fine too", "label": 0}\n{"txt": "oops", "label": 1}\n')
    out = tmp_path / "out"
    result = textfit("train", "--model", small_model, "--dataset", data, "--output-dir", out, "--max-steps", "1")
    assert result.returncode == 2
    assert f"{data}:3: no column 'text' (columns: txt, label)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_predict_input_missing_column(trained, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "good"}\n{"body": "bad"}\n')
    result = textfit("predict", trained, "--input", source, "--output", tmp_path / "p.jsonl")
    assert result.returncode == 2
    assert f"{source}:2: no text in column 'text'" in result.stderr
    assert not (tmp_path / "p.jsonl").exists()


def test_offline_hub_model_gives_a_clear_error(tmp_path, sst2_sample):
    result = textfit("train", "--model", "some-org/not-a-real-model", "--dataset", sst2_sample,
                     "--output-dir", tmp_path / "o", "--max-steps", "1")
    assert result.returncode == 2
    assert "cannot load model 'some-org/not-a-real-model'" in result.stderr
    assert "--model path/to/folder" in result.stderr


def test_config_file_and_flags(small_model, sst2_sample, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: {small_model}\ndataset: {sst2_sample}\nmax_steps: 3\nmax_length: 32\n"
                      "eval_strategy: no\nmax_eval_samples: 20\nlearning_rate: 1.0e-4\nhead_learning_rate: 2.0e-3\n")
    out = tmp_path / "o"
    result = textfit("train", "--config", recipe, "--output-dir", out, "--seed", "7")
    assert result.returncode == 0, result.stderr
    import yaml

    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert saved["seed"] == 7 and saved["max_steps"] == 3 and saved["learning_rate"] == 1e-4
    assert saved["model"] == str(small_model)
    card = (out / "README.md").read_text()
    assert "No evaluation during training" in card
    assert "- head_learning_rate: 0.002 (the fresh output layer, 20x the learning rate)" in card


def test_each_command_takes_only_its_own_flags():
    check = textfit("check", "--help")
    assert check.returncode == 0
    assert "--dataset" in check.stdout and "--label-column" in check.stdout and "--max-length" in check.stdout
    for training_only in ("--learning-rate", "--epochs", "--precision", "--resume", "--report-to"):
        assert training_only not in check.stdout, training_only
    refused = textfit("check", "--dataset", "x", "--learning-rate", "1e-3")
    assert refused.returncode == 2 and "unrecognized arguments: --learning-rate" in refused.stderr
    # a flag's help carries the reason for its default, not the default alone
    train = textfit("train", "--help")
    assert "56%" in train.stdout  # max_length: on IMDB 256 keeps 56% of reviews whole ...


def test_a_misspelt_flag_names_the_right_one():
    result = textfit("train", "--dataset", "x", "--learnig-rate", "1e-3")
    assert result.returncode == 2
    assert "--learnig-rate (did you mean --learning-rate?)" in result.stderr


def test_old_flag_names_work_with_a_note(trained, sst2_sample):
    old = textfit("evaluate", trained, "--dataset", sst2_sample, "--split", "validation", "--max-eval-samples", "40")
    new = textfit("evaluate", trained, "--dataset", sst2_sample, "--eval-split", "validation",
                  "--max-eval-samples", "40")
    assert old.returncode == new.returncode == 0, old.stderr
    assert "note: --split is now --eval-split" in old.stderr and "note:" not in new.stderr
    assert old.stdout == new.stdout
