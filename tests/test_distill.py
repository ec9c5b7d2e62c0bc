"""`textfit distill` end to end on real data (SST-2): a 2-layer student of a 6-layer MiniLM teacher, against the
same 2-layer model trained on the labels alone; the comparison it prints; the folder in `transformers.pipeline`."""

from __future__ import annotations

import gzip
import json

import pytest

import textfit
from tests.conftest import run_textfit
from textfit.distill import student_config
from textfit.errors import ConfigError

SENTENCES = 1500  # labelled training sentences for the teacher, the student and the labels-only model
UNLABELLED = 3000  # further train sentences, labels dropped: what the teacher teaches beyond the labels
COMMON = ("--max-length", "64", "--epochs", "2", "--baseline", "none")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("distill") / "teacher"
    done = run_textfit("train", "--dataset", shared_data / "sst2", "--max-train-samples", SENTENCES,
                       "--learning-rate", "5e-5", *COMMON, "--output-dir", out)
    assert done.returncode == 0, done.stderr
    return out


def unlabelled_sentences(shared_data, teacher, path):
    """Train sentences the teacher never saw (by text), without their labels."""
    used = {ex.text for ex in textfit.training.load_data(student_config(teacher, output_dir="x")).train}
    with gzip.open(shared_data / "sst2" / "train.jsonl.gz", "rt", encoding="utf-8") as handle:
        rest = [text for line in handle if (text := json.loads(line)["text"]) not in used][:UNLABELLED]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rest), encoding="utf-8")
    return path, used


@pytest.fixture(scope="module")
def student(teacher, shared_data, tmp_path_factory):
    """The 2-layer student of both tests (one distillation: on 2 fp32-only cores it takes over a minute)."""
    folder = tmp_path_factory.mktemp("student")
    unlabelled, used = unlabelled_sentences(shared_data, teacher, folder / "unlabelled.jsonl")
    assert len(used) > 0.95 * SENTENCES  # the teacher's subset was found (a few sentences repeat in SST-2)
    done = run_textfit("distill", teacher, "--layers", "2", "--unlabelled", unlabelled, "--learning-rate", "1e-4",
                       "--speed-texts", "32", "--output-dir", folder / "out")
    assert done.returncode == 0, done.stderr
    return folder / "out", done.stdout


def test_a_student_beats_the_same_model_trained_on_labels_alone(teacher, student, tmp_path):
    student, printed = student
    for row in ("accuracy", "same answers", "student - teacher:", "weights (MB)", "torch-fp32 texts/s",
                "onnxruntime-fp32 texts/s"):
        assert row in printed
    alone = tmp_path / "labels-only"
    done = run_textfit("train", "--config", teacher / "recipe.yaml", "--layers", "2", "--learning-rate", "1e-4",
                       "--output-dir", alone)
    assert done.returncode == 0, done.stderr

    distilled = json.loads((student / "metrics.json").read_text())
    labels_only = json.loads((alone / "metrics.json").read_text())["eval"]["accuracy"]
    report = distilled["distillation"]
    assert report["texts"] == SENTENCES + UNLABELLED and report["unlabelled"] == UNLABELLED
    assert distilled["eval"]["num_examples"] == 872  # the teacher's evaluation set: all of SST-2 validation
    assert distilled["eval"]["accuracy"] > labels_only, (distilled["eval"]["accuracy"], labels_only)
    assert report["agreement"] > distilled["eval"]["accuracy"] - 0.02  # it follows the teacher, mistakes included
    lo, hi = report["difference_ci"]  # the gap to the teacher, paired on the same 872 sentences
    assert report["difference"] == pytest.approx(report["student_value"] - report["teacher_value"], abs=1e-9)
    assert lo <= report["difference"] <= hi and hi - lo < 0.08
    timing = json.loads((student / "distillation.json").read_text())["cpu_backends"]
    assert [side["layers"] for side in timing] == [6, 2]
    assert not (teacher / "model.onnx").exists()  # the teacher was timed from a copy: its folder is as it was


def test_the_student_folder_loads_in_pipeline(teacher, student):
    from transformers import pipeline

    student, _ = student
    card = (student / "README.md").read_text()
    assert f"This is a 2-layer student of `{teacher}` (6 layers)" in card
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés ."]
    pipe = pipeline("text-classification", model=str(student), device=-1)
    assert pipe.model.config.num_hidden_layers == 2
    ours = textfit.load(student, backend="torch", precision="fp32").predict(texts)
    assert [p["label"] for p in pipe(texts)] == [p["label"] for p in ours]
    for theirs, mine in zip(pipe(texts, top_k=None), ours, strict=True):
        assert {d["label"]: round(d["score"], 4) for d in theirs} == {k: round(v, 4) for k, v in mine["scores"].items()}


def test_the_student_needs_its_own_folder(teacher):
    with pytest.raises(ConfigError, match="is the teacher's own folder"):
        student_config(teacher, output_dir=str(teacher))
    inherited = student_config(teacher, output_dir="elsewhere", epochs=1)
    assert inherited.max_length == 64 and inherited.max_train_samples == SENTENCES and inherited.epochs == 1
    assert inherited.layers == 2 and inherited.teacher == str(teacher) and not inherited.overwrite
