"""Prediction of large files: streamed, written as a whole at the end, and continued after a kill."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_textfit as textfit


def write_big_input(sst2_sample, path, copies: int) -> int:
    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()]
    with path.open("w") as handle:
        for copy in range(copies):
            for text in texts:
                handle.write(json.dumps({"id": copy, "text": text}) + "\n")
    return copies * len(texts)


def test_partial_of_another_input_is_not_reused(trained, sst2_sample, tmp_path):
    source = tmp_path / "in.jsonl"
    write_big_input(sst2_sample, source, copies=1)
    out = tmp_path / "preds.csv"
    (tmp_path / "preds.csv.partial").write_text("label,score_negative,score_positive\nnegative,0.9,0.1\n")
    (tmp_path / "preds.csv.partial.json").write_text(json.dumps({"input": "/elsewhere.jsonl"}))
    result = textfit("predict", trained, "--input", source, "--output", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "starting over" in result.stderr
    assert len(out.read_text().splitlines()) == 301  # header + 300


def test_a_write_torn_mid_chunk_resumes_to_the_same_bytes(trained, sst2_sample, tmp_path, monkeypatch, capsys):
    """A kill can land inside a chunk's write. The rows after it must then be predicted in the same chunks as
    an uninterrupted run, or their scores differ in the last digits (other batches, other padding). Real kills of
    a real process, again and again: tests/training/test_kills.py."""
    from textfit.predict import load
    from textfit.predict_file import predict_file

    clf = load(trained, precision="fp32")
    source = tmp_path / "in.jsonl"
    rows = write_big_input(sst2_sample, source, copies=1)
    reference, out = tmp_path / "straight.jsonl", tmp_path / "torn.jsonl"
    predict_file(clf, source, reference, "text", chunk_size=64, progress=False)

    real_predict, calls = clf.predict, []

    def killed_at_the_third_chunk(texts, **kwargs):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(texts, **kwargs)

    monkeypatch.setattr(clf, "predict", killed_at_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_file(clf, source, out, "text", chunk_size=64, progress=False)
    monkeypatch.setattr(clf, "predict", real_predict)
    assert not out.exists()  # never half a file under the final name
    partial = out.with_name(out.name + ".partial")
    torn = b"".join(partial.read_bytes().splitlines(keepends=True)[:100])  # 1 chunk and 36 rows of the next
    partial.write_bytes(torn + b'{"label": "neg')

    capsys.readouterr()
    assert predict_file(clf, source, out, "text", chunk_size=64, progress=False) == rows
    assert f"continuing {partial}: 64 rows already predicted" in capsys.readouterr().err  # the whole chunk
    assert out.read_bytes() == reference.read_bytes()
    assert not partial.exists() and not partial.with_name(partial.name + ".json").exists()


def test_only_whole_chunks_are_kept_of_a_partial_file(tmp_path):
    from textfit.predict_file import _rows_done

    marker, identity = tmp_path / "out.partial.json", {"input": "in.jsonl"}
    marker.write_text(json.dumps(identity))
    partial = tmp_path / "out.partial"
    header, rows = "label,score_a\n", [f"a,0.{i:03d}\n" for i in range(130)]
    partial.write_text(header + "".join(rows) + "a,0.9")  # 2 chunks of 64, 2 rows more and a torn one
    assert _rows_done(partial, marker, identity, as_csv=True, chunk_size=64) == 128
    assert partial.read_text() == header + "".join(rows[:128])
    partial.write_text("".join('{"label": "a"}\n' for _ in range(63)))
    assert _rows_done(partial, marker, identity, as_csv=False, chunk_size=64) == 0
    assert partial.read_text() == ""
