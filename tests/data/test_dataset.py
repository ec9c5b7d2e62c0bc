"""Reading datasets: formats, layouts, columns, labels, and a clear error for each kind of bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textfit.data import Columns, load_eval_examples, load_training_data
from textfit.data.readers import read_rows
from textfit.errors import DataError

ROWS = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": "pos" if i % 2 else "neg"}
        for i in range(40)]


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    if suffix.startswith(".jsonl"):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if suffix.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    elif suffix in (".csv", ".tsv"):
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.csv", "d.tsv", "d.parquet", "d.json"])
def test_every_format_reads_the_same_rows(tmp_path, name):
    rows = read_rows(write(tmp_path / name, ROWS))
    assert [(r["text"], r["label"]) for r in rows] == [(r["text"], r["label"]) for r in ROWS]
    assert rows[0]["_where"].startswith(str(tmp_path / name))


def test_single_file_holds_out_a_seeded_validation_split(tmp_path):
    path = write(tmp_path / "d.csv", ROWS)
    a = load_training_data(str(path), Columns(), seed=1)
    b = load_training_data(str(path), Columns(), seed=1)
    c = load_training_data(str(path), Columns(), seed=2)
    assert len(a.train) == 36 and len(a.eval) == 4
    assert [e.text for e in a.eval] == [e.text for e in b.eval] != [e.text for e in c.eval]
    assert not {e.text for e in a.eval} & {e.text for e in a.train}
    assert a.label_names == ["neg", "pos"]  # names kept, sorted


def test_folder_of_splits_with_labels_json_and_integer_labels(shared_data):
    data = load_training_data(str(shared_data / "sst2"), Columns(), max_train_samples=100, max_eval_samples=50)
    assert data.label_names == ["negative", "positive"]
    assert data.eval_split == "validation"
    assert len(data.train) == 100 and len(data.eval) == 50
    again = load_training_data(str(shared_data / "sst2"), Columns(), max_train_samples=100, max_eval_samples=50)
    assert [e.text for e in data.train] == [e.text for e in again.train]  # seeded subset


def test_dev_file_counts_as_validation_and_integer_labels_become_names(tmp_path):
    write(tmp_path / "train.csv", [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 1}])
    write(tmp_path / "dev.csv", [{"text": "d", "label": 1}])
    data = load_training_data(str(tmp_path), Columns())
    assert data.eval_split == "validation"
    assert data.label_names == ["0", "1"]
    assert [e.label for e in data.eval] == [1]


def test_aclimdb_layout(tmp_path):
    for split in ("train", "test"):
        for label, text in (("pos", "loved it"), ("neg", "hated it")):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_{9 if label == 'pos' else 2}.txt").write_text(f"{text} {i}")
    data = load_training_data(str(tmp_path), Columns(), eval_split="test")
    assert data.label_names == ["neg", "pos"]
    assert len(data.train) == 6 and len(data.eval) == 6
    assert {e.extra["id"] for e in data.eval} >= {"test/pos/0_9", "test/neg/2_2"}


def test_other_column_names(tmp_path):
    rows = [{"review": r["text"], "stars": r["label"], "extra": 1} for r in ROWS]
    path = write(tmp_path / "d.jsonl", rows)
    data = load_training_data(str(path), Columns(text="review", label="stars"))
    assert len(data.train) + len(data.eval) == 40


# -- bad input: each error names the file and line (or the value) --------------------------------


def test_missing_column(tmp_path):
    path = write(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(DataError, match=r"d\.jsonl:1: no column 'sentence' \(columns: text, label\)"):
        load_training_data(str(path), Columns(text="sentence"))


def test_empty_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("")
    with pytest.raises(DataError, match=r"d\.jsonl: the file holds no rows"):
        load_training_data(str(path), Columns())


def test_empty_text(tmp_path):
    rows = [*ROWS[:5], {"text": "   ", "label": "pos"}, *ROWS[5:]]
    path = write(tmp_path / "d.csv", rows)
    with pytest.raises(DataError, match=r"d\.csv:7: column 'text' is empty"):  # header is line 1
        load_training_data(str(path), Columns())


def test_malformed_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": "pos"}\n{"text": "broken, "label": "neg"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2:\d+: not valid JSON"):
        load_training_data(str(path), Columns())


def test_csv_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfine,pos\ntoo,many,fields\n")
    with pytest.raises(DataError, match=r"d\.csv:3: expected 2 fields"):
        load_training_data(str(path), Columns())


def test_unknown_label_in_evaluation_set(tmp_path):
    write(tmp_path / "train.jsonl", ROWS)
    write(tmp_path / "validation.jsonl", [{"text": "meh", "label": "pos"}, {"text": "so-so", "label": "mixed"}])
    message = r"validation\.jsonl:2: label 'mixed' is unknown to the model, which knows neg, pos"
    with pytest.raises(DataError, match=message):
        load_training_data(str(tmp_path), Columns())


def test_evaluation_split_checked_against_model_labels(shared_data):
    with pytest.raises(DataError, match=r"labels\.json lists"):
        load_eval_examples(str(shared_data / "sst2"), "validation", Columns(), ["neg", "pos"], 10, 0)
    examples, split = load_eval_examples(str(shared_data / "sst2"), None, Columns(), ["negative", "positive"], 10, 0)
    assert split == "validation" and len(examples) == 10


def test_label_index_outside_labels_json(tmp_path):
    (tmp_path / "labels.json").write_text('["neg", "pos"]')
    write(tmp_path / "train.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 2}])
    with pytest.raises(DataError, match=r"train\.jsonl:2: label 2 is outside 0\.\.1"):
        load_training_data(str(tmp_path), Columns())


def test_one_label_only(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": "pos"} for i in range(20)])
    with pytest.raises(DataError, match="one label only"):
        load_training_data(str(path), Columns())


def test_hub_name_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"not a local file or folder.*Pass a local file or folder instead"):
        load_training_data("some-user/no-such-dataset", Columns())
