"""Fast dropout keeps PyTorch dropout's semantics: drop probability p, kept values scaled by 1/(1-p)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textfit.fast_dropout import FastDropout, attention_with_fast_dropout, fast_dropout, keep_mask, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = fast_dropout(x, p, training=True)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(p, abs=0.003)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)  # expectation preserved


def test_each_of_the_four_masks_from_one_draw_drops_at_rate_p_on_its_own():
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([4 * 250_000 + 3]), 0.1)  # a size that four does not divide
    assert keep.shape == (1_000_003,) and keep.dtype == torch.bool
    lanes = keep[:1_000_000].view(-1, 4)  # lane k: the k-th 16 bits of each 64-bit draw
    for lane in range(4):
        assert 1 - lanes[:, lane].float().mean().item() == pytest.approx(0.1, abs=0.003)
    both = (~lanes[:, 0] & ~lanes[:, 3]).float().mean().item()
    assert both == pytest.approx(0.01, abs=0.001)  # independent: dropped together at p^2
    assert keep_mask(torch.Size([2, 3, 5]), 0.5).shape == (2, 3, 5)


def test_gradient_follows_the_mask():
    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    y = fast_dropout(x, 0.2, training=True)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1.25))
    assert torch.all(x.grad[~kept] == 0)


def test_identity_in_eval_and_same_seed_same_mask():
    x = torch.randn(64)
    assert fast_dropout(x, 0.5, training=False) is x
    torch.manual_seed(3)
    a = keep_mask(torch.Size([1000]), 0.1)
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask(torch.Size([1000]), 0.1))


def test_attention_matches_eager_without_dropout():
    from transformers.models.bert.modeling_bert import eager_attention_forward

    torch.manual_seed(0)
    module = nn.Module()
    module.training = False
    q, k, v = (torch.randn(2, 4, 10, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 10, 10)
    mask[1, ..., 7:] = torch.finfo(torch.float32).min
    ours, _ = attention_with_fast_dropout(module, q, k, v, mask, dropout=0.1)
    ref, _ = eager_attention_forward(module, q, k, v, mask, dropout=0.1)
    torch.testing.assert_close(ours, ref)


def test_under_bf16_autocast_attention_is_as_close_to_float32_as_eager_attention():
    # the scores stay in bf16 through the mask and the softmax, where eager attention rounds them to bf16 only
    # before the next matmul: the output and every gradient must stay as close to float32 attention as eager's
    from transformers.models.bert.modeling_bert import eager_attention_forward

    module = nn.Module()
    module.training = False
    torch.manual_seed(0)
    inputs = [torch.randn(2, 4, 64, 32) for _ in range(3)]
    mask = torch.zeros(2, 1, 64, 64)
    mask[1, ..., 40:] = torch.finfo(torch.float32).min  # padding in the second example

    def run(attention, bf16: bool) -> list[torch.Tensor]:
        q, k, v = (t.clone().requires_grad_() for t in inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out, _ = attention(module, q, k, v, mask, dropout=0.0)
        out.float().square().sum().backward()
        return [out.float(), q.grad, k.grad, v.grad]

    truth = run(eager_attention_forward, bf16=False)
    error = {name: [((a - t).abs().mean() / t.abs().mean()).item() for a, t in zip(run(fn, True), truth, strict=True)]
             for name, fn in (("ours", attention_with_fast_dropout), ("eager", eager_attention_forward))}
    assert all(0 < e < 0.02 for e in error["ours"]), error  # bf16's rounding, and no more
    assert all(o <= 1.1 * e for o, e in zip(error["ours"], error["eager"], strict=True)), error


def test_attention_dropout_in_training_keeps_expectation():
    torch.manual_seed(0)
    module = nn.Module()
    module.training = True
    q, k, v = torch.zeros(1, 1, 64, 8), torch.zeros(1, 1, 64, 8), torch.ones(1, 1, 64, 8)
    runs = torch.stack([attention_with_fast_dropout(module, q, k, v, None, dropout=0.1)[0] for _ in range(200)])
    assert runs.mean().item() == pytest.approx(1.0, abs=0.01)  # uniform attention over ones, dropout-unbiased
    assert runs.std().item() > 0.01  # and it does drop


def test_swaps_dropout_modules_only():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.3)))
    assert use_fast_dropout(model) == 2
    assert isinstance(model[1], FastDropout) and model[1].p == 0.1 and model[2][0].p == 0.3
    assert model.state_dict().keys() == {"0.weight", "0.bias"}
