"""The model being trained: loaded with the task's head, switched between attention kernels, saved in the units
of its targets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from textfit.errors import ConfigError
from textfit.fast_dropout import ATTENTION_NAME, register_attention, use_fast_dropout
from textfit.models import ModelSource, offline_hint
from textfit.task import Task, Units


def load_model(source: ModelSource, name: str, task: Task, label_names: Sequence[str]):
    """(tokenizer, model with a fresh head for the task's labels); offline, an error says how to pass a folder."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path, num_labels=task.num_outputs(label_names), id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)}, problem_type=task.problem_type,
            ignore_mismatched_sizes=True)
    except OSError as exc:
        raise offline_hint(name, exc) from exc
    return tokenizer, model


def keep_first_layers(model: PreTrainedModel, layers: int) -> None:
    """Cut the encoder to its first `layers` transformer layers (in place), and say so in its config, so the saved
    folder loads as the smaller model it is. The lower layers carry the general language knowledge a student
    starts from; the embeddings and the head are kept whole."""
    config = model.config
    key = next((k for k in ("num_hidden_layers", "n_layers", "num_layers") if hasattr(config, k)), None)
    total = getattr(config, key) if key else None
    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == total]
    if key is None or len(stacks) != 1:
        raise ConfigError(f"layers={layers}: cannot find the layer stack of {type(model).__name__}")
    if not 0 < layers <= total:
        raise ConfigError(f"layers={layers}: the model has {total} layers; choose 1 to {total}")
    del stacks[0][layers:]
    setattr(config, key, layers)


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The head's last layer (BERT's `classifier`, RoBERTa's `classifier.out_proj`, ...)."""
    outputs = model.config.num_labels
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == outputs]
    if not last or last[-1].bias is None:
        raise ConfigError(f"{type(model).__name__}: no output layer with a bias found")
    return last[-1]


def enable_fast_dropout(model: torch.nn.Module) -> None:
    register_attention()
    use_fast_dropout(model)


def set_mode(model: PreTrainedModel, wrapped: torch.nn.Module, training: bool, fast_dropout: bool) -> None:
    """Train or eval mode, with the faster attention kernel for each on CPU.

    With attention dropout, PyTorch's CPU SDPA falls back to an unfused path that is slower than eager
    attention (MiniLM-L6, 16x256, bf16: 1.27 s vs 1.06 s a step), and eager with fast dropout is faster
    still; without dropout (evaluation) SDPA is fastest. The arithmetic is the same, so only speed changes.
    """
    dropout = getattr(model.config, "attention_probs_dropout_prob", 0) or 0
    wanted = "sdpa"
    if training and dropout > 0 and not torch.cuda.is_available():
        wanted = ATTENTION_NAME if fast_dropout else "eager"
    if model.config._attn_implementation != wanted:
        model.set_attn_implementation(wanted)
    wrapped.train(training)


@contextlib.contextmanager
def head_in_target_units(model: torch.nn.Module, units: Units) -> Iterator[None]:
    """While saving, the head outputs targets in their own units (regression learns standardised targets), so
    `pipeline` and `textfit.load` need no shift."""
    if units.identity:
        yield
        return
    layer = output_layer(model)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    with torch.no_grad():
        layer.weight.mul_(units.scale)
        layer.bias.mul_(units.scale).add_(units.shift)
    try:
        yield
    finally:
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
