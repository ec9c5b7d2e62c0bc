"""Tasks as objects: each owns its targets, units, head, loss, scores and answers; nothing else names a task."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from tests.conftest import REPO
from textfit import task
from textfit.errors import ConfigError


def test_no_module_outside_task_compares_task_names():
    literal = re.compile(r"""["'](single|multi-label|regression)["']""")
    found = []
    for path in (REPO / "textfit").rglob("*"):
        if path.suffix in (".py", ".j2") and path.name != "task.py":
            found += [f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if literal.search(line)]
    assert not found


def test_targets_and_answers_per_task():
    names = ["a", "b", "c"]
    assert task.MULTI_LABEL.targets([[0, 2]], 3) == [[1.0, 0.0, 1.0]]
    row = np.array([0.7, 0.2, 0.55])
    assert task.SINGLE.answer(row, names, 0.5) == "a"
    assert task.MULTI_LABEL.answer(row, names, 0.5) == ["a", "c"]  # most probable first
    assert task.REGRESSION.answer(np.array([7.5]), ["rating"], 0.5) == 7.5
    assert task.SINGLE.counts([0, 0, 2], names) == {"a": 2, "b": 0, "c": 1}
    assert task.MULTI_LABEL.counts([[0, 2], [2]], names) == {"a": 1, "b": 0, "c": 2}
    assert task.REGRESSION.counts([1.0, 2.0], ["rating"]) == {}


def test_auto_keeps_by_each_tasks_main_metric():
    assert [t.keep_metric("auto") for t in (task.SINGLE, task.MULTI_LABEL, task.REGRESSION)] == \
        ["accuracy", "f1_micro", "mae"]
    assert task.SINGLE.keep_metric("loss") == "loss" and task.MULTI_LABEL.keep_metric("f1_macro") == "f1_macro"


def test_regression_learns_in_standard_units_and_reports_in_its_own():
    units = task.REGRESSION.target_units([2.0, 4.0, 6.0])
    assert units.to_model([2.0, 6.0]) == pytest.approx([-1.2247, 1.2247], abs=1e-4)
    assert units.from_model(np.array([0.0])) == pytest.approx([4.0])
    assert units.loss(1.0) == pytest.approx(np.var([2.0, 4.0, 6.0]))
    assert task.SINGLE.target_units([0, 1]).identity


def test_multi_label_head_starts_at_the_label_log_odds():
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=64, num_labels=2))
    task.MULTI_LABEL.init_head(model, [[0], [0, 1], [0], []], 2)  # label 0 in 3 of 4 texts, label 1 in 1 of 4
    assert model.classifier.bias.tolist() == pytest.approx([np.log(3), -np.log(3)], abs=1e-5)
    logits, labels = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(task.MULTI_LABEL.loss(logits, labels)) == pytest.approx(np.log(2))


def test_settings_that_belong_to_another_task_are_refused():
    with pytest.raises(ConfigError, match="class_weights='auto' is for single-label tasks; this one is regression"):
        task.REGRESSION.check_settings("auto", None)
    with pytest.raises(ConfigError, match=r"threshold=0\.3 is for multi-label tasks; this one is single"):
        task.SINGLE.check_settings("none", 0.3)
    task.MULTI_LABEL.check_settings("none", 0.3)
    assert task.get("multi-label") is task.MULTI_LABEL
    with pytest.raises(ConfigError, match="choose one of single, multi-label, regression"):
        task.get("multilabel")
