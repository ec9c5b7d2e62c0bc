"""The best model for a time budget: `--time-budget` against the default recipe and the HF Trainer's tutorial
defaults, each stopped at the same wall time, as a user would stop them.

    python benchmarks/budget.py                                   # IMDB and SST-2, 5/10/20 min, 3 seeds (~7.5 h)
    python benchmarks/budget.py --data sst2 --budgets 5 --seeds 42  # one cell (~16 min)

For each dataset, budget and seed, three commands run from their own start, one at a time:
  plan      `textfit train --dataset D --time-budget B`: it must end by itself inside B
  default   `textfit train --dataset D` (the default recipe), stopped at B; what a user has then is the best
            checkpoint written so far (checkpoints/best), or nothing
  trainer   a Trainer script as the tutorials write it (padding to max_length, 3 epochs, lr 5e-5, batch 8,
            a checkpoint every 500 steps), stopped at B; what a user has is its last checkpoint, or nothing
The plan differs by budget, so it runs once for each. The other two do not know the budget: a run killed at 5 min
has exactly what the same run had at 5 min on its way to 20. So each runs once, for the largest budget, and what
it has written by each smaller budget's time is copied aside then (a copy of a finished checkpoint: textfit swaps
its checkpoints in whole, and a Trainer checkpoint counts once its trainer_state.json, written last, is there).
The data folder holds train only, so textfit selects its checkpoint on 10% of train held out; all three are then
scored, outside the budget, on the same examples no one selected on: 2,000 IMDB test reviews (seeded) or all 872
SST-2 validation sentences. Results accumulate in results/budget.json (a finished cell is not run again) and
the table in results/budget.md. Each cell records the CPU it ran on: a budget buys different runs on another
CPU kind, so a cell counts as done, and goes in the table, only on the machine it was measured on.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data"
WORK = REPO / "outputs" / "bench-budget"
RESULTS = REPO / "benchmarks" / "results"
SCORED = {"imdb": ("test", 2000), "sst2": ("validation", 872)}  # the examples every model is scored on
MAX_LENGTH = 256  # textfit's default; the Trainer tutorial pads to it as well
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def train_only(name: str) -> Path:
    """A data folder with the train split alone (and the label names): selection happens on held-out train."""
    folder = WORK / f"{name}-train-only"
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("train.jsonl.gz", "labels.json"):
        if not (folder / file).exists():
            (folder / file).symlink_to(DATA / name / file)
    return folder


def scored_examples(name: str) -> tuple[list[str], list[int]]:
    split, n = SCORED[name]
    with gzip.open(DATA / name / f"{split}.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    rows = random.Random(0).sample(rows, min(n, len(rows)))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


TRAINER = """
import gzip, json, sys
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments
data, out, seed, model_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = [json.loads(line) for line in gzip.open(data + "/train.jsonl.gz", "rt")]
tok = AutoTokenizer.from_pretrained(model_path)
ds = Dataset.from_list([{"text": r["text"], "label": r["label"]} for r in rows])
ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=MAX_LENGTH, padding="max_length"), batched=True)
model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
args = TrainingArguments(output_dir=out, seed=seed, report_to="none", use_cpu=True, disable_tqdm=True)
Trainer(model=model, args=args, train_dataset=ds).train()
""".replace("MAX_LENGTH", str(MAX_LENGTH))


def command(method: str, data: Path, out: Path, seed: int, budget: float) -> list[str]:
    from textfit.models import resolve_model

    if method == "trainer":
        return [sys.executable, "-c", TRAINER, str(data), str(out), str(seed), resolve_model("minilm-l6").path]
    cmd = [sys.executable, "-m", "textfit", "train", "--dataset", str(data), "--seed", str(seed), "--output-dir",
           str(out), "--overwrite", "--baseline", "none"]
    return cmd + (["--time-budget", f"{budget:g}s"] if method == "plan" else [])


def run_with_snapshots(cmd: list[str], budgets: list[float], method: str, out: Path, log: Path) -> list[dict]:
    """Run `cmd` until the largest budget (seconds); at each budget, copy aside what a user would have if it were
    stopped then. One dict per budget: seconds, whether the run had ended by itself, and the model (or None)."""
    start, ended = time.time(), None
    stops = []
    with log.open("w") as handle:
        process = subprocess.Popen(cmd, env=ENV, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                   start_new_session=True)
        for budget in sorted(budgets):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, start + budget - time.time()))
            if ended is None and process.poll() is not None:
                ended = time.time() - start
            stops.append({"seconds": budget if ended is None else ended, "ended_by_itself": ended is not None,
                          "model": snapshot(model_at_stop(method, out), out.parent / f"{out.name}-at{budget:g}s")})
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return stops


def snapshot(model: Path | None, to: Path) -> Path | None:
    """A copy of the model as it is now, without optimizer states or checkpoints (a checkpoint swapped in while
    copying: copy again)."""
    if model is None:
        return None
    for _ in range(3):
        shutil.rmtree(to, ignore_errors=True)
        try:
            shutil.copytree(model, to, ignore=shutil.ignore_patterns("checkpoints", "optimizer.pt", "*.pth"))
            return to
        except (FileNotFoundError, shutil.Error):
            time.sleep(1)
    return None


def model_at_stop(method: str, out: Path) -> Path | None:
    """What the user has when the budget ends: the folder, textfit's best checkpoint, or the Trainer's last
    complete one (trainer_state.json is the last file a Trainer checkpoint gets)."""
    if (out / "README.md").is_file():
        return out
    if method != "trainer":
        best = out / "checkpoints" / "best"
        return best if (best / "model.safetensors").is_file() else None
    saved = sorted((p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file()),
                   key=lambda p: int(p.name.split("-")[1]))
    return saved[-1] if saved else None


def planned(out: Path) -> dict:
    """What a `--time-budget` run planned and why it stopped, from its history.json (nothing for the others)."""
    history = out / "history.json"
    if not history.is_file():
        return {}
    values = json.loads(history.read_text())
    return {"plan": (values.get("plan") or {}).get("line"), "stop_reason": values.get("stop_reason"),
            "kept_step": (values.get("best") or {}).get("step")}


def accuracy(folder: Path | None, texts: list[str], labels: list[int]) -> float | None:
    """Scored the same way for every method: the weights, the default tokenizer, 256 tokens, argmax."""
    if folder is None:
        return None
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textfit.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    predicted = []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = [texts[i] for i in order[start:start + 64]]
            enc = tok(batch, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            predicted += model(**enc).logits.argmax(-1).tolist()
    answers = np.empty(len(texts), dtype=int)
    answers[order] = predicted
    return float((answers == np.asarray(labels)).mean())


def main() -> None:
    args = arguments()
    from train_speed import machine

    store, here = RESULTS / "budget.json", machine()
    results = json.loads(store.read_text()) if store.is_file() else []
    if args.again:
        results = supersede(results, here, args)
        save(store, results)
    # a budget buys different runs on different CPUs: only this machine's cells count as done, or go in its table
    done = {(r["data"], r["budget_min"], r["seed"], r["method"]) for r in results if r.get("machine") == here}
    for row in results:  # rows measured before the plan was kept: read it from the run's folder, if still there
        if row["method"] == "plan" and "plan" not in row:
            row.update(planned(WORK / f"{row['data']}-{row['budget_min']:g}m-s{row['seed']}-plan"))
    facts = {"machine": here, "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                       text=True, cwd=REPO).stdout.strip() or "unknown"}
    for name in args.data:
        data, scored = train_only(name), scored_examples(name)
        for seed in args.seeds:
            for method in args.methods:
                # the plan: one run per budget; the others: one run, stopped at each budget
                for budgets in [[m] for m in args.budgets] if method == "plan" else [args.budgets]:
                    todo = [m for m in budgets if (name, m, seed, method) not in done]
                    for row in measured(name, data, scored, seed, method, budgets, todo, facts):
                        results.append(row)
                        save(store, results)  # a killed run keeps every cell it finished, and its table
    save(store, results)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["imdb", "sst2"], choices=tuple(SCORED))
    parser.add_argument("--budgets", nargs="+", type=float, default=[5, 10, 20], help="minutes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", default=["plan", "default", "trainer"])
    parser.add_argument("--again", action="store_true",
                        help="measure the chosen cells again (after a change to the plan): this machine's earlier "
                             "rows for them move to results/budget-superseded.json, kept as the evidence before")
    return parser.parse_args()


def measured(name: str, data: Path, scored: tuple[list[str], list[int]], seed: int, method: str,
             budgets: list[float], todo: list[float], facts: dict) -> Iterator[dict]:
    """Run one command to the largest of `budgets` and score what it had at each budget still to do."""
    if not todo:
        return
    tag = f"{budgets[0]:g}m" if method == "plan" else "to" + f"{max(budgets):g}m"
    out = WORK / f"{name}-{tag}-s{seed}-{method}"
    stops = run_with_snapshots(command(method, data, out, seed, budgets[0] * 60), [m * 60 for m in budgets], method,
                               out, out.with_suffix(".log"))
    for minutes, stop in zip(sorted(budgets), stops, strict=True):
        if minutes in todo:
            model = stop["model"]
            row = {**facts, "data": name, "budget_min": minutes, "seed": seed, "method": method,
                   "seconds": round(stop["seconds"], 1), "ended_by_itself": stop["ended_by_itself"],
                   "model": str(model.relative_to(REPO)) if model else None,
                   "accuracy": accuracy(model, *scored), "scored_on": len(scored[0]),
                   **(planned(out) if method == "plan" else {})}
            print(json.dumps(row), flush=True)
            yield row


def save(store: Path, results: list[dict]) -> None:
    atomic_write_text(store, json.dumps(results, indent=1))
    atomic_write_text(RESULTS / "budget.md", report(results))


def supersede(results: list[dict], here: str, args: argparse.Namespace) -> list[dict]:
    """The rows that stay; this machine's rows of the chosen cells are appended to budget-superseded.json."""
    def chosen(r: dict) -> bool:
        return (r.get("machine") == here and r["data"] in args.data and r["budget_min"] in args.budgets
                and r["seed"] in args.seeds and r["method"] in args.methods)

    old = RESULTS / "budget-superseded.json"
    superseded = json.loads(old.read_text()) if old.is_file() else []
    atomic_write_text(old, json.dumps(superseded + [r for r in results if chosen(r)], indent=1))
    return [r for r in results if not chosen(r)]


def report(results: list[dict]) -> str:
    """The table of this machine's cells (a budget buys different runs on another CPU kind)."""
    from train_speed import machine

    here = machine()
    elsewhere = sorted({r["machine"] for r in results if r.get("machine") != here})
    results = [r for r in results if r.get("machine") == here]
    lines = ["# The best model for a time budget", "", f"Measured on: {here}.", "",
             "Command: `python benchmarks/budget.py` (the set-up: its docstring). Accuracy on examples no method "
             "selected on; 'none' when the method had written no model by the end of the budget. Median over "
             "seeds, then the range; seconds is the longest wall time.", "",
             "| data | budget | method | accuracy | models written / runs | ended by itself | seconds (max) |",
             "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["data"], r["budget_min"], r["method"]) for r in results},
                  key=lambda k: (k[0], k[1], ["plan", "default", "trainer"].index(k[2])))
    for name, minutes, method in keys:
        rows = [r for r in results if (r["data"], r["budget_min"], r["method"]) == (name, minutes, method)]
        scores = [r["accuracy"] if r["accuracy"] is not None else 0.0 for r in rows]
        written = sum(r["accuracy"] is not None for r in rows)
        shown = (f"{statistics.median(scores):.4f} ({min(scores):.4f}-{max(scores):.4f})" if written else "none")
        lines.append(f"| {name} | {minutes:g} min | {method} | {shown} | {written}/{len(rows)} | "
                     f"{sum(r['ended_by_itself'] for r in rows)}/{len(rows)} | {max(r['seconds'] for r in rows):.0f} |")
    plans = [r for r in results if r.get("plan")]
    if plans:
        lines += ["", "What each budget run planned, and how it ended:", ""]
        lines += [f"- {r['data']}, {r['budget_min']:g} min, seed {r['seed']}: {r['plan']}. "
                  f"{'Stopped: ' + r['stop_reason'] if r.get('stop_reason') else 'Ran to its last step'}; "
                  f"kept step {r['kept_step']}." for r in plans]
    old = RESULTS / "budget-superseded.json"
    before = [r for r in json.loads(old.read_text()) if r.get("machine") == here] if old.is_file() else []
    if before:
        lines += ["", "Measured again after a change to the plan (`--again`); the earlier cells, kept in "
                  "budget-superseded.json:", ""]
        lines += [f"- {r['data']}, {r['budget_min']:g} min, seed {r['seed']}, {r['method']} (code "
                  f"{r.get('commit', 'before rows named their commit')}): accuracy "
                  f"{'none' if r['accuracy'] is None else format(r['accuracy'], '.4f')}"
                  + (f"; {r['plan']}" if r.get("plan") else "") for r in before]
    if elsewhere:
        lines += ["", f"budget.json also keeps cells measured on {'; '.join(elsewhere)}: not in this table."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
