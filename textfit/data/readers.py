"""Read rows from local files, each tagged with where it came from (`file:line`) for error messages.

Plain readers rather than `datasets.load_dataset` for local files: they name the file, line and column of a
malformed row instead of failing inside Arrow, and they stream gzip without a cache folder.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textfit.errors import DataError

Row = dict[str, Any]
WHERE = "_where"  # key added to each row: "path:line" (or "path:row N" for Parquet)

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


def data_suffix(path: Path) -> str | None:
    """The format suffix of a data file, looking through a trailing .gz; None for other files."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes and suffixes[-1] in SUFFIXES else None


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_rows(path: str | Path) -> Iterator[Row]:
    """Yield the rows of one data file, streaming; raise DataError naming file and line on bad input."""
    path = Path(path)
    kind = data_suffix(path)
    if kind is None:
        raise DataError(f"{path}: unknown data format; use one of {', '.join(SUFFIXES)} (optionally .gz)")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if kind in (".jsonl", ".json"):
            yield from _iter_json(path)
        elif kind in (".csv", ".tsv"):
            yield from _iter_delimited(path, "\t" if kind == ".tsv" else ",")
        else:
            yield from _iter_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot be read ({exc})") from None


def read_rows(path: str | Path) -> list[Row]:
    rows = list(iter_rows(path))
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    return rows


def _iter_json(path: Path) -> Iterator[Row]:
    with _open_text(path) as handle:
        first = handle.read(1)
        while first.isspace():
            first = handle.read(1)
        handle.seek(0)
        if first == "[":  # a JSON array of objects rather than JSON Lines
            try:
                data = json.load(handle)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
            for index, row in enumerate(data):
                yield _checked_object(row, f"{path}: item {index}")
            return
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_number}:{exc.colno}: not valid JSON ({exc.msg})") from None
            yield _checked_object(row, f"{path}:{line_number}")


def _checked_object(row: Any, where: str) -> Row:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object with named fields, got {type(row).__name__}")
    row[WHERE] = where
    return row


FIELD_LIMIT = 2**31 - 1  # a whole book in one cell is a long text, not an error (csv's default stops at 128 KB)


def _iter_delimited(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(FIELD_LIMIT)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            yield from _delimited_rows(path, reader)
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: not valid {'TSV' if delimiter == chr(9) else 'CSV'} "
                            f"({exc})") from None


def _delimited_rows(path: Path, reader) -> Iterator[Row]:
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    for fields in reader:
        if not fields or fields == [""]:
            continue
        if len(fields) != width:
            raise DataError(
                f"{path}:{reader.line_num}: expected {width} fields as in the header "
                f"({', '.join(header)}), found {len(fields)}"
            )
        row: Row = dict(zip(header, fields, strict=True))
        row[WHERE] = f"{path}:{reader.line_num}"
        yield row


def _iter_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for index, row in enumerate(table.to_pylist()):
        row[WHERE] = f"{path}: row {index + 1}"
        yield row


def iter_aclimdb(folder: Path, split: str) -> Iterator[Row]:
    """The original IMDB release layout: aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt."""
    for label in ("neg", "pos"):
        for path in sorted((folder / split / label).glob("*.txt")):
            yield {"text": path.read_text(encoding="utf-8"), "label": label,
                   "id": f"{split}/{label}/{path.stem}", WHERE: str(path)}
