"""Multi-label decision thresholds: which rule to ship. Measured on the GoEmotions model of results/tasks.md.

    python benchmarks/tasks.py --only goemotions     # trains outputs/bench-tasks/goemotions (a few minutes)
    python benchmarks/thresholds.py                  # writes benchmarks/results/thresholds.md and .json

Every rule chooses on the same 2,000 validation comments the model was evaluated on in training, and is scored
on all 5,427 test comments, where nothing was chosen:
- global: one threshold, the best micro F1 (textfit's behaviour before per-label thresholds);
- each label's best F1: labels with 25+ validation positives get the threshold with their own best F1;
- micro-F1 coordinate ascent (shipped): the same labels, each threshold chosen to raise the micro F1 over all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "go_emotions"
RESULTS = REPO / "benchmarks" / "results"


def own_best_f1(targets: np.ndarray, probs: np.ndarray, fallback: float, min_positives: int) -> np.ndarray:
    """The rejected rule: each label at the threshold of its own best F1 (ties nearest the fallback)."""
    from textfit.metrics import THRESHOLDS

    chosen = np.full(targets.shape[1], fallback)
    for j in np.flatnonzero(targets.sum(0) >= min_positives):
        f1 = [2 * ((probs[:, j] >= t) & targets[:, j]).sum() / max((probs[:, j] >= t).sum() + targets[:, j].sum(), 1)
              for t in THRESHOLDS]
        chosen[j] = max(zip(f1, -abs(THRESHOLDS - fallback), THRESHOLDS, strict=True))[2]
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=str(REPO / "outputs" / "bench-tasks" / "goemotions"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from sklearn.metrics import f1_score

    import textfit
    from textfit.data import Columns, load_eval_examples
    from textfit.metrics import MIN_POSITIVES, best_threshold, per_label_thresholds

    clf = textfit.load(args.model_dir, precision="fp32")
    splits = {}
    for split, limit in (("validation", 2000), ("test", None)):
        examples, _ = load_eval_examples(str(DATA), split, Columns(), clf.labels, limit, 42, clf.task)
        targets = np.asarray(clf.task.targets([ex.label for ex in examples], len(clf.labels))).astype(bool)
        splits[split] = (targets, clf.predict_proba([ex.text for ex in examples]))
    (y_val, p_val), (y_test, p_test) = splits["validation"], splits["test"]
    cut = best_threshold(y_val, p_val)
    rules = {"global": np.full(len(clf.labels), cut),
             "each label's best F1": own_best_f1(y_val, p_val, cut, MIN_POSITIVES),
             "micro-F1 coordinate ascent (shipped)": np.asarray(per_label_thresholds(y_val, p_val, cut))}
    rows = []
    for name, thresholds in rules.items():
        predicted = p_test >= thresholds
        per_label = f1_score(y_test, predicted, average=None, zero_division=0)
        rows.append({"rule": name, "f1_micro": f1_score(y_test, predicted, average="micro", zero_division=0),
                     "f1_macro": float(per_label.mean()), "labels_at_f1_0": int((per_label == 0).sum()),
                     "own_thresholds": int((thresholds != cut).sum())})
    lines = ["# Multi-label thresholds on GoEmotions", "",
             "Model: the goemotions row of results/tasks.md (trained by the first command below). Thresholds chosen "
             f"on 2,000 validation comments (global {cut:g}; labels with {MIN_POSITIVES}+ positives may get their "
             f"own), scored on all {len(y_test):,} test comments.", "",
             "| rule | micro F1 | macro F1 | labels at F1 0 | labels with their own threshold |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['rule']} | {r['f1_micro']:.4f} | {r['f1_macro']:.4f} | {r['labels_at_f1_0']} | "
              f"{r['own_thresholds']} |" for r in rows]
    lines += ["", "Command: python benchmarks/tasks.py --only goemotions && python benchmarks/thresholds.py"]
    atomic_write_text(RESULTS / "thresholds.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "thresholds.json", json.dumps({"global": cut, "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
