"""The default model (all-MiniLM-L6-v2, 6 layers) end to end on the bundled IMDB sample: what `make demo` does."""

from __future__ import annotations

import json

import pytest

from textfit.config import TrainConfig
from textfit.training import train


@pytest.mark.slow
def test_default_model_on_imdb_sample(imdb_sample, tmp_path):
    out = tmp_path / "imdb"
    train(TrainConfig(dataset=str(imdb_sample), eval_split="test", output_dir=str(out), learning_rate=5e-5,
                      epochs=1, max_length=128, eval_batch_size=32))  # 128: half the time of 256, same check
    metrics = json.loads((out / "metrics.json").read_text())["eval"]
    labels = [json.loads(line)["label"] for line in (imdb_sample / "test.jsonl").open()]
    majority = max(labels.count(0), labels.count(1)) / len(labels)
    assert metrics["accuracy"] >= majority + 0.2, (metrics["accuracy"], majority)

    # long reviews: the saved tokenizer truncates where training did, so the pipeline agrees with textfit
    from transformers import pipeline

    import textfit

    texts = [json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()][:40]
    assert max(len(t.split()) for t in texts) > 300
    ours = textfit.load(out, precision="fp32").predict(texts)  # the pipeline computes in fp32
    theirs = pipeline("text-classification", model=str(out))(texts, truncation=True)
    for mine, other in zip(ours, theirs, strict=True):
        assert mine["label"] == other["label"]
        assert mine["scores"][other["label"]] == pytest.approx(other["score"], abs=1e-4)
