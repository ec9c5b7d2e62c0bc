"""The TF-IDF baseline on the reference rows' own data: how much fine-tuning adds, and what the baseline costs.

    python benchmarks/baseline.py        # writes benchmarks/results/baseline.md and .json (about a minute or two)

Each row reads the same training and evaluation examples as a fine-tuned row of results/quality.md or
results/tasks.md (same split, subset sizes and seed, through textfit's own data loading), fits textfit's baseline
(TF-IDF of word 1-2-grams and character 2-5-grams; logistic regression, one-vs-rest, or ridge) and scores it,
timing fitting and scoring together. The fine-tuned figure beside it is read from those results files.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"

# name: (dataset, data settings, where the fine-tuned figure is, its key, metric, NB: what the row is)
ROWS = {
    "imdb-subset": (DATA / "imdb", dict(eval_split="test", max_train_samples=3000, max_eval_samples=300),
                    ("quality.json", "imdb-subset"), "accuracy", "IMDB 3,000 train / 300 test reviews"),
    "imdb-subset-2000": (DATA / "imdb", dict(eval_split="test", max_train_samples=3000, max_eval_samples=2000),
                         ("quality.json", "no fine-tuned row"), "accuracy",
                         "IMDB 3,000 train / 2,000 test reviews (the same train, more test reviews)"),
    "imdb-full": (DATA / "imdb", dict(eval_split="test"), ("quality.json", "imdb-full-windows"), "accuracy",
                  "IMDB all 25,000 train / 25,000 test reviews"),
    "sst2": (DATA / "sst2", dict(eval_split="validation"), ("quality.json", "sst2"), "accuracy",
             "SST-2 all 67,349 train / 872 validation sentences"),
    "goemotions": (DATA / "go_emotions", dict(eval_split="test", max_train_samples=8000),
                   ("tasks.json", "goemotions"), "f1_micro", "GoEmotions 8,000 train / 5,427 test comments"),
    "imdb-ratings": (DATA / "imdb", dict(eval_split="test", max_train_samples=4000, max_eval_samples=2000,
                                         label_column="id", label_pattern=r"_(?P<rating>\d+)$", task="regression"),
                     ("tasks.json", "imdb-ratings"), "mae", "IMDb star ratings 4,000 train / 2,000 test reviews"),
}
ANCHOR = "NB-SVM (bigrams) on full IMDB: 0.9122 (Wang & Manning 2012)"


def fine_tuned(source: tuple[str, str], metric: str) -> float | None:
    path = RESULTS / source[0]
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if isinstance(saved, list):  # quality.json: rows; a row that selected on its test set gives its last evaluation
        from quality import ROWS as QUALITY_ROWS  # benchmarks/quality.py, beside this script

        row = next((r for r in saved if r["name"] == source[1]), None)
        if row is None:
            return None
        return row["last_eval"][metric] if QUALITY_ROWS[source[1]].get("scored_on_selection") else row[metric]
    return (saved.get(source[1]) or {}).get("metrics", {}).get(metric)


def main() -> int:
    sys.path.insert(0, str(REPO))
    from train_speed import machine  # benchmarks/train_speed.py, beside this script: the CPU and its bf16 support

    from textfit.baseline import NAME, fit_baseline
    from textfit.data import Columns, load_eval_examples, load_training_data
    from textfit.metrics import LOWER_IS_BETTER, best_threshold, per_label_thresholds

    rows = []
    for name, (dataset, settings, source, metric, what) in ROWS.items():
        columns = Columns(label=settings.pop("label_column", "label"), label_pattern=settings.pop("label_pattern",
                                                                                                  None))
        data = load_training_data(str(dataset), columns, seed=42, **settings)
        start = time.perf_counter()
        score = fit_baseline(data.train, data.task, len(data.label_names))
        scores = score(data.eval)
        seconds = time.perf_counter() - start
        thresholds = {}
        if data.task.label_sets:  # thresholds from validation, as the fine-tuned row's: none chosen on test
            validation, _ = load_eval_examples(str(dataset), "validation", columns, data.label_names, 2000, 42,
                                               data.task)
            chosen = score(validation)
            target = data.task.targets([ex.label for ex in validation], len(data.label_names))
            global_cut = best_threshold(target, chosen)
            thresholds = {"threshold": global_cut, "per_label": per_label_thresholds(target, chosen, global_cut)}
        value = data.task.evaluate(scores, [ex.label for ex in data.eval], data.label_names, **thresholds)[metric]
        ours = fine_tuned(source, metric)
        rows.append({"name": name, "what": what, "metric": metric, "baseline": value, "seconds": seconds,
                     "fine_tuned": ours, "train": len(data.train), "eval": len(data.eval)})
        print(f"{name}: baseline {metric} {value:.4f} in {seconds:.1f} s; fine-tuned {ours}", flush=True)
    lines = ["# The TF-IDF baseline beside the fine-tuned rows", "",
             f"Baseline: textfit's `{NAME}` (ridge for regression; one-vs-rest for multi-label, its thresholds tuned "
             "on 2,000 validation comments, as the fine-tuned row's threshold was), fitted on the same training "
             "examples and scored on the same evaluation examples as the fine-tuned row. Seconds: fitting and "
             f"scoring, on {machine()}.", "",
             "| data | metric | baseline | seconds | fine-tuned (all-MiniLM-L6-v2) | difference |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        diff = "-" if r["fine_tuned"] is None else f"{r['fine_tuned'] - r['baseline']:+.4f}"
        better = "" if r["fine_tuned"] is None else (" (lower is better)" if r["metric"] in LOWER_IS_BETTER else "")
        ours = "-" if r["fine_tuned"] is None else f"{r['fine_tuned']:.4f}"
        lines.append(f"| {r['what']} | {r['metric']}{better} | {r['baseline']:.4f} | {r['seconds']:.1f} | {ours} | "
                     f"{diff} |")
    lines += ["", f"Anchor: {ANCHOR}.", "", "Command: python benchmarks/baseline.py"]
    atomic_write_text(RESULTS / "baseline.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "baseline.json", json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
