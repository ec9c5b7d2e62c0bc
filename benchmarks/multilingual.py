"""What freezing the embeddings and trimming the vocabulary cost and gain with multilingual-e5-small.

    make bench-multilingual                            # = python benchmarks/multilingual.py
    python benchmarks/multilingual.py --train-samples 400 --eval-samples 200   # a quick look

96M of multilingual-e5-small's 118M parameters are its 250k-row word embedding matrix. Four runs, each a fresh
process with the same data, seed and steps (one epoch of a seeded subset of the multilingual tweets, 8 languages,
3 classes; evaluation on a seeded subset of the official validation split):
(1) full: every parameter trained (the baseline);
(2) freeze: word embeddings fixed (no gradient, no Adam state for them);
(3) trim: vocabulary cut to the tokens the training texts use;
(4) trim + freeze.
The table: accuracy, macro F1, the weakest language's accuracy, training samples/s and its ratio to (1), peak
memory, and the size of the saved model. Writes benchmarks/results/multilingual.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "tweet_sentiment_multilingual"
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = {"full": {}, "freeze": {"freeze_embeddings": True}, "trim": {"trim_vocab": True},
            "trim+freeze": {"trim_vocab": True, "freeze_embeddings": True}}


def run_one(variant: str, args: argparse.Namespace, out: Path) -> dict:
    from textfit.config import TrainConfig
    from textfit.training import train

    config = TrainConfig(model="multilingual-e5-small", dataset=str(DATA), output_dir=str(out), overwrite=True,
                         max_train_samples=args.train_samples, max_eval_samples=args.eval_samples, max_length=64,
                         epochs=1, learning_rate=5e-5, train_batch_size=16, eval_batch_size=64,
                         eval_strategy="epoch", **VARIANTS[variant])
    start = time.perf_counter()
    metrics = train(config).metrics
    wall = time.perf_counter() - start
    history = json.loads((out / "history.json").read_text())
    return {
        "variant": variant, "accuracy": metrics["accuracy"], "f1": metrics["f1"],
        "worst_language": min((m["accuracy"], lang) for lang, m in metrics["per_language"].items()),
        "samples_per_s": history["samples_per_second"], "train_seconds": history["train_seconds"],
        "wall_seconds": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_mb": (out / "model.safetensors").stat().st_size / 2**20,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--eval-samples", type=int, default=800)
    parser.add_argument("--workdir", default=str(REPO / "outputs" / "bench-multilingual"))
    parser.add_argument("--run-one", choices=list(VARIANTS), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    workdir = Path(args.workdir)
    if args.run_one:
        print("RESULT " + json.dumps(run_one(args.run_one, args, workdir / args.run_one)), flush=True)
        return 0

    from textfit.models import resolve_model

    resolve_model("multilingual-e5-small")  # the one-off import happens here, not inside a timed run
    rows = []
    for variant in VARIANTS:
        print(f"--- {variant}", flush=True)
        proc = subprocess.run([sys.executable, __file__, "--run-one", variant, "--workdir", str(workdir),
                               "--train-samples", str(args.train_samples), "--eval-samples", str(args.eval_samples)],
                              capture_output=True, text=True)
        result = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
        if proc.returncode or result is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            return 1
        rows.append(json.loads(result[len("RESULT "):]))
    table = report(args, rows)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "multilingual.md", table)
    atomic_write_text(RESULTS / "multilingual.json", json.dumps(rows, indent=2) + "\n")
    return 0


def report(args: argparse.Namespace, rows: list[dict]) -> str:
    base = rows[0]["samples_per_s"]
    lines = [
        f"# multilingual-e5-small: freezing and trimming ({args.train_samples} training tweets, one epoch, "
        f"{args.eval_samples} validation tweets, 8 languages, max length 64, batch 16, lr 5e-5, seed 42)",
        "", f"Command: `python benchmarks/multilingual.py --train-samples {args.train_samples} "
        f"--eval-samples {args.eval_samples}`", "",
        "| variant | accuracy | macro F1 | weakest language | train samples/s | vs full | peak RSS MiB | model MiB |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        worst_acc, worst_lang = r["worst_language"]
        lines.append(f"| {r['variant']} | {r['accuracy']:.4f} | {r['f1']:.4f} | {worst_lang} {worst_acc:.3f} | "
                     f"{r['samples_per_s']:.1f} | {r['samples_per_s'] / base:.2f}x | {r['peak_rss_mb']:,.0f} | "
                     f"{r['model_mb']:,.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
