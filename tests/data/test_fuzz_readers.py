"""Fuzzed input: whatever bytes a data file holds, reading it gives rows or a DataError that names the file (and
the line where there is one), never another exception. Property-based (hypothesis), seeded and bounded."""

from __future__ import annotations

import gzip
import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textfit.data import Columns, load_training_data
from textfit.data.readers import read_rows
from textfit.errors import DataError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SUFFIXES = st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz"])
# texts made of what breaks readers: quotes, separators, newlines, NULs, odd Unicode, very long fields
PIECES = st.one_of(st.text(alphabet=string.printable, max_size=30),
                   st.sampled_from(['"', '""', ",", "\t", "\n", "\r\n", "\x00", "\ufeff", "\u2028", "é", "[", "{",
                                    "}", "]", "\\", "label", "text"]),
                   st.integers(0, 200_000).map(lambda n: "x" * n))


def _write(tmp: Path, suffix: str, data: bytes) -> Path:
    path = tmp / f"data{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    return path


def _outcome(path: Path, columns: Columns | None = None) -> None:
    """Rows, or a DataError that names the file; anything else fails the test."""
    try:
        load_training_data(str(path), columns or Columns(), validation_fraction=0.5)
    except DataError as exc:
        assert str(path) in str(exc) or "label_pattern" in str(exc), str(exc)


@FUZZ
@given(suffix=SUFFIXES, data=st.binary(max_size=3000))
def test_random_bytes(tmp_path_factory, suffix, data):
    _outcome(_write(tmp_path_factory.mktemp("bytes"), suffix, data))


@FUZZ
@given(suffix=SUFFIXES, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig", "cp1252"]),
       cells=st.lists(st.lists(PIECES, min_size=1, max_size=4), min_size=0, max_size=12))
def test_delimited_and_json_lines_made_of_awkward_pieces(tmp_path_factory, suffix, encoding, cells):
    sep = "\t" if ".tsv" in suffix else ","
    if ".json" in suffix:
        lines = [json.dumps({"text": "".join(row), "label": row[0][:5]}) if len(row) % 2 else "".join(row)
                 for row in cells]
    else:
        lines = [f"text{sep}label", *(sep.join(row) for row in cells)]
    data = "\n".join(lines).encode(encoding, errors="replace")
    _outcome(_write(tmp_path_factory.mktemp("pieces"), suffix, data))


@FUZZ
@given(pattern=st.text(alphabet=string.printable, max_size=20))
def test_label_patterns(tmp_path_factory, pattern):
    path = tmp_path_factory.mktemp("pattern") / "train.jsonl"
    rows = [{"text": f"review {i}", "id": f"train/pos/{i}_{i % 10 + 1}"} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _outcome(path, Columns(label="id", label_pattern=pattern))


def test_a_huge_field_is_read_whole(tmp_path):
    """A CSV cell of 5 MB (a book in one review) is a long text, not an error."""
    path = tmp_path / "big.csv"
    path.write_text("text,label\n" + f'"{"word " * 1_000_000}",pos\n' + "short,neg\n")
    rows = read_rows(path)
    assert len(rows) == 2 and len(rows[0]["text"]) == 5_000_000


def test_errors_name_file_and_line(tmp_path):
    path = _write(tmp_path, ".csv", b"text,label\ngood,pos\nx,y,z\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:3: expected 2 fields"):
        read_rows(path)
