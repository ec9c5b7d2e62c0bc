"""Distillation: 2- and 3-layer students beside their teacher, and beside the same small model trained on the
labels alone, on IMDB (teacher: the 3k/300 recipe) and SST-2 (teacher: 10,000 train sentences).

    python benchmarks/distill.py                  # both datasets (about 70 min on 2 cores): results/distill.md
    python benchmarks/distill.py --only sst2 --seeds 42 43 44
    python benchmarks/distill.py --only imdb --layers 2
    python benchmarks/distill.py --pipeline-only          # only the int8 student against the pipeline, the student
                                                          # re-exported as `textfit export` writes it now
    python benchmarks/distill.py --only imdb --layers 2 --kinds "+ unlabelled" \
        --student-setting max_length=128 truncation=head+tail   # students with other settings, kept apart

For each dataset, student size and seed:
  labels only    `textfit train --layers N`, the student's settings: what the small model learns by itself
  distilled      `textfit distill TEACHER --layers N`: the same labelled texts, with the teacher's scores
  + unlabelled   the same plus texts of the train split that the teacher never saw, without their labels
  + unlabelled, teacher's layers   the same, the student starting from the teacher's own first N layers and head
                 (--student-init teacher) instead of the pretrained model's
All four use the same settings (the teacher's recipe, with the student's epochs and learning rate below) and
the same evaluation examples as the teacher. Speed: the teacher and one distilled student of each size and
settings (seed 42, the first distilled kind run) on every backend, over the same evaluation texts
(textfit/distill.py's timing: tokenizing included); on IMDB also the int8 student
against `transformers.pipeline` fp32 at batch 32 over the same 500 test reviews (predict_speed.py's harness):
the most accurate distilled student of the smallest size, seed 42, as the one a user would serve.
On IMDB every model is also scored on HELD_OUT further test reviews that none of them chose a checkpoint on, and
each student's gap to the teacher there gets a 95% paired bootstrap interval (textfit/compare.py): on 300
reviews a 1.5-point target is inside the noise. Runs already finished under outputs/bench-distill are read back,
so an interrupted benchmark continues. Another CPU kind's table goes beside the first with --results-name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from train_speed import machine

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
WORK = REPO / "outputs" / "bench-distill"
RESULTS = REPO / "benchmarks" / "results"

# metric_for_best loss: the table was measured when the loss chose the kept evaluation; head_learning_rate 0: and
# before a fresh head had its own rate by default
SETUPS = {
    "imdb": {"recipe": "imdb-distilbert-subset", "teacher": {"early_stopping_patience": 2, "metric_for_best": "loss"},
             "student": {"epochs": 4, "learning_rate": 5e-5, "metric_for_best": "loss",
                         "head_learning_rate": 0.0}, "unlabelled": 5000},
    "sst2": {"recipe": "sst2-distilbert", "teacher": {"max_train_samples": 10000, "epochs": 2, "learning_rate": 5e-5,
                                                      "eval_strategy": "epoch", "metric_for_best": "loss"},
             "student": {"epochs": 3, "learning_rate": 1e-4, "metric_for_best": "loss",
                         "head_learning_rate": 0.0}, "unlabelled": 20000},
}
LAYERS = (2, 3)
KINDS = ("labels only", "distilled", "+ unlabelled", "+ unlabelled, teacher's layers")
PIPELINE_TEXTS = 500  # IMDB test reviews for the int8-student-vs-pipeline figure
PIPELINE_REPEATS = 3  # rounds of that figure, the variants taking turns; the median counts
# test reviews outside the evaluation subset. Expected interval on a gap: about +-1.3 points (1.96 x sqrt(0.1 / 2000)
# with a tenth of the reviews answered differently). SST-2 has none to give: its labelled sentences outside train
# are the 872 validation ones the models select on (train holds phrases)
HELD_OUT = {"imdb": 2000}


def teacher(name: str) -> Path:
    from textfit.config import TrainConfig
    from textfit.recipe import recipe_path
    from textfit.training import train

    out = WORK / name / "teacher"
    if not (out / "metrics.json").is_file():
        setup = SETUPS[name]
        train(TrainConfig.from_sources(recipe_path(setup["recipe"]), **setup["teacher"], output_dir=str(out),
                                       overwrite=True, baseline="none"))
    return out


def unlabelled_file(name: str, teacher_dir: Path) -> Path:
    """Texts of the train split outside the teacher's training subset, labels dropped (seeded)."""
    from textfit.run_folder import RunFolder
    from textfit.training import load_data

    path = WORK / name / "unlabelled.jsonl"
    if path.is_file():
        return path
    config = RunFolder.read_config(teacher_dir)
    used = {ex.where for ex in load_data(config).train}
    everything = load_data(dataclasses.replace(config, max_train_samples=None)).train
    rest = [ex.text for ex in everything if ex.where not in used]
    random.Random(0).shuffle(rest)
    atomic_write_text(path, "".join(json.dumps({"text": t}) + "\n" for t in rest[:SETUPS[name]["unlabelled"]]))
    return path


def held_out(name: str, teacher_dir: Path) -> tuple[list[str], list[int]]:
    """Texts of the evaluation split outside the evaluation subset every model selected on, and outside the
    training texts (seeded), with their labels."""
    from textfit.run_folder import RunFolder
    from textfit.training import load_data

    config = RunFolder.read_config(teacher_dir)
    data = load_data(config)
    used = {ex.text for ex in data.eval + data.train}  # by text: a few reviews repeat under other names
    rest = list({ex.text: ex for ex in load_data(dataclasses.replace(config, max_eval_samples=None)).eval
                 if ex.text not in used}.values())  # each review once: the test split repeats a few
    chosen = random.Random(1).sample(rest, min(HELD_OUT[name], len(rest)))
    return [ex.text for ex in chosen], [int(ex.label) for ex in chosen]


def held_out_scores(folder: Path, texts: list[str]) -> Any:
    """A folder's scores on the held-out texts (PyTorch fp32), kept beside it so a rerun does not score again."""
    import hashlib

    import numpy as np

    import textfit

    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]  # other texts: another file
    cache = folder / f"held_out_{digest}.npy"
    if not cache.is_file():
        np.save(cache, textfit.load(folder, backend="torch", precision="fp32").predict_proba(texts))
    return np.load(cache)


def held_out_gap(student: Path, teacher_dir: Path, held: tuple[list[str], list[int]]) -> dict[str, Any]:
    """The student and its teacher on the held-out texts: accuracies and the paired gap with its interval."""
    import numpy as np

    from textfit.compare import paired_difference
    from textfit.task import SINGLE

    texts, labels = held
    paired = paired_difference(SINGLE, held_out_scores(student, texts), held_out_scores(teacher_dir, texts),
                               np.asarray(labels))
    return {"texts": len(texts), "accuracy": paired.ours, "teacher": paired.theirs, "gap": paired.difference,
            "gap_ci": list(paired.interval)}


def student_runs(name: str, teacher_dir: Path, layers: int, seed: int, unlabelled: Path,
                 extra_settings: dict[str, Any], kinds: tuple[str, ...] = KINDS,
                 retime: bool = False) -> dict[str, dict]:
    from textfit.distill import distill, retime_sides, student_config
    from textfit.run_folder import RunFolder
    from textfit.training import train

    settings = {**SETUPS[name]["student"], **extra_settings, "layers": layers, "seed": seed, "overwrite": True,
                "baseline": "none"}
    rows = {}
    held = held_out(name, teacher_dir) if name in HELD_OUT else None
    for kind in kinds:
        folder_name = kind.replace(", teacher's layers", " teacher-init").replace(' ', '-').replace('+-', 'plus-')
        out = WORK / name / f"l{layers}-s{seed}-{folder_name}{folder_tag(extra_settings)}"
        if not (out / "metrics.json").is_file():
            extra = {"unlabelled": str(unlabelled)} if kind.startswith("+ unlabelled") else {}
            if kind.endswith("teacher's layers"):
                extra["student_init"] = "teacher"
            if kind == "labels only":
                config = student_config(teacher_dir, **settings, output_dir=str(out))
                train(dataclasses.replace(config, teacher=None))
            else:
                timed = kind == next(k for k in kinds if k != "labels only") and seed == 42  # one student timed
                distill(teacher_dir, speed_texts=256 if timed else 0, **settings, **extra, output_dir=str(out))
        folder = RunFolder.load(out)
        metrics, history = folder.metrics(), json.loads((out / "history.json").read_text())
        rows[kind] = {"folder": str(out.relative_to(REPO)), "accuracy": metrics["eval"]["accuracy"],
                      "ci": metrics["eval"]["accuracy_ci"], "distillation": metrics.get("distillation"),
                      "train_seconds": history["train_seconds"]}
        if held:
            rows[kind]["held_out"] = held_out_gap(out, teacher_dir, held)
        speed = out / "distillation.json"
        sides = json.loads(speed.read_text())["cpu_backends"] if speed.is_file() else []
        if sides and retime:  # the same texts, timed again with the harness as it is now
            sides = [dataclasses.asdict(side) for side in retime_sides(teacher_dir, out)]
        if sides:
            rows[kind]["speed"] = sides
    return rows


def tag(extra_settings: dict[str, Any]) -> str:
    """The student settings that differ from the set-up's, as the table shows them: 'max_length=128, ...'."""
    return ", ".join(f"{k}={v}" for k, v in sorted(extra_settings.items()))


def folder_tag(extra_settings: dict[str, Any]) -> str:
    return "".join(f"-{k}-{v}".replace("+", "") for k, v in sorted(extra_settings.items()))


def key_suffix(extra_settings: dict[str, Any]) -> str:
    """What sets apart the results of students with other settings in distill.json: '' or '/max_length=128'."""
    return f"/{tag(extra_settings)}" if extra_settings else ""


def run_key(layers: int, seed: int, extra_settings: dict[str, Any]) -> str:
    return f"{layers}/{seed}{key_suffix(extra_settings)}"


def pipeline_key(extra_settings: dict[str, Any]) -> str:
    return f"pipeline_vs_int8{key_suffix(extra_settings)}"


def split_key(key: str) -> tuple[int, int, str]:
    """'2/42' -> (2, 42, ''); '2/42/max_length=128' -> (2, 42, 'max_length=128')"""
    layers, seed, *setting = key.split("/", 2)
    return int(layers), int(seed), setting[0] if setting else ""


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """--student-setting max_length=128 truncation=head+tail -> {"max_length": 128, "truncation": "head+tail"}"""
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        settings[key] = yaml.safe_load(value)
    return settings


def pipeline_student(entry: dict, layers: int, extra_settings: dict[str, Any]) -> Path:
    """The student a user would serve: of seed 42's distilled students of this size (and these settings), the
    most accurate."""
    runs = entry["runs"][run_key(layers, 42, extra_settings)]
    kind = max((k for k in KINDS[1:] if k in runs), key=lambda k: runs[k]["accuracy"])
    return REPO / runs[kind]["folder"]


def exported(student: Path) -> Path:
    """The student's int8 graph as `textfit export` writes it now: the most accurate student need not be the one
    whose backends were timed (and exported) above."""
    export = [sys.executable, "-m", "textfit", "export", str(student), "--quantize", "int8"]
    subprocess.run(export, check=True, cwd=REPO, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    return student


def pipeline_versus_int8(teacher_dir: Path, student_dir: Path, repeats: int = PIPELINE_REPEATS) -> dict:
    """texts/s of the pipeline (fp32, batch 32, the teacher; as given and at its best, texts sorted by length) and
    of the int8 student over the same reviews, each scored against the reviews' own labels. The variants take
    turns, `repeats` rounds, and each one's median time counts: one round alone moved by 15% on a quiet host."""
    from predict_speed import sample, time_variant

    from textfit.backends import pick_backend
    from textfit.run_folder import RunFolder

    texts, gold = sample("imdb", "test", PIPELINE_TEXTS)
    variants = {"pipeline_teacher_fp32": ("pipeline", teacher_dir),
                "pipeline_sorted_teacher_fp32": ("pipeline-sorted", teacher_dir),
                "int8_student": ("onnxruntime-int8", student_dir)}
    backend, precision = pick_backend(student_dir)  # what `serve` and `predict` pick here by default
    if backend == "torch":  # a CPU with AMX: bf16 PyTorch, which leads int8 there
        variants["auto_student"] = (f"torch-{precision}", student_dir)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    out: dict = {"texts": len(texts), "repeats": repeats}
    for _ in range(repeats):
        for name, (variant, folder) in variants.items():
            took, labels = time_variant(variant, folder, texts)
            seconds[name].append(took)
            accuracy = sum(a == b for a, b in zip(labels, gold, strict=True)) / len(texts)
            if out.setdefault(f"{name}_accuracy", accuracy) != accuracy:
                raise SystemExit(f"{name}: labels changed between rounds ({accuracy} vs {out[f'{name}_accuracy']})")
    for name in variants:
        out[name] = len(texts) / statistics.median(seconds[name])
        out[f"{name}_range"] = [len(texts) / max(seconds[name]), len(texts) / min(seconds[name])]
    if "auto_student" in variants:
        out["auto_backend"] = variants["auto_student"][0]
        out["ratio_auto"] = out["auto_student"] / out["pipeline_teacher_fp32"]
    out["fused"] = json.loads((student_dir / "export.json").read_text()).get("fused", False)
    out["student"] = str(student_dir.relative_to(REPO))
    for side, folder in (("teacher", teacher_dir), ("student", student_dir)):  # how much of each review it reads
        config = RunFolder.read_config(folder)
        out[f"{side}_reads"] = f"{config.max_length} tokens ({config.truncation})"
    out["ratio"] = out["int8_student"] / out["pipeline_teacher_fp32"]
    out["ratio_sorted"] = out["int8_student"] / out["pipeline_sorted_teacher_fp32"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=tuple(SETUPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--layers", type=int, nargs="+", default=list(LAYERS), help="student sizes to run")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="students to train")
    parser.add_argument("--student-setting", nargs="+", default=[], metavar="KEY=VALUE",
                        help="student settings on top of the set-up's, e.g. max_length=128 truncation=head+tail; "
                             "their runs are kept and shown apart")
    parser.add_argument("--results-name", default="distill",
                        help="results/NAME.json and .md: another CPU kind's table beside the first one")
    parser.add_argument("--pipeline-only", action="store_true",
                        help="only the IMDB int8-student-vs-pipeline figure, from the runs already made")
    parser.add_argument("--retime", action="store_true",
                        help="time the teacher and the timed students of finished runs again (their speed rows)")
    parser.add_argument("--pipeline-repeats", type=int, default=PIPELINE_REPEATS,
                        help="rounds of that figure, the variants taking turns: the median of each counts")
    args = parser.parse_args()
    command = shlex.join(["python", "benchmarks/distill.py", *sys.argv[1:]])  # written beside what it measured
    extra = parse_settings(args.student_setting)
    store, table = RESULTS / f"{args.results_name}.json", RESULTS / f"{args.results_name}.md"
    results = json.loads(store.read_text()) if store.is_file() else {}
    same_machine(results)
    if args.pipeline_only:
        student = exported(pipeline_student(results["imdb"], min(args.layers), extra))
        results["imdb"][pipeline_key(extra)] = pipeline_versus_int8(WORK / "imdb" / "teacher", student,
                                                                    args.pipeline_repeats)
        remember(results["imdb"], command)
        atomic_write_text(store, json.dumps(results, indent=1))
        atomic_write_text(table, report(results, args.results_name))
        print(report(results, args.results_name))
        return
    for name in [args.only] if args.only else list(SETUPS):
        teacher_dir = teacher(name)
        unlabelled = unlabelled_file(name, teacher_dir)
        entry = results.setdefault(name, {"runs": {}, "machine": machine()})
        entry["teacher"] = json.loads((teacher_dir / "metrics.json").read_text())["eval"]["accuracy"]
        remember(entry, command)
        for layers in args.layers:
            for seed in args.seeds:
                entry["runs"].setdefault(run_key(layers, seed, extra), {}).update(  # other kinds' rows stay
                    student_runs(name, teacher_dir, layers, seed, unlabelled, extra, tuple(args.kinds),
                                 args.retime))
                atomic_write_text(store, json.dumps(results, indent=1))
        if name == "imdb":
            student = exported(pipeline_student(entry, min(args.layers), extra))
            entry[pipeline_key(extra)] = pipeline_versus_int8(teacher_dir, student, args.pipeline_repeats)
        atomic_write_text(store, json.dumps(results, indent=1))
    atomic_write_text(table, report(results, args.results_name))
    print(report(results, args.results_name))


def remember(entry: dict, command: str) -> None:
    """The commands that wrote a dataset's rows, in order, so that the table names what really ran."""
    if command not in entry.setdefault("commands", []):
        entry["commands"].append(command)


def same_machine(results: dict) -> None:
    """Timings, and the runs read back from outputs/bench-distill, belong to the CPU they were made on: a table
    is never continued on another kind."""
    here = machine()
    for name, entry in results.items():
        if entry.get("machine", here) != here:
            raise SystemExit(f"these {name} runs were measured on {entry['machine']}, this is {here}: measure here "
                             "into another table (--results-name distill-fp32-only, say), with outputs/bench-distill "
                             "moved aside if it holds the other machine's runs")


def gap(rows: list[dict], part: str) -> str:
    """A gap to the teacher in points with its paired interval (one seed), or the median and range of the gaps."""
    found = [r[part] for r in rows if r.get(part) and "gap" in r[part]]
    if not found:
        return "-"
    if len(found) == 1:
        lo, hi = found[0]["gap_ci"]
        return f"{100 * found[0]['gap']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    gaps = [100 * f["gap"] for f in found]
    return f"{statistics.median(gaps):+.1f} ({min(gaps):+.1f} to {max(gaps):+.1f})"


def with_gap(row: dict) -> dict:
    """The distillation report's paired gap on the evaluation set, as held_out_gap names it."""
    report = row.get("distillation") or {}
    return {**row, "eval_gap": {"gap": report["difference"], "gap_ci": report["difference_ci"]}
            if "difference" in report else None}


def report(results: dict, results_name: str = "distill") -> str:
    option = f" --results-name {results_name}" if results_name != "distill" else ""
    measured_on = "; ".join(sorted({e["machine"] for e in results.values() if "machine" in e})) or machine()
    commands = [c for entry in results.values() for c in entry.get("commands", [])]
    ran = ("Commands, in the order they wrote this table: " + "; ".join(f"`{c}`" for c in dict.fromkeys(commands))
           if commands else f"Command: `python benchmarks/distill.py{option}`")
    lines = ["# Distillation: students of 2 and 3 layers", "", f"Measured on: {measured_on}.", "",
             f"{ran} (what each row is: its docstring). Accuracy on the "
             "teacher's evaluation set with its 95% interval; agreement is the share of evaluation texts given the "
             "teacher's answer; a gap is the student's accuracy minus the teacher's in points, on the same texts, "
             "with its 95% paired bootstrap interval: on the evaluation set (where both chose their checkpoint) and "
             f"on held-out texts no model chose on (IMDB: {HELD_OUT['imdb']:,} other test reviews); with several "
             "seeds, the median and the range.", "",
             "| data | layers | student | accuracy | teacher | agreement | gap | held-out gap | train s | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        lines += accuracy_rows(name, entry)
    lines += ["", "## Speed: texts/s on the same evaluation texts (tokenizing included), and the weights", "",
              "| data | model | layers | weights MB | torch-fp32 | torch-bf16 | onnxruntime-fp32 | onnxruntime-int8 |",
              "|---|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        lines += speed_rows(name, entry)
        for key, p in entry.items():
            if key.startswith("pipeline_vs_int8"):  # '/max_length=128,truncation=head+tail': that student's
                settings = key.partition("/")[2].replace(", ", " ")
                lines += ["", pipeline_sentence(p, option + (f" --student-setting {settings}" if settings else ""))]
    return "\n".join(lines) + "\n"


def accuracy_rows(name: str, entry: dict) -> list[str]:
    """One row per student size, settings and kind: one seed's accuracy with its interval, or the seeds' median."""
    lines = []
    for layers, setting in dict.fromkeys(split_key(k)[::2] for k in entry["runs"]):
        runs = [v for k, v in entry["runs"].items() if split_key(k)[::2] == (layers, setting)]
        for kind in KINDS:
            rows = [with_gap(r[kind]) for r in runs if kind in r]
            if not rows:
                continue
            acc = [r["accuracy"] for r in rows]
            shown = (f"{acc[0]:.4f} [{rows[0]['ci'][0]:.4f}, {rows[0]['ci'][1]:.4f}]" if len(acc) == 1 else
                     f"{statistics.median(acc):.4f} ({min(acc):.4f}-{max(acc):.4f})")
            agree = [r["distillation"]["agreement"] for r in rows if r["distillation"]]
            lines.append(f"| {name} | {layers} | {kind}{f' ({setting})' if setting else ''} | {shown} | "
                         f"{entry['teacher']:.4f} | "
                         f"{f'{statistics.median(agree):.1%}' if agree else '-'} | {gap(rows, 'eval_gap')} | "
                         f"{gap(rows, 'held_out')} | "
                         f"{statistics.median(r['train_seconds'] for r in rows):.0f} | {len(rows)} |")
    return lines


def speed_rows(name: str, entry: dict) -> list[str]:
    """The teacher and each student size and settings once (the first run that was timed)."""
    lines, seen = [], set()
    for key, runs in entry["runs"].items():
        setting = split_key(key)[2]
        for side in next((row["speed"] for row in runs.values() if "speed" in row), []):
            model = f"{side['name']} ({setting})" if setting and side["name"] == "student" else side["name"]
            if (model, side["layers"]) in seen:
                continue
            seen.add((model, side["layers"]))
            speeds = [side["texts_per_second"].get(b) for b in ("torch-fp32", "torch-bf16", "onnxruntime-fp32",
                                                                 "onnxruntime-int8")]
            lines.append(f"| {name} | {model} | {side['layers']} | {side['weights_mb']} | "
                         + " | ".join(f"{s:,.1f}" if s else "-" for s in speeds) + " |")
    return lines


def pipeline_sentence(p: dict, option: str) -> str:
    """The int8 student against `transformers.pipeline` fp32 with the teacher, on the same reviews."""
    reads = (f" (the teacher reads {p['teacher_reads']}, the student {p['student_reads']})"
             if "student_reads" in p else "")
    rounds = (f"; texts/s: medians of {p['repeats']} rounds, the variants taking turns"
              if p.get("repeats", 1) > 1 else "")
    return (f"IMDB, the same {p['texts']} test reviews at batch 32 (tokenizing included, accuracy against their "
            f"labels{rounds}): `transformers.pipeline` fp32 with the teacher {p['pipeline_teacher_fp32']:.1f} texts/s "
            f"(accuracy {p['pipeline_teacher_fp32_accuracy']:.4f}), the same with the texts sorted by length "
            f"{p['pipeline_sorted_teacher_fp32']:.1f} texts/s; the student's int8 graph "
            f"({p.get('student', 'l2-s42-distilled').rsplit('/', 1)[-1]}) {p['int8_student']:.1f} texts/s "
            f"(accuracy {p['int8_student_accuracy']:.4f}): **{p['ratio']:.2f}x** the pipeline as given, "
            f"{p['ratio_sorted']:.2f}x sorted{reads}.{auto_sentence(p)} The student's int8 graph: "
            f"{'fused' if p.get('fused') else 'as traced'} (results/onnx_fusion.md); this figure alone: "
            f"`python benchmarks/distill.py --pipeline-only{option}`.")


def auto_sentence(p: dict) -> str:
    if "auto_student" not in p:
        return ""  # the int8 graph is what textfit serves here
    return (f" The backend textfit picks for the student on this CPU, {p['auto_backend']}: "
            f"{p['auto_student']:.1f} texts/s (accuracy {p['auto_student_accuracy']:.4f}), "
            f"**{p['ratio_auto']:.2f}x** the pipeline as given.")


if __name__ == "__main__":
    main()
