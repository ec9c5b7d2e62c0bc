"""What turns a padded batch of token ids into logits: PyTorch (fp32 or bf16) or onnxruntime (fp32 or int8).

Each backend takes numpy arrays (input_ids, attention_mask[, token_type_ids]) and returns fp32 logits as numpy,
so `predict.Classifier` batches, sorts and truncates the same way whichever one runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from textfit.errors import ModelError
from textfit.precision import cpu_has_amx, resolve_precision

ONNX_FILES = {"onnx": "model.onnx", "int8": "model.int8.onnx"}  # written by `textfit export`
BACKENDS = ("auto", "torch", "onnx", "int8")


class Backend(Protocol):
    name: str
    input_names: tuple[str, ...]

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


class TorchBackend:
    """The model as trained; bf16 autocast where asked (and the CPU or GPU runs it natively)."""

    def __init__(self, path: Path, precision: str = "fp32"):
        from transformers import AutoModelForSequenceClassification

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval().to(self.device)
        self.precision = precision
        self.name = f"torch-{precision}"
        self.input_names = ("input_ids", "attention_mask", "token_type_ids")

    @torch.inference_mode()
    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(**tensors).logits
        return out.float().cpu().numpy()


class OnnxBackend:
    """An exported ONNX graph under onnxruntime, one intra-op thread per physical core."""

    def __init__(self, onnx_path: Path, name: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # PyTorch's count: the physical cores
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.name = name

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: batch[name] for name in self.input_names if name in batch}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(batch["input_ids"])
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)


def pick_backend(path: Path, backend: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """(backend, precision) to run. `auto` goes by what predict_speed.py measured (IMDB reviews, x fp32 PyTorch):
    on a CPU with AMX, PyTorch bf16 (2.6x) beats the int8 graph (1.9x); with AVX512-BF16 alone, int8 (3.5x)
    beats bf16 (2.4x), which beats the fp32 graph (1.9x). So: a GPU or AMX -> PyTorch in its fast precision;
    else the int8 graph when the folder has one (export writes it only when its accuracy held); else bf16 where
    native; else the fp32 graph; else PyTorch fp32. A precision of fp32 asked for explicitly skips bf16."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        has = {name: (path / ONNX_FILES[name]).is_file() for name in ("int8", "onnx")}
        fast = resolve_precision("auto")[0] if precision != "fp32" else "fp32"
        if fast != "fp32" and (torch.cuda.is_available() or cpu_has_amx()):
            return "torch", fast
        if has["int8"]:
            return "int8", "fp32"
        if fast != "fp32":
            return "torch", fast
        return ("onnx" if has["onnx"] else "torch"), "fp32"
    if backend != "torch" and not (path / ONNX_FILES[backend]).is_file():
        flag = " --quantize int8" if backend == "int8" else ""
        raise ModelError(f"{path}: no {ONNX_FILES[backend]}; run `textfit export {path} --format onnx{flag}` first")
    return backend, resolve_precision(precision)[0] if backend == "torch" else "fp32"


def open_backend(path: Path, backend: str, precision: str) -> Backend:
    if backend == "torch":
        return TorchBackend(path, precision)
    return OnnxBackend(path / ONNX_FILES[backend], f"onnxruntime-{'int8' if backend == 'int8' else 'fp32'}")
