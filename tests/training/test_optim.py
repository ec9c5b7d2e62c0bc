"""The optimizer's parameter groups: weight decay and the fresh head's own learning rate."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from textfit.config import TrainConfig
from textfit.errors import ConfigError
from textfit.training.optim import build_optimizer, build_schedule


@pytest.fixture
def classifier(small_model):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(small_model, num_labels=2)


def one_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each parameter's largest change after one optimizer step on a real forward/backward pass."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(1000, 2000, (4, 16))
    model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    optimizer.step()
    return {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}


def test_the_head_moves_by_its_rate_and_the_encoder_by_the_base_rate(classifier):
    cfg = TrainConfig(learning_rate=1e-4, head_learning_rate=2e-3, weight_decay=0.01)
    moved = one_step(classifier, build_optimizer(classifier, cfg))
    # Adam's first step moves every weight with a gradient by about its learning rate
    assert moved["classifier.weight"] == pytest.approx(20 * 1e-4, rel=0.05)
    assert moved["bert.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-4, rel=0.05)
    assert moved["bert.pooler.dense.weight"] == pytest.approx(1e-4, rel=0.05)


def test_every_trained_parameter_is_in_one_group_with_its_decay(classifier):
    optimizer = build_optimizer(classifier, TrainConfig(weight_decay=0.01))
    seen = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(seen) == sorted(id(p) for p in classifier.parameters())
    by_id = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    assert by_id[id(classifier.classifier.bias)]["weight_decay"] == 0.0
    assert by_id[id(classifier.classifier.weight)]["weight_decay"] == 0.01
    assert by_id[id(classifier.bert.embeddings.LayerNorm.weight)]["weight_decay"] == 0.0


def test_the_schedule_keeps_the_heads_ratio_through_warm_up_and_decay(classifier):
    cfg = TrainConfig(learning_rate=1e-4, head_learning_rate=2e-3, warmup_steps=2)
    optimizer = build_optimizer(classifier, cfg)
    schedule, _ = build_schedule(optimizer, cfg, total_steps=10)
    for _ in range(5):
        optimizer.step()
        schedule.step()
        rates = {group["lr"] for group in optimizer.param_groups}
        assert max(rates) == pytest.approx(20 * min(rates))


def test_head_rate_zero_keeps_the_two_groups_a_resumed_checkpoint_expects(classifier):
    optimizer = build_optimizer(classifier, TrainConfig(weight_decay=0.01, head_learning_rate=0))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_the_head_never_learns_slower_than_the_encoder(classifier):
    """A learning rate above head_learning_rate (small models at 3e-4 and up) trains everything at that rate."""
    optimizer = build_optimizer(classifier, TrainConfig(learning_rate=1e-2, head_learning_rate=5e-3))
    assert {g["lr"] for g in optimizer.param_groups} == {1e-2}
    assert len(optimizer.param_groups) == 2


def test_a_head_that_is_not_fresh_learns_at_the_base_rate(classifier):
    optimizer = build_optimizer(classifier, TrainConfig(learning_rate=1e-4), fresh_head=False)
    assert {g["lr"] for g in optimizer.param_groups} == {1e-4}


def test_a_negative_head_rate_is_refused():
    with pytest.raises(ConfigError, match=r"head_learning_rate=-0\.1"):
        TrainConfig(head_learning_rate=-0.1)
