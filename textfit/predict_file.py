"""Predict a file of any size in constant memory, and continue where an interrupted run stopped.

Predictions go to `OUTPUT.partial`, flushed to disk after every chunk, with a small `OUTPUT.partial.json` that
says which input and model they belong to. Run the same command again and the rows already predicted are
skipped; when the last row is written the partial file is renamed to OUTPUT, so OUTPUT is never half a file.
A run continues from the last whole chunk, so every row is predicted in the same batches as in one uninterrupted
run and the file comes out the same to the byte (other batches pad differently and move the scores' last digits).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from textfit.data.readers import WHERE, iter_rows
from textfit.errors import DataError
from textfit.io import atomic_write_json
from textfit.predict import Classifier

CHUNK = 1024  # texts per sorted chunk: ~99% of the padding saved by global sorting, a few MB of token ids


def predict_file(clf: Classifier, input_path: str | Path, output_path: str | Path, text_column: str,
                 *, chunk_size: int = CHUNK, progress: bool = True, windows: bool | None = None) -> int:
    """Write one prediction per input row (JSON Lines, or CSV when OUTPUT ends in .csv); return the row count.
    `windows` unset: as the model's own setting says."""
    source, out = Path(input_path), Path(output_path)
    windows = clf.windows if windows is None else windows
    partial, marker = out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")
    identity = {"input": str(source.resolve()), "input_bytes": source.stat().st_size if source.is_file() else None,
                "input_mtime": source.stat().st_mtime if source.is_file() else None,
                "model": str(clf.path.resolve()), "labels": clf.labels, "text_column": text_column,
                "windows": windows, "chunk_size": chunk_size}
    as_csv = out.suffix.lower() == ".csv"
    done = _rows_done(partial, marker, identity, as_csv, chunk_size)
    if done:
        print(f"continuing {partial}: {done:,} rows already predicted", file=sys.stderr)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            if as_csv:
                handle.write(_csv_line([clf.task.answer_key, *(f"score_{name}" for name in clf.labels)]))
        atomic_write_json(marker, identity)

    total = _count_lines(source)
    bar = tqdm(total=total, initial=done, unit=" texts", disable=not progress, file=sys.stderr, smoothing=0.1,
               dynamic_ncols=True, desc="predicting")
    rows = done
    texts = _texts(source, text_column, skip=done)
    with open(partial, "a", encoding="utf-8", newline="") as handle:
        while chunk := _take(texts, chunk_size):
            lines = [_format(pred, clf.labels, as_csv) for pred in clf.predict(chunk, windows=windows)]
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
            rows += len(chunk)
            bar.update(len(chunk))
    bar.close()
    os.replace(partial, out)
    marker.unlink(missing_ok=True)
    return rows


def _texts(source: Path, column: str, skip: int) -> Iterator[str]:
    for index, row in enumerate(iter_rows(source)):
        if index < skip:
            continue
        value = row.get(column)
        if not isinstance(value, str):
            present = ", ".join(k for k in row if k != WHERE)
            raise DataError(f"{row[WHERE]}: no text in column {column!r} (columns: {present}); use --text-column")
        yield value


def _take(texts: Iterator[str], n: int) -> list[str]:
    chunk = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == n:
            break
    return chunk




def _format(pred: dict[str, Any], labels: list[str], as_csv: bool) -> str:
    if as_csv:
        answer = pred.get("label") or ";".join(pred.get("labels", [])) if "value" not in pred else pred["value"]
        return _csv_line([answer, *(f"{pred['scores'][name]:.6f}" for name in labels)])
    return json.dumps(pred, ensure_ascii=False) + "\n"


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _rows_done(partial: Path, marker: Path, identity: dict, as_csv: bool, chunk_size: int) -> int:
    """Rows a previous run wrote for the same input and model, in whole chunks (0 if none): a kill can tear a
    chunk's write anywhere, so the rows after its last whole chunk are cut off and predicted again."""
    if not (partial.is_file() and marker.is_file()):
        return 0
    try:
        if json.loads(marker.read_text()) != identity:
            print(f"{partial}: written for another input, model or chunk size; starting over", file=sys.stderr)
            return 0
    except json.JSONDecodeError:
        return 0
    rows = kept = offset = 0
    with open(partial, "rb+") as handle:  # line by line: a partial file can be larger than memory
        for number, line in enumerate(handle):
            if not line.endswith(b"\n"):  # the line the kill tore
                break
            offset += len(line)
            rows += number >= as_csv  # a CSV's first line is its header
            if rows % chunk_size == 0:
                kept = offset
        handle.truncate(kept)
    return rows - rows % chunk_size


def _count_lines(path: Path) -> int | None:
    """Rows to expect, for the progress bar: known cheaply for uncompressed JSON Lines only."""
    if path.suffix.lower() != ".jsonl":
        return None
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")
