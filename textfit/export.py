"""`textfit export OUTPUT_DIR --format onnx [--quantize int8]`: ONNX graphs for onnxruntime, checked for drift.

The fp32 graph is traced from the trained model (eager attention: a plain graph of standard ONNX ops, which
onnxruntime fuses itself when it loads it) and validated by `onnx.checker`. With fuse=True (`--fuse`), for
BERT-type encoders, onnxruntime's transformer optimizer fuses each layer's attention, GELU and residual LayerNorms
into onnxruntime's own kernels beforehand; it was slower here (0.89-1.01x, benchmarks/results/onnx_fusion.md), so
it is not the default. The int8 graph is onnxruntime's dynamic quantization of the fp32 graph (int8 weights with
per-channel scales, activations quantized per batch). Both are compared with the PyTorch model on the evaluation
data the model was trained against; an int8 graph that loses more accuracy than allowed is not written unless
forced.
Results go to `export.json` beside the graphs, so the choice can be checked later.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from textfit.backends import ONNX_FILES
from textfit.data import load_eval_examples
from textfit.errors import ConfigError, ModelError
from textfit.io import atomic_write_json
from textfit.precision import resolve_precision
from textfit.predict import Classifier
from textfit.task import SINGLE, Task

OPSET = 17  # LayerNorm as one op; supported by every onnxruntime of the last three years


@dataclass
class Agreement:
    backend: str
    accuracy: float
    same_labels: float  # share of texts given the same label as the PyTorch fp32 model
    max_prob_diff: float  # largest absolute difference of any class probability


class AccuracyDropError(ModelError):
    """The quantized graph lost more accuracy than allowed; nothing was written for it."""

    def __init__(self, message: str, rows: list[Agreement]):
        super().__init__(message)
        self.rows = rows


def export_onnx(model_dir: str | Path, *, quantize: str | None = None, dataset: str | None = None,
                split: str | None = None, max_samples: int | None = 1000, max_accuracy_drop: float = 0.01,
                force: bool = False, fuse: bool = False) -> list[Agreement]:
    """Write model.onnx (and model.int8.onnx) into `model_dir`; return each backend's agreement with PyTorch.
    fuse=True: onnxruntime's own fused kernels (onnxruntime only), see the module's docstring."""
    folder = Path(model_dir)
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize}: only int8 is supported")
    reference = Classifier(folder, backend="torch", precision="fp32")
    texts, pairs, labels = _evaluation_data(reference, dataset, split, max_samples)

    fp32_path = folder / ONNX_FILES["onnx"]
    _write_atomically(fp32_path, lambda tmp: _trace(reference, tmp, fuse))
    expected = reference.predict_proba(texts, pairs)
    task_of_run = (reference.task, reference.decision_threshold)
    rows = [_agreement("torch-fp32", expected, expected, labels, *task_of_run)]
    if resolve_precision("auto")[0] == "bf16":  # what `--backend auto` runs on this hardware
        bf16 = Classifier(folder, backend="torch", precision="bf16").predict_proba(texts, pairs)
        rows.append(_agreement("torch-bf16", bf16, expected, labels, *task_of_run))
    rows.append(_agreement("onnxruntime-fp32", _probs(folder, "onnx", texts, pairs), expected, labels, *task_of_run))

    refused = None
    if quantize == "int8":
        int8_row, refused = _write_int8(folder, texts, pairs, labels, expected, task_of_run, rows[0],
                                        max_accuracy_drop, force)
        rows.append(int8_row)
    atomic_write_json(folder / "export.json", {"evaluated_on": len(texts), "opset": OPSET,
                                               "fused": _is_fused(fp32_path), "int8_refused": refused,
                                               "backends": [asdict(r) for r in rows]})
    if refused:
        raise AccuracyDropError(refused, rows)
    return rows


def _write_int8(folder: Path, texts: list[str], pairs: list[str] | None, labels: np.ndarray, expected: np.ndarray,
                task_of_run: tuple[Task, float | np.ndarray], fp32: Agreement, max_accuracy_drop: float,
                force: bool) -> tuple[Agreement, str | None]:
    """Quantize model.onnx to model.int8.onnx and measure it; return its row, and why it was refused (then the
    file is gone) or None."""
    int8_path = folder / ONNX_FILES["int8"]
    int8_path.unlink(missing_ok=True)  # an older int8 graph would no longer match this model
    # measured under its real name, the one the backend opens
    _write_atomically(int8_path, lambda tmp: _quantize(folder / ONNX_FILES["onnx"], tmp))
    row = _agreement("onnxruntime-int8", _probs(folder, "int8", texts, pairs), expected, labels, *task_of_run)
    drop = fp32.accuracy - row.accuracy
    if drop <= max_accuracy_drop + 1e-9 or force:  # exactly at the limit is allowed
        return row, None
    int8_path.unlink()
    return row, (f"int8 accuracy {row.accuracy:.4f} is {drop * 100:.1f} points below fp32 ({fp32.accuracy:.4f}), "
                 f"more than --max-accuracy-drop {max_accuracy_drop * 100:.1f}; model.int8.onnx not written "
                 "(--force writes it anyway)")


def _evaluation_data(clf: Classifier, dataset: str | None, split: str | None,
                     max_samples: int | None) -> tuple[list[str], list[str] | None, np.ndarray]:
    config, columns = clf.folder.config, clf.folder.columns
    dataset = dataset or (config.dataset if config else None)
    if not dataset:
        raise ConfigError(f"{clf.path}: no recipe.yaml names the training data; pass --dataset to compare on")
    examples, _ = load_eval_examples(dataset, split or (config.eval_split if config else None), columns, clf.labels,
                                     max_samples, clf.folder.seed, clf.task)
    pairs = [ex.text_pair for ex in examples] if columns.text_pair else None
    return [ex.text for ex in examples], pairs, np.array(clf.task.targets([ex.label for ex in examples],
                                                                               len(clf.labels)))


def _trace(clf: Classifier, path: Path, fuse: bool) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(clf.path, attn_implementation="eager").eval()
    sample = clf.tokenizer(["a short text", "a second, somewhat longer text to trace with"], padding=True,
                           return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if "token_type_ids" not in sample:
        names = names[:2]
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript tracer's notes on Python control flow it froze
        torch.onnx.export(model, tuple(sample[n] for n in names), str(path), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    if fuse:
        _fuse(path, model.config)


def _fuse(path: Path, config) -> None:
    """Fuse attention, GELU and LayerNorms into onnxruntime's kernels, in place; a graph whose attention the
    optimizer does not recognise stays as traced."""
    if config.model_type != "bert":  # the fusions are written against BERT's graph (MiniLM and e5 are BERTs)
        return
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=0)  # onnxruntime's own passes run at load
    if fused.get_fused_operator_statistics().get("Attention", 0) == config.num_hidden_layers:
        fused.save_model_to_file(str(path))


def _is_fused(path: Path) -> bool:
    import onnx

    return any(node.domain == "com.microsoft" for node in onnx.load(str(path), load_external_data=False).graph.node)


def _quantize(source: Path, target: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for static, calibrated quantization

    # per-channel weight scales: on the fine-tuned default model (IMDB, 1,000 reviews) per-tensor scales changed
    # 6.9% of the labels and cost 1.3 accuracy points; per-channel 1.5% and 0.1 points, at the same speed
    # the fused graph's ops are onnxruntime's own, whose output types shape inference cannot tell: they are floats
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    onnx.checker.check_model(str(target))


def _write_atomically(path: Path, write) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _probs(folder: Path, backend: str, texts: list[str], pairs: list[str] | None) -> np.ndarray:
    return Classifier(folder, backend=backend).predict_proba(texts, pairs)


def _agreement(name: str, probs: np.ndarray, expected: np.ndarray, labels: np.ndarray, task: Task = SINGLE,
               threshold: float | np.ndarray = 0.5) -> Agreement:
    """Accuracy (multi-label: every label right), labels as the fp32 model's, largest score difference.
    Regression has no labels: only the largest difference of the predicted values is measured."""
    diff = float(np.abs(probs - expected).max())
    predicted, reference = task.decisions(probs, threshold), task.decisions(expected, threshold)
    if predicted is None:
        return Agreement(name, float("nan"), float("nan"), diff)
    truth = labels.astype(bool) if task.label_sets else labels

    def share(same: np.ndarray) -> float:
        return float((same.all(1) if same.ndim > 1 else same).mean())

    return Agreement(name, share(predicted == truth), share(predicted == reference), diff)
