"""Fused or traced ONNX graphs: what onnxruntime's transformer fusions (attention, GELU, residual LayerNorms in one
kernel each) buy in fp32 and int8, against the graphs as traced, in one run.

    python benchmarks/onnx_fusion.py                    # results/onnx_fusion.md and .json
    python benchmarks/onnx_fusion.py --model-dir DIR    # another textfit folder (default: predict_speed's model)

The model folder (predict_speed.py's: the demo recipe's fine-tuned all-MiniLM-L6-v2, trained first if missing) is
copied twice, exported with `textfit export --quantize int8` (as traced) and with `--fuse` in the other. Each graph
labels the same texts (seeded IMDB test reviews, long, and SST-2 validation sentences, short) through `textfit.load(...,
backend=...)`: batches of 32 sorted by length, tokenizing included, one warm-up batch first. The four variants run
interleaved over the repeats; medians are shown, and how many labels the fused graph changed against the traced.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))
from predict_speed import ensure_model, sample  # noqa: E402  (the same model and texts as the speed table)
from train_speed import machine  # noqa: E402

GRAPHS = {"fused": ["--fuse"], "traced": []}
BACKENDS = {"onnxruntime-fp32": "onnx", "onnxruntime-int8": "int8"}
KEPT = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "recipe.yaml")


def export_copies(model_dir: Path, work: Path) -> dict[str, Path]:
    """The model folder twice, each exported its own way (only what export reads is copied)."""
    folders = {}
    for graph, flags in GRAPHS.items():
        folder = work / graph
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in KEPT:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, folder / name)
        subprocess.run([sys.executable, "-m", "textfit", "export", str(folder), "--quantize", "int8", *flags],
                       check=True, cwd=REPO, env=os.environ | {"HF_HUB_OFFLINE": "1"})
        folders[graph] = folder
    return folders


def timed(folder: Path, backend: str, texts: list[str]) -> tuple[float, list[str]]:
    import textfit

    clf = textfit.load(folder, backend=backend, batch_size=32)
    clf.predict(texts[:32])  # warm-up: the session's first run allocates
    start = time.perf_counter()
    labels = [p["label"] for p in clf.predict(texts)]
    return time.perf_counter() - start, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=str(REPO / "outputs" / "bench-predict"))
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_dir = Path(args.model_dir)
    ensure_model(model_dir)
    folders = export_copies(model_dir, REPO / "outputs" / "bench-onnx-fusion")
    rows = []
    for dataset, split in (("imdb", "test"), ("sst2", "validation")):
        texts, _ = sample(dataset, split, args.texts)
        seconds: dict[tuple[str, str], list[float]] = {}
        labels: dict[tuple[str, str], list[str]] = {}
        for repeat in range(args.repeats):
            order = [(g, b) for g in GRAPHS for b in BACKENDS]
            for graph, backend in order if repeat % 2 == 0 else order[::-1]:
                spent, labels[graph, backend] = timed(folders[graph], BACKENDS[backend], texts)
                seconds.setdefault((graph, backend), []).append(spent)
        for backend in BACKENDS:
            traced, fused = (statistics.median(seconds[g, backend]) for g in ("traced", "fused"))
            changed = sum(a != b for a, b in zip(labels["traced", backend], labels["fused", backend], strict=True))
            rows.append({"dataset": dataset, "texts": len(texts), "backend": backend,
                         "traced_texts_per_s": len(texts) / traced, "fused_texts_per_s": len(texts) / fused,
                         "speedup": traced / fused, "labels_changed": changed,
                         "seconds": {g: seconds[g, backend] for g in GRAPHS}})
            print(json.dumps(rows[-1]), flush=True)
    write(args, rows)


def write(args: argparse.Namespace, rows: list[dict]) -> None:
    lines = ["# ONNX graphs: fused by onnxruntime's transformer optimizer, or as traced", "",
             f"Measured on: {machine()}.", "",
             f"Command: `python benchmarks/onnx_fusion.py --texts {args.texts} --repeats {args.repeats}` (the set-up: "
             "its docstring). Texts/s over the same texts, tokenizing included; medians of the repeats, interleaved.",
             "", "| data | backend | traced texts/s | fused texts/s | fused vs traced | labels changed |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} ({r['texts']}) | {r['backend']} | {r['traced_texts_per_s']:,.1f} | "
                     f"{r['fused_texts_per_s']:,.1f} | {r['speedup']:.2f}x | {r['labels_changed']} |")
    lines += ["", "onnxruntime fuses the traced graph itself when it loads it (ORT_ENABLE_ALL), so fusing beforehand "
              "is kept as an option (`textfit export --fuse`), not the default, until a CPU where it pays shows up."]
    atomic_write_text(RESULTS / "onnx_fusion.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "onnx_fusion.json", json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
