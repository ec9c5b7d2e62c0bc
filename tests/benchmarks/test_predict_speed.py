"""The prediction-speed table divides by the texts actually timed (SST-2 validation has 872 sentences, whatever
--texts asks) and scores each variant against the gold labels of those very texts: a throughput 2.29x too high
once came from dividing by --texts."""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import predict_speed


def test_throughput_divides_by_the_texts_timed_and_accuracy_uses_their_labels(tmp_path, shared_data):
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "neg", "1": "pos"}}))
    args = argparse.Namespace(texts=1000, repeats=2)  # more than SST-2 validation has
    variants = ("pipeline", "pipeline-sorted", "torch-fp32", "onnxruntime-int8")
    timings = predict_speed.Timings()
    gold: dict[str, list[str]] = {}
    for name, dataset in predict_speed.DATASETS.items():
        texts, labels = predict_speed.sample(*dataset.split(":"), args.texts)
        # gold in the model's names (SST-2's negative/positive matched by position), as a perfect model answers
        gold[name] = ["neg" if label in ("neg", "negative") else "pos" for label in labels]
        timings.counts[name] = len(texts)
        for speed, variant in enumerate(variants, start=1):
            timings.seconds[(name, variant)] = [10.0 / speed, 12.0 / speed]
            timings.labels[(name, variant)] = gold[name] if variant != "onnxruntime-int8" else ["pos"] * len(texts)
    assert timings.counts == {"IMDB test reviews": 1000, "SST-2 validation sentences": 872}

    lines, rows = predict_speed.batch_table(args, tmp_path, variants, timings)
    for row in rows:
        count = timings.counts[row["texts"]]
        assert row["count"] == count
        assert row["texts_per_s"] == count / statistics.median(timings.seconds[(row["texts"], row["variant"])])
        right = gold[row["texts"]]
        if row["variant"] == "onnxruntime-int8":  # says "pos" to everything: the share of positives, not 1
            assert row["accuracy"] == right.count("pos") / count < 0.6
            assert row["same_labels"] == row["accuracy"]
        else:
            assert row["accuracy"] == row["same_labels"] == 1.0
    sst2 = [r for r in rows if r["texts"].startswith("SST-2")]
    assert [round(r["x_pipeline"], 6) for r in sst2] == [1.0, 2.0, 3.0, 4.0]
    assert "SST-2 validation sentences 872" in lines[3] and "at most 1,000" in lines[3]
    assert len([line for line in lines if line.startswith("| SST-2")]) == len(variants)
