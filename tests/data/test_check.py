"""`textfit check`: each warning provoked by real data, and silence on clean data."""

from __future__ import annotations

import json

from tests.conftest import run_textfit
from textfit.data import Columns, load_training_data
from textfit.data.check import check_data

COLUMNS = Columns("text", "label", None)


def test_imdb_train_and_test_share_123_reviews(shared_data):
    data = load_training_data(str(shared_data / "imdb"), COLUMNS, eval_split="test")
    report = check_data(data.train, data.eval, data.label_names)
    shared = next(w for w in report.warnings if "evaluation texts also appear in train" in w)
    assert shared.startswith("123 evaluation texts")
    assert "test/" in shared  # names the reviews by their ids
    assert any(w.startswith("96 duplicate texts in train") for w in report.warnings)


def test_clean_sample_has_no_warnings(sst2_sample, small_model):
    from transformers import AutoTokenizer

    data = load_training_data(str(sst2_sample), COLUMNS)
    report = check_data(data.train, data.eval, data.label_names, tokenizer=AutoTokenizer.from_pretrained(small_model),
                        max_length=64)
    assert report.warnings == []
    assert "train: 2,000 texts; labels: negative 899, positive 1,101" in report.lines


def test_imbalance_conflicts_and_truncation_are_named(sst2_sample, imdb_sample, small_model, tmp_path):
    from transformers import AutoTokenizer

    rows = [json.loads(line) for line in (sst2_sample / "train.jsonl").open()]
    skewed = [r for r in rows if r["label"] == 0] + [r for r in rows if r["label"] == 1][:100]
    skewed.append({**skewed[0], "label": 1})  # the same sentence with the other label
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in skewed))
    (tmp_path / "labels.json").write_text((sst2_sample / "labels.json").read_text())
    data = load_training_data(str(tmp_path), COLUMNS)
    report = check_data(data.train, data.eval, data.label_names)
    assert any("imbalanced in train" in w and "--class-weights auto" in w for w in report.warnings), report.warnings
    assert any(w.startswith("1 texts appear in train with different labels") for w in report.warnings)

    imdb = load_training_data(str(imdb_sample), COLUMNS, eval_split="test")
    report = check_data(imdb.train, imdb.eval, imdb.label_names,
                        tokenizer=AutoTokenizer.from_pretrained(small_model), max_length=128)
    assert any(w.startswith("max_length 128:") and "truncated" in w for w in report.warnings)


def test_check_command_and_train_warn(imdb_sample, small_model, tmp_path):
    result = run_textfit("check", "--dataset", imdb_sample, "--eval-split", "test", "--model", small_model,
                         "--max-length", "128")
    assert result.returncode == 0, result.stderr
    assert "warning: max_length 128:" in result.stdout
    assert "train: 1,000 texts" in result.stdout


def test_truncation_is_reported_at_the_length_training_keeps(imdb_sample, small_model):
    """A max_length past the model's limit is cut to the limit in training, so the report counts at the limit."""
    from transformers import AutoTokenizer

    data = load_training_data(str(imdb_sample), COLUMNS, eval_split="test")
    tokenizer = AutoTokenizer.from_pretrained(small_model, model_max_length=128)
    report = check_data(data.train, data.eval, data.label_names, tokenizer=tokenizer, max_length=4096)
    assert any(w.startswith("max_length 128:") and "truncated" in w for w in report.warnings), report.warnings
