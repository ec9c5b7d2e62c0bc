"""The training-speed harness itself, at a tiny scale: a benchmark that scores a peer against shuffled labels
or divides by the wrong time says something false, so its scoring and timing are tested like the package."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import yaml

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "train_speed.py"


def test_each_variant_is_scored_against_its_own_labels(small_model, tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, str(SCRIPT), "--repeats", "1", "--train-samples", "32", "--eval-samples", "40",
               "--model", str(small_model), "--workdir", str(tmp_path / "work"), "--results-dir", str(results)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads((results / "train_speed.json").read_text())["raw"]
    gold = [json.loads(line)["label"] for line in (tmp_path / "work" / "data" / "test.jsonl").read_text().split("\n")
            if line]
    assert set(raw) == {"trainer-default", "trainer-best", "textfit", "textfit-no-baseline"}
    for variant, runs in raw.items():
        for run in runs:
            predictions, label_ids = run["predictions"], run["label_ids"]
            assert len(predictions) == len(label_ids) == len(gold) == 40, variant
            # the reported accuracy is the one the paired lists give ...
            paired = sum(p == g for p, g in zip(predictions, label_ids, strict=True)) / len(gold)
            assert run["accuracy"] == paired, variant
            # ... and the labels are the evaluation set's, whatever order a sampler gave them
            assert Counter(label_ids) == Counter(gold), variant
            # the whole process holds the loop, and both were timed
            assert run["process_seconds"] > run["loop_seconds"] > 0, variant
    textfit = raw["textfit"][0]
    assert textfit["label_ids"] == gold  # textfit's predictions are rebuilt in the evaluation set's order
    # the baseline's cost is read from a run that fitted one, against a run that did not
    assert textfit["baseline"]["train_examples"] == 32 and raw["textfit-no-baseline"][0]["baseline"] is None
    table = (results / "train_speed.md").read_text()
    for heading in ("whole process", "training loop", "trainer-default", "trainer-best", "textfit |",
                    "textfit-no-baseline |", "CPU seconds", "Code: textfit at commit"):
        assert heading in table

    # the same command again (as after an interruption) measures nothing twice: every run is the one kept; a
    # table under another name (another CPU kind's) is written beside the first and says how to repeat it
    again = subprocess.run([*command, "--results-name", "train_speed-again"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("(measured earlier)") == 4
    assert json.loads((results / "train_speed-again.json").read_text())["raw"] == raw
    assert "--results-name train_speed-again" in (results / "train_speed-again.md").read_text()
    assert (results / "train_speed.md").read_text() == table


def test_an_ablation_runs_textfit_with_that_default_off(small_model, tmp_path):
    """`--variants textfit-no-grouping,...` is how a default's cost per step is measured: each variant's run must
    really have that default off (and the rest on), or the A/B compares textfit with itself."""
    results = tmp_path / "results"
    command = [sys.executable, str(SCRIPT), "--repeats", "1", "--train-samples", "32", "--eval-samples", "40",
               "--time-to-accuracy", "0.99", "--eval-every", "1", "--variants", "textfit-no-grouping,textfit-fp32",
               "--model", str(small_model), "--workdir", str(tmp_path / "work"), "--results-dir", str(results),
               "--results-name", "ablation"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = {variant: yaml.safe_load((tmp_path / "work" / f"{variant}-seed42" / "recipe.yaml").read_text())
                for variant in ("textfit-no-grouping", "textfit-fp32")}
    assert recorded["textfit-no-grouping"]["group_by_length"] is False
    assert recorded["textfit-fp32"]["group_by_length"] is True
    assert recorded["textfit-fp32"]["precision"] == "fp32"
    assert all(r["baseline"] == "none" for r in recorded.values())
    raw = json.loads((results / "ablation.json").read_text())["raw"]
    assert [r["precision"] for r in raw["textfit-fp32"]] == ["fp32"]
    # a curve for each: one evaluation per step of the epoch (32 reviews, batch 16)
    assert [len(r["curve"]) for r in raw["textfit-no-grouping"]] == [2]
    table = (results / "ablation.md").read_text()
    assert "--variants textfit-no-grouping,textfit-fp32" in table
    # learning per step, side by side: a row of median accuracies at steps 1 and 2 for each variant
    by_step = table.split("Accuracy by step")[1]
    for variant in ("textfit-no-grouping", "textfit-fp32"):
        row = next(line for line in by_step.splitlines() if line.startswith(f"| {variant} |"))
        assert row.count("|") == 4 and float(row.split("|")[2]) == raw[variant][0]["curve"][0][2]
