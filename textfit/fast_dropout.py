"""Dropout that is cheap on a CPU: the same keep probability and scaling, masks drawn faster.

Profiling a bf16 training step of MiniLM-L6 at 16x256 on 2 cores shows `aten::bernoulli_` (dropout masks) taking
30% of the time, most of it the attention-probabilities dropout over batch x heads x length x length
elements. PyTorch's CPU dropout draws one float per element with `bernoulli_`; comparing 16 random bits with a
threshold gives the same Bernoulli(1 - p) keep mask (to within 2**-16 of p), and four such elements come from
one 64-bit draw: a third of the time of one int16 draw per element, a seventh of `bernoulli_`'s, and about 11%
off a whole training step at 16x256 (benchmarks/results/profile_step.md). The mask is kept as bool (1 byte an
element) for backward instead of a float mask.

What the model learns is unchanged in distribution: every element is still dropped with probability p and the
kept ones scaled by 1/(1-p); only the random stream differs. On a GPU nothing here is used.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ATTENTION_NAME = "textfit_fast_dropout"


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        keep = keep_mask(x.shape, p)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.where(keep, x * ctx.scale, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad * ctx.scale, 0), None


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.is_cuda or p >= 1.0:
        return nn.functional.dropout(x, p, training)
    return _MaskedScale.apply(x, p)


class FastDropout(nn.Dropout):
    """A drop-in `nn.Dropout` (same `p`, same state dict: none) using `fast_dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """Bernoulli(1 - p) as bool, from 16 random bits an element: four elements from each 64-bit draw (a full-range
    int64 random_ viewed as int16), uniform on [-2**15, 2**15 - 1], kept from p's quantile up (p to within 2**-16).
    Drawing an int16 per element directly costs 3x as much: the generator's time goes by draws, not by bits."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    return (words.view(torch.int16)[:n] >= round(p * 65536) - 32768).view(shape)


def attention_with_fast_dropout(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """BERT-style eager attention (scores, additive mask, softmax, dropout, weighted sum), cheaper on a CPU.

    Under bf16 autocast, eager attention turns the batch x heads x length x length scores into float32 for the
    mask and the softmax (autocast runs softmax in float32), and back to bf16 for the next matmul: three passes
    over twice the bytes. Here the scores stay in the matmul's dtype: the mask is cast to it (a tensor without
    the heads), and the softmax runs with autocast off, so on bf16 input, which PyTorch's CPU kernel sums in
    float32 and rounds to bf16, the rounding eager attention does before its matmul. The scale is applied to
    the query (length x head size, not length x length). Dropout: the cheaper masks, applied to the bf16
    probabilities, with the 1/(1-p) scale moved to the much smaller output.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query * scaling, key.transpose(2, 3))
    if attention_mask is not None:
        weights = weights + attention_mask.to(weights.dtype).clamp(min=torch.finfo(weights.dtype).min)
    with torch.autocast(weights.device.type, enabled=False):
        weights = nn.functional.softmax(weights, dim=-1)
    if module.training and dropout > 0 and not weights.is_cuda:
        weights = torch.where(keep_mask(weights.shape, dropout), weights.to(value.dtype), 0)
        output = torch.matmul(weights, value) * (1.0 / (1.0 - dropout))
    else:
        weights = nn.functional.dropout(weights, dropout, module.training)
        output = torch.matmul(weights, value)
    return output.transpose(1, 2).contiguous(), weights


def register_attention() -> None:
    """Make ATTENTION_NAME a valid `attn_implementation`, with eager's additive float mask."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION_NAME, attention_with_fast_dropout)
    AttentionMaskInterface.register(ATTENTION_NAME, eager_mask)


def use_fast_dropout(model: nn.Module) -> int:
    """Swap every nn.Dropout in `model` for FastDropout; returns how many were swapped."""
    swapped = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
                swapped += 1
    return swapped
