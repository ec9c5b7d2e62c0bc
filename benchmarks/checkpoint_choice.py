"""Which evaluation should a run keep? Validation loss, the task's metric, the metric with loss breaking ties, or
the last one: measured by the test accuracy each rule would have kept, on real data textfit's defaults were not
tuned on.

    python benchmarks/checkpoint_choice.py                       # every dataset, seeds 42 43 44
    python benchmarks/checkpoint_choice.py --only sst2 --seeds 42

Each run trains once and evaluates every few steps on a selection set carved out of train (never the test set),
and a callback scores the test set at the same moments. Every rule then picks its evaluation from the selection
history alone, and is credited with the test accuracy of that moment: one run answers all four rules, on the same
weights. Writes benchmarks/results/checkpoint_choice.md and .json; each finished run is saved at once and read
back on the next call, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
# (dataset, test split, train / selection / test sizes, settings): a user's first run on each, 3 epochs
DATASETS = {
    "sst2": ("sst2", "validation", 4000, 500, 872, {"max_length": 64, "learning_rate": 5e-5}),
    "tweets": ("tweet_sentiment_multilingual", "test", 4000, 500, 2000, {"max_length": 64, "learning_rate": 5e-5}),
    "imdb": ("imdb", "test", 3000, 500, 2000, {"max_length": 128, "learning_rate": 5e-5}),
    "marc": ("marc", "test", 4000, 500, 2000, {"max_length": 128, "learning_rate": 5e-5}),
}
EPOCHS, EVALUATIONS_PER_EPOCH = 3, 3
RULES = ("loss", "metric", "metric, loss breaks ties", "last")


def read(name: str, split: str) -> list[dict]:
    with gzip.open(DATA / name / f"{split}.jsonl.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def prepare(key: str, seed: int, folder: Path) -> Path:
    """train / selection (carved out of train, disjoint) / test, as a folder of JSON Lines (in /tmp: MARC's terms
    keep it out of the repository)."""
    name, test_split, n_train, n_select, n_test, _ = DATASETS[key]
    rows = read(name, "train")
    random.Random(seed).shuffle(rows)
    test = read(name, test_split)
    random.Random(seed).shuffle(test)
    folder.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", rows[:n_train]), ("selection", rows[n_train:n_train + n_select]),
                        ("test", test[:n_test])):
        atomic_write_text(folder / f"{split}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    atomic_write_text(folder / "labels.json", (DATA / name / "labels.json").read_text())
    return folder


def pick(history: list[dict], rule: str, metric: str = "accuracy") -> dict:
    """The evaluation a rule keeps, from the selection history (ties: the earliest, as textfit keeps)."""
    if rule == "last":
        return history[-1]
    if rule == "loss":
        return min(history, key=lambda row: row["loss"])
    best = max(row[metric] for row in history)
    tied = [row for row in history if row[metric] == best]
    return tied[0] if rule == "metric" else min(tied, key=lambda row: row["loss"])


def run_one(key: str, seed: int, workdir: Path) -> dict:
    import textfit
    from textfit.data import Columns, load_eval_examples
    from textfit.training import Callback

    data = prepare(key, seed, workdir / f"{key}-{seed}")
    settings = DATASETS[key][5]
    n_train = DATASETS[key][2]
    steps_per_epoch = -(-n_train // 16)

    class ScoreTest(Callback):
        """At each evaluation on the selection set, the test set's accuracy at the same moment."""

        def __init__(self):
            self.test_accuracy: dict[int, float] = {}
            self.encoded = None

        def on_evaluate(self, run, row, kept):
            if self.encoded is None:
                self.examples, _ = load_eval_examples(str(data), "test", Columns(), run.data.label_names, None,
                                                      seed, run.task)
                self.encoded = run.encode(self.examples)
            self.test_accuracy[row["step"]] = run.evaluate(self.encoded, self.examples)["accuracy"]

    scorer = ScoreTest()
    start = time.perf_counter()
    result = textfit.train(dataset=str(data), eval_split="selection", output_dir=str(workdir / f"out-{key}-{seed}"),
                           epochs=EPOCHS, seed=seed, eval_strategy="steps",
                           eval_steps=max(1, steps_per_epoch // EVALUATIONS_PER_EPOCH), overwrite=True,
                           callbacks=[scorer], **settings)
    history = [{**row, "test_accuracy": scorer.test_accuracy[row["step"]]} for row in result.history]
    chosen = {rule: pick(history, rule) for rule in RULES}
    return {"dataset": key, "seed": seed, "seconds": round(time.perf_counter() - start, 1), "history": history,
            "chosen": {rule: {"step": row["step"], "selection_accuracy": row["accuracy"],
                              "selection_loss": row["loss"], "test_accuracy": row["test_accuracy"]}
                       for rule, row in chosen.items()}}


def report(runs: list[dict], args: argparse.Namespace) -> str:
    keys = list(dict.fromkeys(r["dataset"] for r in runs))
    lines = ["| dataset (train / selection / test) | " + " | ".join(RULES) + " | best test accuracy seen |",
             "|---|" + "---|" * (len(RULES) + 1)]
    means: dict[str, list[float]] = {rule: [] for rule in RULES}
    wins: dict[str, int] = dict.fromkeys(RULES, 0)
    for key in keys:
        mine = [r for r in runs if r["dataset"] == key]
        cells = []
        for rule in RULES:
            values = [r["chosen"][rule]["test_accuracy"] for r in mine]
            means[rule] += values
            cells.append(f"{statistics.mean(values):.4f} ({', '.join(f'{v:.3f}' for v in values)})")
        for r in mine:
            top = max(r["chosen"][rule]["test_accuracy"] for rule in RULES)
            for rule in RULES:
                wins[rule] += r["chosen"][rule]["test_accuracy"] == top
        oracle = statistics.mean(max(row["test_accuracy"] for row in r["history"]) for r in mine)
        _, _, n_train, n_select, n_test, _ = DATASETS[key]
        lines.append(f"| {key} ({n_train:,} / {n_select} / {n_test:,}) | " + " | ".join(cells) + f" | {oracle:.4f} |")
    lines.append("| **mean over every run** | " + " | ".join(f"**{statistics.mean(means[r]):.4f}**" for r in RULES)
                 + " | |")
    lines.append("| runs where the rule kept the best of the four | " + " | ".join(str(wins[r]) for r in RULES)
                 + " | |")
    return "\n".join([
        "# Which checkpoint to keep",
        "",
        "Test accuracy of the evaluation each rule keeps: mean over seeds (each seed in brackets). Every run: "
        f"all-MiniLM-L6-v2, {EPOCHS} epochs, batch 16, evaluated {EVALUATIONS_PER_EPOCH} times an epoch on a "
        "selection set carved out of train; the test set is scored at the same moments but never chosen on. "
        "`metric` is accuracy (the task's main metric); ties go to the earliest evaluation.",
        "",
        *lines,
        "",
        f"Seeds: {', '.join(map(str, args.seeds))}. Command: python benchmarks/checkpoint_choice.py --seeds "
        f"{' '.join(map(str, args.seeds))}" + (f" --only {' '.join(args.only)}" if args.only else ""),
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[42, 43, 44])
    parser.add_argument("--workdir", default="/tmp/textfit-checkpoint-choice")
    parser.add_argument("--report-only", action="store_true",
                        help="write the table from the runs saved so far, running nothing (it says what is missing)")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(REPO))
    from textfit.cli import quiet_transformers

    quiet_transformers()
    store = RESULTS / "checkpoint_choice.json"
    saved = {(r["dataset"], r["seed"]): r for r in json.loads(store.read_text())} if store.is_file() else {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    wanted = [(key, seed) for key in args.only or list(DATASETS) for seed in args.seeds]
    if args.report_only:
        runs = [saved[pair] for pair in wanted if pair in saved]
        missing = [f"{key} seed {seed}" for key, seed in wanted if (key, seed) not in saved]
        text = report(runs, args) + (f"\n\nPartial: {len(runs)} of {len(wanted)} runs; not run yet: "
                                     f"{', '.join(missing)}." if missing else "")
        atomic_write_text(RESULTS / "checkpoint_choice.md", text + "\n")
        print(text)
        return 0
    for key, seed in wanted:
        result = saved.get((key, seed)) or run_one(key, seed, Path(args.workdir))  # finished runs are kept
        runs.append(result)
        saved[(key, seed)] = result
        atomic_write_text(store, json.dumps(list(saved.values()), indent=1))
        print(f"{key} seed {seed}: " + ", ".join(f"{rule} {c['test_accuracy']:.4f} (step {c['step']})"
                                                 for rule, c in result["chosen"].items()), flush=True)
    text = report(runs, args)
    atomic_write_text(RESULTS / "checkpoint_choice.md", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
