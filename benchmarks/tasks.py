"""Beyond single-label, measured on real data with the default model (all-MiniLM-L6-v2) on 2 CPU cores.

    python benchmarks/tasks.py                      # all rows (about 30 min here)
    python benchmarks/tasks.py --only goemotions    # one row

- goemotions: multi-label, 28 labels; trained on a subset, decision threshold tuned on 2,000 validation comments,
  scored on the whole test split (5,427) with that saved threshold. Anchor: the GoEmotions paper's BERT-base,
  macro F1 0.46 on test (Demszky et al. 2020).
- imdb-ratings: regression on the IMDb star rating in each review's id (1-4, 7-10); scored on 2,000 test reviews.
- tune-sst2: `textfit tune` with the default search space on an SST-2 subset, killed after 3 finished trials and
  started again; the table says whether the best trial beat the recipe's own settings (trial 0).
Writes benchmarks/results/tasks.md and tasks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
TEXTFIT = [sys.executable, "-m", "textfit"]
sys.path.insert(0, str(REPO / "benchmarks"))
from train_speed import machine  # noqa: E402  (the CPU, its bf16 support and the software, as every table names it)

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

ROWS = {
    "goemotions": dict(
        train=["--dataset", str(DATA / "go_emotions"), "--max-train-samples", "8000", "--max-eval-samples", "2000",
               "--max-length", "64", "--epochs", "2", "--learning-rate", "1e-4", "--train-batch-size", "32",
               "--eval-strategy", "steps", "--eval-steps", "125", "--metric-for-best", "loss"],
        evaluate=["--dataset", str(DATA / "go_emotions"), "--eval-split", "test"],
        scale="8,000 of 43,410 train comments, 2 epochs, lr 1e-4, batch 32, 64 tokens; thresholds tuned on 2,000 "
              "validation comments (one global, then one per label with 25 or more positives there); scored on all "
              "5,427 test comments with each label's own threshold, and with the global one alone (before)",
        before=["--one-threshold"],
        keys=("f1_micro", "f1_macro", "precision_micro", "recall_micro", "subset_accuracy", "threshold"),
        anchor="BERT-base (GoEmotions paper): macro F1 0.46 on test"),
    "imdb-ratings": dict(
        train=["--dataset", str(DATA / "imdb"), "--label-column", "id", "--label-pattern", r"_(?P<rating>\d+)$",
               "--task", "regression", "--eval-split", "test", "--max-train-samples", "4000",
               "--max-eval-samples", "1000", "--max-length", "128", "--epochs", "2", "--learning-rate", "5e-5",
               "--eval-strategy", "steps", "--eval-steps", "125", "--metric-for-best", "loss"],
        evaluate=["--dataset", str(DATA / "imdb"), "--eval-split", "test", "--max-eval-samples", "2000"],
        scale="4,000 of 25,000 train reviews, 2 epochs, lr 5e-5, 128 tokens, star rating from the id; "
              "1,000 test reviews for checkpoint choice, scored on 2,000 (seeded subset)",
        keys=("mae", "mse", "pearson", "spearman"),
        anchor="always the mean train rating (5.48): MAE 3.29, MSE 12.19 on all 25,000 test reviews"),
}


def run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=ENV)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def run_task(name: str, spec: dict, workdir: Path) -> dict:
    out, log = workdir / name, workdir / f"{name}.log"
    start = time.perf_counter()
    run([*TEXTFIT, "train", *spec["train"], "--output-dir", str(out), "--overwrite"], log)
    minutes = (time.perf_counter() - start) / 60
    scored = workdir / f"{name}.eval.json"
    run([*TEXTFIT, "evaluate", str(out), *spec["evaluate"], "--batch-size", "64", "--output", str(scored)], log)
    metrics = json.loads(scored.read_text())
    row = {"name": name, "scale": spec["scale"], "anchor": spec["anchor"], "examples": metrics["num_examples"],
           "cpu": machine(),
           "metrics": {k: metrics[k] for k in spec["keys"] if k in metrics}, "train_minutes": minutes,
           "command": "textfit train " + " ".join(spec["train"]).replace(str(REPO.parent), "..")}
    if "per_class" in metrics:
        row["per_label_f1"] = {label: m["f1"] for label, m in metrics["per_class"].items()}
    if spec.get("before"):  # the same model scored the way it was before a change (one global threshold)
        run([*TEXTFIT, "evaluate", str(out), *spec["evaluate"], *spec["before"], "--batch-size", "64", "--output",
             str(scored)], log)
        before = json.loads(scored.read_text())
        row["before"] = {"flags": " ".join(spec["before"]), **{k: before[k] for k in spec["keys"] if k in before}}
        row["per_label_f1_before"] = {label: m["f1"] for label, m in before.get("per_class", {}).items()}
    return row


def run_tune(workdir: Path, trials: int = 6, kill_after: int = 3) -> dict:
    out, log = workdir / "tune-sst2", workdir / "tune-sst2.log"
    args = ["tune", "--recipe", "sst2-distilbert", "--trials", str(trials), "--max-train-samples", "1500",
            "--eval-steps", "25", "--metric-for-best", "loss", "--output-dir", str(out)]  # as measured
    if out.exists():
        import shutil

        shutil.rmtree(out)
    start = time.perf_counter()
    with log.open("a") as handle:  # the first attempt, killed once `kill_after` trials have finished
        first = subprocess.Popen([*TEXTFIT, *args], stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, env=ENV,
                                 start_new_session=True)
        while first.poll() is None and _finished(out / "study.db") < kill_after:
            time.sleep(1)
        time.sleep(5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        handle.write(f"\n--- killed with {_finished(out / 'study.db')} finished trials ---\n")
    killed_at = _finished(out / "study.db")
    run([*TEXTFIT, *args], log)
    minutes = (time.perf_counter() - start) / 60
    return {"name": "tune-sst2", "trials": _finished(out / "study.db"), "killed_at": killed_at,
            "table": (out / "trials.md").read_text(), "minutes": minutes,
            "command": "textfit " + " ".join(args).replace(str(REPO), ".")}


def _finished(db: Path) -> int:
    import optuna
    from optuna.trial import TrialState

    if not db.exists():
        return 0
    try:
        study = optuna.load_study(study_name="textfit", storage=f"sqlite:///{db}")
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def report(rows: dict) -> str:
    lines = ["# Multi-label, regression and search on this machine (all-MiniLM-L6-v2, 2 CPU cores)", ""]
    for name in ROWS:
        if name not in rows:
            continue
        r = rows[name]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
        lines += [f"## {name}", "", f"- data and scale: {r['scale']}", f"- machine: {r.get('cpu', 'not recorded')}",
                  f"- result ({r['examples']:,} examples): {shown}"]
        if "before" in r:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in r["before"].items() if k != "flags")
            lines.append(f"- the same model with `{r['before']['flags']}` (before): {shown}")
        lines += [f"- reference: {r['anchor']}", f"- command: `{r['command']}` "
                  f"({r['train_minutes']:.0f} min of training), then `textfit evaluate`", ""]
        if "per_label_f1" in r:
            before = r.get("per_label_f1_before")
            lines += ["| label | F1 |" + (" F1 before |" if before else ""), "|---|---:|" + ("---:|" if before else "")]
            lines += [f"| {label} | {f1:.3f} |" + (f" {before[label]:.3f} |" if before else "") for label, f1 in
                      sorted(r["per_label_f1"].items(), key=lambda item: -item[1])]
            lines.append("")
    if "tune-sst2" in rows:
        t = rows["tune-sst2"]
        lines += ["## tune-sst2", "", f"`{t['command']}`: killed after {t['killed_at']} finished trials, started "
                  f"again, finished with {t['trials']} ({t['minutes']:.0f} min in all).", "", t["table"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=[*ROWS, "tune-sst2"])
    parser.add_argument("--workdir", default=str(REPO / "outputs" / "bench-tasks"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "tasks.json"
    rows = json.loads(saved.read_text()) if saved.is_file() else {}
    for name in args.only or [*ROWS, "tune-sst2"]:
        print(f"--- {name}", flush=True)
        rows[name] = run_tune(workdir) if name == "tune-sst2" else run_task(name, ROWS[name], workdir)
        atomic_write_text(saved, json.dumps(rows, indent=2) + "\n")
        atomic_write_text(RESULTS / "tasks.md", report(rows))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
