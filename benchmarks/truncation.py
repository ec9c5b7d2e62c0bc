"""Which part of a long review to keep: head, tail or head+tail truncation on IMDB at a fixed max length.

    python benchmarks/truncation.py                      # 3,000 train reviews, 2 epochs, max_length 128
    python benchmarks/truncation.py --train-samples 500 --epochs 1 --eval-samples 300   # a quick look

At 128 tokens most IMDB reviews are cut (their median is about 230 tokens), so what is kept matters. Each
strategy trains the default model with the same data, seed and steps, is evaluated on the same seeded sample of
test reviews, and the windows row scores the head model reading every review whole (predict --windows).
Writes benchmarks/results/truncation.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO.parent / "shared" / "data" / "imdb"
RESULTS = REPO / "benchmarks" / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-samples", type=int, default=3000)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--workdir", default=str(REPO / "outputs" / "bench-truncation"))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    table = report(args, measure(args))
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "truncation.md", table)
    return 0


def measure(args: argparse.Namespace) -> list[tuple[str, float]]:
    """One model per strategy on the same reviews, each scored on the same seeded test reviews."""
    import os
    import random

    import numpy as np

    os.environ["HF_HUB_OFFLINE"] = "1"
    import textfit
    from textfit.config import TrainConfig
    from textfit.training import train

    with gzip.open(IMDB / "test.jsonl.gz", "rt", encoding="utf-8") as lines:
        test = [json.loads(line) for line in lines]
    test = random.Random(0).sample(test, args.eval_samples)
    texts, labels = [r["text"] for r in test], np.array([r["label"] for r in test])

    rows = []
    for strategy in ("head", "tail", "head+tail"):
        out = Path(args.workdir) / strategy.replace("+", "-")
        train(TrainConfig(dataset=str(IMDB), output_dir=str(out), overwrite=True, truncation=strategy,
                          max_train_samples=args.train_samples, max_eval_samples=300, eval_split="test",
                          max_length=args.max_length, epochs=args.epochs, learning_rate=5e-5,
                          metric_for_best="loss"))  # as measured, when the loss chose the kept evaluation
        clf = textfit.load(out)
        accuracy = float((clf.predict_proba(texts).argmax(1) == labels).mean())
        rows.append((strategy, accuracy))
        if strategy == "head":
            rows.append(("head, predicted with --windows", float((clf.predict_proba(texts, windows=True).argmax(1)
                                                                  == labels).mean())))
        print(rows[-1], flush=True)
    return rows


def report(args: argparse.Namespace, rows: list[tuple[str, float]]) -> str:
    lines = [f"# Truncation strategies on IMDB at max_length {args.max_length}",
             "", f"all-MiniLM-L6-v2, {args.train_samples:,} train reviews, {args.epochs:g} epochs, lr 5e-5, seed 42; "
             f"accuracy on {args.eval_samples:,} seeded test reviews.", "",
             f"Command: `python benchmarks/truncation.py --train-samples {args.train_samples} --epochs {args.epochs:g} "
             f"--eval-samples {args.eval_samples} --max-length {args.max_length}`", "",
             "| strategy | test accuracy |", "|---|---:|"]
    lines += [f"| {name} | {acc:.4f} |" for name, acc in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
