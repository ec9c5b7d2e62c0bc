"""Where an int8 ONNX graph's time goes, by operator type, and whether onnxruntime's fused attention helps it.

    python benchmarks/profile_onnx.py outputs/bench-distill/imdb/l2-s42-distilled    # results/profile_onnx.md

The folder's model.int8.onnx (as `textfit export --quantize int8` writes it: traced, then quantized) against the
same model.onnx fused by onnxruntime's transformer optimizer (attention into one Attention op per layer, which
quantizes to QAttention) and then quantized the same way. Both run on the same IMDB test reviews (seeded sample),
tokenized once at the folder's max_length, in length-sorted batches of 32, on onnxruntime with one thread per
core, rounds interleaved; the model call alone is timed (tokenizing is the same for both). A separate run of each
with onnxruntime's profiler gives the operator shares (the profiler slows a run, so its times are not the
figures).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
BATCH = 32


def batches(folder: Path, texts: list[str], input_names: set[str]) -> list[dict[str, np.ndarray]]:
    from textfit.predict import Classifier

    clf = Classifier(folder, backend="torch", precision="fp32")  # the folder's own tokenizer and max_length
    lengths = [len(ids) for ids in clf.tokenizer(texts, truncation=True, max_length=clf.max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    feeds = []
    for start in range(0, len(order), BATCH):
        chunk = [texts[i] for i in order[start:start + BATCH]]
        encoded = clf.tokenizer(chunk, truncation=True, max_length=clf.max_length, padding=True, return_tensors="np")
        feed = {k: v.astype(np.int64) for k, v in encoded.items()}
        feed.setdefault("token_type_ids", np.zeros_like(feed["input_ids"]))
        feeds.append({k: v for k, v in feed.items() if k in input_names})
    return feeds


def session(path: Path, profile_prefix: str | None = None):
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as textfit's backend: the physical cores
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fused_int8(folder: Path, work: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    fused = optimize_model(str(folder / "model.onnx"), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=0)
    fused.save_model_to_file(str(work / "fused.onnx"))
    target = work / "fused.int8.onnx"
    quantize_dynamic(str(work / "fused.onnx"), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # as textfit/export.py
    return target


def op_shares(path: Path, feeds: list[dict], work: Path) -> list[tuple[str, float]]:
    profiled = session(path, str(work / path.stem))
    for feed in feeds:
        profiled.run(["logits"], feed)
    events = json.loads(Path(profiled.end_profiling()).read_text())
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    return [(op, spent / total) for op, spent in by_op.most_common(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a textfit output folder with model.onnx and model.int8.onnx")
    parser.add_argument("--texts", type=int, default=256, help="IMDB test reviews (seeded sample)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from predict_speed import sample
    from train_speed import machine

    texts, _ = sample("imdb", "test", args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        graphs = {"traced": args.folder / "model.int8.onnx", "fused": fused_int8(args.folder, work)}
        sessions = {name: session(path) for name, path in graphs.items()}
        feeds = {name: batches(args.folder, texts, {i.name for i in s.get_inputs()}) for name, s in sessions.items()}
        seconds: dict[str, list[float]] = {name: [] for name in graphs}
        for name, s in sessions.items():  # a warm-up round each
            s.run(["logits"], feeds[name][0])
        for round_ in range(args.rounds):
            for name in graphs if round_ % 2 == 0 else list(graphs)[::-1]:
                start = time.perf_counter()
                for feed in feeds[name]:
                    sessions[name].run(["logits"], feed)
                seconds[name].append(time.perf_counter() - start)
        shares = {name: op_shares(path, feeds[name], work) for name, path in graphs.items()}
    rate = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    lines = ["# An int8 ONNX graph: where its time goes, and onnxruntime's fused attention", "",
             f"Measured on: {machine()}.", "",
             f"Command: `python benchmarks/profile_onnx.py {args.folder} --texts {args.texts} --rounds {args.rounds}` "
             "(the set-up: its docstring). Model calls only, texts/s: the median of the rounds (range).", "",
             "| graph | texts/s | vs traced |", "|---|---|---|"]
    for name in graphs:
        spread = [len(texts) / s for s in seconds[name]]
        lines.append(f"| {name} | {rate[name]:.1f} ({min(spread):.1f}-{max(spread):.1f}) | "
                     f"{rate[name] / rate['traced']:.2f}x |")
    for name in graphs:
        lines += ["", f"Operator shares, {name} (onnxruntime profiler):", "", "| operator | share |", "|---|---|"]
        lines += [f"| {op} | {share:.1%} |" for op, share in shares[name]]
    text = "\n".join(lines) + "\n"
    atomic_write_text(RESULTS / "profile_onnx.md", text)
    print(text)


if __name__ == "__main__":
    main()
