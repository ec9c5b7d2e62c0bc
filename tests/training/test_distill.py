"""Distillation (textfit/training/distill.py): the losses, the student's layers, the checks on the teacher, and
students of every task trained from a real teacher on real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import textfit
from tests.conftest import SAMPLES
from textfit.config import TrainConfig
from textfit.data.dataset import read_unlabelled_texts
from textfit.errors import ConfigError, DataError
from textfit.task import MULTI_LABEL, REGRESSION, SINGLE
from textfit.training import Distill
from textfit.training.model import keep_first_layers


def test_soft_losses_are_zero_only_where_student_and_teacher_agree():
    teacher = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    for task in (SINGLE, MULTI_LABEL, REGRESSION):
        same = float(task.soft_loss(teacher.clone(), teacher, 2.0))
        assert float(task.soft_loss(teacher.flip(0), teacher, 2.0)) > same + 0.1
        assert float(task.soft_loss(teacher + torch.tensor([0.3, -0.3, 0.0]), teacher, 2.0)) > same
        if task is not MULTI_LABEL:  # BCE against soft targets bottoms out at their entropy, not at 0
            assert same == pytest.approx(0.0, abs=1e-6)
    # T^2 keeps the gradient's size comparable across temperatures (Hinton et al.)
    student = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    SINGLE.soft_loss(student, teacher[:1], 4.0).backward()
    assert 0.01 < float(student.grad.abs().sum()) < 10


def test_the_loss_mixes_teacher_and_labels_and_skips_missing_labels(small_model, sst2_sample, tmp_path):
    run = Distill(TrainConfig(model=str(small_model), dataset=str(sst2_sample), teacher=str(small_model),
                              soft_weight=0.25, temperature=2.0, output_dir=str(tmp_path / "x")))
    run.task, run.class_weights = SINGLE, None
    logits = torch.tensor([[1.0, -1.0], [0.2, 0.4]])
    teacher = torch.tensor([[3.0, -3.0], [-1.0, 1.0]])
    labelled = torch.cat([teacher, torch.tensor([[0.0], [1.0]])], dim=1)
    soft, hard = SINGLE.soft_loss(logits, teacher, 2.0), SINGLE.loss(logits, torch.tensor([0, 1]))
    assert float(run.loss(logits, labelled)) == pytest.approx(float(0.25 * soft + 0.75 * hard))
    unlabelled = torch.cat([teacher, torch.full((2, 1), math.nan)], dim=1)
    assert float(run.loss(logits, unlabelled)) == pytest.approx(float(soft))  # the teacher alone
    mixed = torch.cat([teacher, torch.tensor([[0.0], [math.nan]])], dim=1)
    expected = 0.25 * soft + 0.75 * SINGLE.loss(logits[:1], torch.tensor([0]))
    assert float(run.loss(logits, mixed)) == pytest.approx(float(expected))


def test_keep_first_layers(small_model):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(small_model, num_labels=2)
    keep_first_layers(model, 1)
    assert len(model.bert.encoder.layer) == 1 and model.config.num_hidden_layers == 1
    with pytest.raises(ConfigError, match="the model has 1 layers; choose 1 to 1"):
        keep_first_layers(model, 3)


def test_unlabelled_texts_are_read_from_txt_and_data_files(tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("first text\n\n  second text \n", encoding="utf-8")
    assert read_unlabelled_texts(lines) == ["first text", "second text"]
    rows = tmp_path / "texts.jsonl"
    rows.write_text('{"review": "good"}\n{"review": "bad", "label": 1}\n{"other": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"texts.jsonl:3: no column 'review'"):
        read_unlabelled_texts(rows, "review")
    with pytest.raises(ConfigError, match="needs a teacher"):
        TrainConfig(unlabelled=str(lines))


def test_a_teacher_of_other_labels_or_tokens_is_refused(small_model, sst2_sample, tmp_path):
    teacher = textfit.train(model=str(small_model), dataset=str(SAMPLES / "imdb_sample"), max_steps=2,
                            max_length=32, baseline="none", output_dir=str(tmp_path / "teacher"))
    assert teacher.metrics  # a teacher of labels neg/pos; SST-2's sample has negative/positive
    with pytest.raises(ConfigError, match=r"labels \['neg', 'pos'\].*labels \['negative', 'positive'\]"):
        textfit.train(model=str(small_model), dataset=str(sst2_sample), teacher=str(tmp_path / "teacher"),
                      layers=1, output_dir=str(tmp_path / "student"))
    with pytest.raises(ConfigError, match="its tokenizer is not"):
        textfit.train(model="multilingual-e5-small", dataset=str(SAMPLES / "imdb_sample"),
                      teacher=str(tmp_path / "teacher"), layers=1, output_dir=str(tmp_path / "student"))


def test_a_student_can_start_from_the_teachers_own_layers(small_model, sst2_sample, tmp_path):
    teacher_dir = tmp_path / "teacher"
    textfit.train(model=str(small_model), dataset=str(sst2_sample), max_steps=3, learning_rate=1e-3, max_length=32,
                  baseline="none", output_dir=str(teacher_dir))
    teacher = load_file(teacher_dir / "model.safetensors")
    students = {}
    for init in ("base", "teacher"):
        run = Distill(TrainConfig(model=str(small_model), dataset=str(sst2_sample), teacher=str(teacher_dir),
                                  layers=1, student_init=init, max_length=32,
                                  output_dir=str(tmp_path / f"student-{init}")))
        run._setup_accelerator()
        run._setup_data()
        run._setup_model()
        students[init] = run.model.state_dict()
    layer, head = "bert.encoder.layer.0.attention.self.query.weight", "classifier.weight"
    for name in (layer, head, "bert.embeddings.word_embeddings.weight"):
        torch.testing.assert_close(students["teacher"][name], teacher[name])
        assert not torch.equal(students["base"][name], teacher[name])  # fine-tuning moved them: the test can fail
    assert "bert.encoder.layer.1.attention.self.query.weight" not in students["teacher"]  # still one layer
    with pytest.raises(ConfigError, match="needs a teacher to start from"):
        TrainConfig(student_init="teacher")


@pytest.mark.parametrize("task", ["multi-label", "regression"])
def test_students_of_multi_label_and_regression_teachers(task, small_model, sst2_sample, tmp_path):
    """Each task's own soft loss. SST-2 sentences read as label sets or as 0/1 targets give a teacher whose scores
    differ from text to text; a student taught by those scores alone (soft_weight 1) must follow them text by
    text, which a model that learned nothing (or only the label shares) cannot."""
    common = {"dataset": str(sst2_sample), "task": task, "max_train_samples": 1000, "max_length": 48,
              "baseline": "none", "epochs": 2}
    textfit.train(model=str(small_model), learning_rate=5e-4, output_dir=str(tmp_path / "teacher"), **common)
    result = textfit.train(model=str(small_model), teacher=str(tmp_path / "teacher"), layers=1, learning_rate=5e-4,
                           soft_weight=1.0, output_dir=str(tmp_path / "student"), **common)
    report = json.loads((tmp_path / "student" / "metrics.json").read_text())["distillation"]
    assert report["student_layers"] == 1 and report["teacher_layers"] == 2
    assert report["agreement_kind"] == ("mean absolute difference" if task == "regression" else "same answers")
    # the paired gap is scored with each model's own thresholds, as each model's value is
    assert report["difference"] == pytest.approx(report["student_value"] - report["teacher_value"], abs=1e-6)
    assert report["difference_ci"][0] <= report["difference"] <= report["difference_ci"][1]
    assert f"1-layer student of `{tmp_path / 'teacher'}`" in result.card
    texts = [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open(encoding="utf-8")]
    teacher = textfit.load(tmp_path / "teacher", backend="torch").predict_proba(texts)[:, 0]
    student = result.load(backend="torch").predict_proba(texts)[:, 0]
    assert teacher.std() > 0.1, "the teacher learned nothing to pass on"
    assert np.corrcoef(teacher, student)[0, 1] > 0.5  # measured 0.68 (multi-label), 0.74 (regression); nothing: ~0
