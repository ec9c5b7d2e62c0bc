"""Prediction of large files: streamed, written as a whole at the end, and continued after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import run_textfit as textfit


def write_big_input(sst2_sample, path, copies: int) -> int:
    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()]
    with path.open("w") as handle:
        for copy in range(copies):
            for text in texts:
                handle.write(json.dumps({"id": copy, "text": text}) + "\n")
    return copies * len(texts)


def test_killed_prediction_continues_where_it_stopped(trained, sst2_sample, tmp_path):
    source = tmp_path / "big.jsonl"
    rows = write_big_input(sst2_sample, source, copies=20)  # 6,000 texts, 6 chunks
    out = tmp_path / "preds.jsonl"
    partial = tmp_path / "preds.jsonl.partial"
    process = subprocess.Popen([sys.executable, "-m", "textfit", "predict", str(trained), "--input", str(source),
                                "--output", str(out), "--backend", "torch"],
                               env=os.environ | {"HF_HUB_OFFLINE": "1"}, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not partial.is_file() or partial.read_bytes().count(b"\n") < 2048):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = partial.read_bytes().count(b"\n")
    assert 2048 <= done_before < rows, "the kill should land midway"
    assert not out.exists()  # never half a file under the final name
    with partial.open("a") as handle:
        handle.write('{"label": "posi')  # a line torn by the kill

    result = textfit("predict", trained, "--input", source, "--output", out, "--backend", "torch")
    assert result.returncode == 0, result.stderr
    assert f"continuing {partial}: {done_before:,} rows already predicted" in result.stderr
    assert not partial.exists()
    resumed = out.read_text().splitlines()
    assert len(resumed) == rows

    fresh = tmp_path / "fresh.jsonl"
    assert textfit("predict", trained, "--input", source, "--output", fresh, "--backend", "torch").returncode == 0
    expected = fresh.read_text().splitlines()
    assert [json.loads(line)["label"] for line in resumed] == [json.loads(line)["label"] for line in expected]


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
