"""Run a recipe that outlasts a session (the full-IMDB card's run) in segments, and keep its log.

    python benchmarks/long_run.py run imdb-distilbert-full      # starts it, or continues it with --resume
    python benchmarks/long_run.py pause imdb-distilbert-full    # SIGSTOP while something else is measured
    python benchmarks/long_run.py cont imdb-distilbert-full     # SIGCONT
    python benchmarks/long_run.py status imdb-distilbert-full   # segments, pauses, steps, peak memory
    python benchmarks/long_run.py report imdb-distilbert-full   # results/imdb-distilbert-full.md and .json
    python benchmarks/long_run.py report imdb-distilbert-full --repo ../fullimdb   # a run in another clone
    python benchmarks/long_run.py run imdb-distilbert-full -- --learning-rate 2e-5 --no-windows
                                 # the recipe with other settings: flags after -- go to `textfit train`
    python benchmarks/long_run.py report imdb-distilbert-full --results-name imdb-distilbert-full-lr2e-5
                                 # the report under another name (results/NAME.md), to keep an earlier run's
    python benchmarks/long_run.py report imdb-distilbert-full --results-name NAME -- --learning-rate 2e-5
                                 # a run made before its recipe changed: the flags that repeat it with today's

Each segment is one `textfit train --recipe NAME` process (with `--resume` when a checkpoint is there) under
`/usr/bin/time -v`, so its peak RSS is measured by the kernel's accounting, not by the run itself; a sampler
logs the RSS as it grows too, for segments killed before /usr/bin/time can report. The log,
OUTPUT_DIR.log.jsonl beside the output folder, records every start, end (exit code, peak RSS, the step reached)
and pause, so the results can say how many interruptions the run took and how long it computed in all. What
each segment prints goes to OUTPUT_DIR.segment-K.out as well: the steps between the last checkpoint and a kill are
computed twice, and the report compares what the two segments logged for them (the resume, checked at full scale).
Start it from a separate clone, so that pulls cannot change its code mid-run. Its checkpoints live in that clone,
not in git: a session on a new machine finds neither, and the run starts over (as it did on 2026-11-30, at step
4,800 of 7,815), so keep each epoch's report committed as it lands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RUN_REPO = REPO  # the checkout the run lives in (--repo: a separate clone, so pulls cannot change its code)


def output_dir(recipe: str) -> Path:
    config = yaml.safe_load((RUN_REPO / "textfit" / "recipes" / f"{recipe}.yaml").read_text())
    return RUN_REPO / config["output_dir"]


def log_path(recipe: str) -> Path:
    return output_dir(recipe).with_suffix(".log.jsonl")


def append(recipe: str, event: dict) -> None:
    path = log_path(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps({"time": time.time(), **event}) + "\n")


def events(recipe: str) -> list[dict]:
    path = log_path(recipe)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def checkpoint_step(out: Path) -> int | None:
    state = out / "checkpoints" / "last" / "trainer_state.json"
    return json.loads(state.read_text())["global_step"] if state.is_file() else None


def run(recipe: str, flags: list[str]) -> int:
    out = output_dir(recipe)
    resume = checkpoint_step(out) is not None
    cmd = [sys.executable, "-m", "textfit", "train", "--recipe", recipe, "--output-dir", str(out), *flags]
    cmd += ["--resume"] if resume else ["--overwrite"]
    timing = out.with_suffix(".time.txt")
    timing.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(RUN_REPO)}
    segment = 1 + segments_started(recipe)
    process = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(timing), *cmd], cwd=RUN_REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=RUN_REPO, capture_output=True,
                            text=True).stdout.strip()
    append(recipe, {"event": "start", "resume": resume, "from_step": checkpoint_step(out), "pid": process.pid,
                    "command": " ".join(cmd), "flags": flags, "commit": commit, "machine": machine()})
    threading.Thread(target=watch_memory, args=(recipe, process), daemon=True).start()
    with segment_output(recipe, segment).open("a") as kept:
        for line in process.stdout:  # shown, and kept: a kill can come at any line
            sys.stdout.write(line)
            kept.write(line)
            kept.flush()
    code = process.wait()
    text = timing.read_text() if timing.is_file() else ""
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    append(recipe, {"event": "end", "exit_code": code, "step": checkpoint_step(out), "finished": finished(recipe),
                    "peak_rss_mb": round(int(peak.group(1)) / 1024) if peak else None})
    return code


def segments_started(recipe: str) -> int:
    return sum(e["event"] == "start" for e in events(recipe))


def segment_output(recipe: str, segment: int) -> Path:
    """What segment K printed (kept from segment 3 of the full-IMDB run on; its first two printed to a terminal)."""
    return output_dir(recipe).with_suffix(f".segment-{segment}.out")


LOGGED = (re.compile(r"^step (\d+): train loss (\S+),"),  # the training loss over the last logging window
          re.compile(r"^eval @ step (\d+) .*? loss (\S+) +accuracy (\S+)"))


def redone_steps(recipe: str) -> dict:
    """Steps that two segments both logged: those after the last checkpoint before a kill, computed again after
    the resume. An exact resume logs the same values for them; each differing step is listed."""
    logged: dict[tuple[str, int], list[tuple[str, ...]]] = {}
    for k in range(1, 1 + segments_started(recipe)):
        path = segment_output(recipe, k)
        for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
            for kind, pattern in zip(("train", "eval"), LOGGED, strict=True):
                if match := pattern.match(line.strip()):
                    logged.setdefault((kind, int(match.group(1))), []).append(match.groups()[1:])
    twice = {key: values for key, values in logged.items() if len(values) > 1}
    differ = sorted(f"{kind} @ {step}" for (kind, step), values in twice.items() if len(set(values)) > 1)
    return {"logged_twice": len(twice), "differ": differ, "steps": sorted({step for _, step in twice}),
            "values": {f"{kind} @ {step}": values for (kind, step), values in sorted(twice.items())}}


def watch_memory(recipe: str, process: subprocess.Popen, every: float = 20.0) -> None:
    """Log the training tree's peak memory as it grows: a segment killed with the session never reaches the
    `end` event that /usr/bin/time's figure would go into. The sum is of PSS, not RSS: the baseline's forked
    child shares its parent's pages, and a sum of RSS would count them twice."""
    peak, saved = 0, checkpoint_step(output_dir(recipe))
    while process.poll() is None:
        try:
            rss = sum(p.memory_full_info().pss for p in psutil.Process(process.pid).children(recursive=True))
        except psutil.Error:
            rss = 0
        if rss > peak * 1.01:
            peak = rss
            append(recipe, {"event": "rss", "peak_rss_mb": round(peak / 2**20)})
        step = checkpoint_step(output_dir(recipe))
        if step != saved:  # a kill loses the steps after the last of these
            saved = step
            append(recipe, {"event": "checkpoint", "step": step})
        time.sleep(every)


def signal_run(recipe: str, sig: signal.Signals, name: str) -> int:
    starts = [e for e in events(recipe) if e["event"] == "start"]
    if not starts:
        raise SystemExit(f"{recipe}: no run started")
    # the training process is the child of /usr/bin/time; its own children (the baseline's job) pause with it
    top = psutil.Process(starts[-1]["pid"])
    for process in [top, *top.children(recursive=True)]:
        os.kill(process.pid, sig)
    append(recipe, {"event": name})
    return 0


def status(recipe: str) -> int:
    print(json.dumps(summary(recipe), indent=1))
    return 0


def summary(recipe: str) -> dict:
    """The log in figures: segments, resumes, seconds computing and paused, peak RSS, checkpoint step, commits."""
    log = events(recipe)
    starts = [i for i, e in enumerate(log) if e["event"] == "start"]
    segments = [segment_seconds(log[i:j], running=j == len(log) and not finished(recipe))
                for i, j in zip(starts, [*starts[1:], len(log)], strict=True)]
    peaks = [e["peak_rss_mb"] for e in log if e.get("peak_rss_mb")]
    return {"segments": len(starts), "resumes": sum(bool(log[i].get("resume")) for i in starts),
            "resumed_from_steps": [log[i]["from_step"] for i in starts if log[i].get("resume")],
            "commits": [log[i].get("commit", "")[:7] or "not logged" for i in starts],
            # a session may land on another CPU kind: the wall time is then a sum over CPUs, and says so
            "machines": [log[i].get("machine", "not logged") for i in starts],
            "seconds_computing": round(sum(c for c, _ in segments)),
            "seconds_paused": round(sum(p for _, p in segments)), "peak_rss_mb": max(peaks, default=None),
            "checkpoint_step": checkpoint_step(output_dir(recipe)), "finished": finished(recipe),
            "flags": log[starts[-1]].get("flags", []) if starts else [], "redone": redone_steps(recipe)}


def segment_seconds(log: list[dict], running: bool) -> tuple[float, float]:
    """(seconds computing, seconds paused) of one segment's events, from its start to its end event; a segment
    killed with its session ends at its last event (or at the pause it was killed in)."""
    paused, pause_start, end = 0.0, None, log[-1]["time"]
    for e in log:
        if e["event"] == "pause":
            pause_start = e["time"]
        elif e["event"] == "cont" and pause_start is not None:
            paused, pause_start = paused + e["time"] - pause_start, None
        elif e["event"] == "end":
            end = e["time"]
    if running:
        end = time.time()
    if pause_start is not None:  # still paused, or killed while paused
        paused += end - pause_start if running else 0.0
        end = end if running else pause_start
    return end - log[0]["time"] - paused, paused


def finished(recipe: str) -> bool:
    return (output_dir(recipe) / "metrics.json").is_file()


def report(recipe: str, name: str, flags: list[str]) -> int:
    """Every evaluation of the run (test accuracy with its interval), the kept checkpoint, and the log's figures,
    in benchmarks/results/NAME.md and .json (the run so far, until it has finished)."""
    out, facts = output_dir(recipe), summary(recipe)
    facts["flags"] = flags or facts["flags"]  # what repeats the run with the recipe as it is now
    done = facts["finished"]
    state = json.loads(((out / "history.json") if done else (out / "checkpoints" / "last" / "trainer_state.json"))
                       .read_text())
    results = REPO / "benchmarks" / "results"
    written = json.loads((out / "metrics.json").read_text()) if done else {}
    metrics = written["eval"] if done else state.get("best_metrics")
    data = {"recipe": recipe, "log": facts, "history": state["history"], "best": state["best"],
            "examples": metrics["num_examples"], "metrics": metrics if done else None,
            "baseline": written.get("baseline"), "card": (out / "README.md").read_text() if done else None}
    text = report_text(recipe, data, name)
    atomic_write_text(results / f"{name}.json", json.dumps(data, indent=1) + "\n")
    atomic_write_text(results / f"{name}.md", text)
    print(text)
    return 0


def machine() -> str:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import machine as described

    return described()


def cpus(facts: dict) -> str:
    """'the same for all' when every segment logged one CPU, else each segment's."""
    known = facts.get("machines", [])
    if known and len(set(known)) == 1 and known[0] != "not logged":
        return f"the same for all ({known[0]})"
    return "; ".join(known) or "not logged"


def report_text(recipe: str, data: dict, name: str) -> str:

    facts, rows, best = data["log"], data["history"], data["best"]
    state = "finished" if facts["finished"] else f"not finished: checkpoint at step {facts['checkpoint_step']:,}"
    where = "" if RUN_REPO == REPO else f" --repo {os.path.relpath(RUN_REPO, REPO)}"
    flags = f" -- {' '.join(facts['flags'])}" if facts.get("flags") else ""
    named = "" if name == recipe else f" --results-name {name}"
    measured_on = "; ".join(dict.fromkeys(m for m in facts.get("machines", []) if m != "not logged")) or machine()
    lines = [f"# `{recipe}` to the end", "", f"Measured on: {measured_on}.", "",
             f"Command: `python benchmarks/long_run.py run {recipe}{where}{flags}`, run again after each interruption "
             f"(it resumes from checkpoints/last), then `python benchmarks/long_run.py report {recipe}{where}{named}`. "
             f"State: {state}.", "",
             f"Every evaluation is on all {data['examples']:,} test reviews.", "",
             "| epoch | step | train loss | test loss | test accuracy [95% CI] | F1 | training s so far |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:  # the interval: normal approximation over all the test reviews
        half = 1.96 * math.sqrt(r["accuracy"] * (1 - r["accuracy"]) / data["examples"])
        shown = f"{r['accuracy']:.4f} [{r['accuracy'] - half:.4f}, {r['accuracy'] + half:.4f}]"
        lines.append(f"| {r['epoch']:g} | {r['step']:,} | {r['train_loss']:.4f} | {r['loss']:.4f} | {shown} | "
                     f"{r['f1']:.4f} | {r['train_time']:,.0f} |")
    lines += ["", kept_sentence(best),
              "", f"The run: {facts['segments']} segment(s), {facts['resumes']} resume(s) (from steps "
              f"{', '.join(f'{s:,}' for s in facts['resumed_from_steps']) or '-'}); "
              f"{facts['seconds_computing'] / 3600:.2f} h computing, {facts['seconds_paused'] / 3600:.2f} h paused "
              f"while other work was measured; peak RSS {facts['peak_rss_mb'] or '-'} MB; code of each segment: "
              f"{', '.join(facts['commits'])}; CPU of each segment: {cpus(facts)}. A segment ends with its "
              "session; a kill loses the steps after the last checkpoint (at most save_steps, or an epoch before "
              "save_steps existed), which the next segment redoes. The history's training seconds include pauses "
              "that fell inside a step.", "", redone_sentence(facts.get("redone"))]
    if facts["finished"]:
        lines += ["", as_one_run(rows, facts)]
    if data.get("baseline"):
        lines += ["", baseline_sentence(data["baseline"])]
    return "\n".join(lines) + "\n"


def redone_sentence(redone: dict | None) -> str:
    """The resume at full scale: what two segments both logged for the steps that a kill made them compute twice."""
    if not redone or not redone["logged_twice"]:
        return ("Steps computed twice (after a kill, from the last checkpoint) and logged by both segments: none "
                "yet; each segment's output is kept as OUTPUT_DIR.segment-K.out from segment 3 on.")
    same = redone["logged_twice"] - len(redone["differ"])
    steps = ", ".join(f"{s:,}" for s in redone["steps"])
    return (f"Steps computed twice, before a kill and again after the resume, and logged by both segments (steps "
            f"{steps}): {same} of {redone['logged_twice']} logged values are the same to the printed digits"
            + (f"; differing: {', '.join(redone['differ'])}." if redone["differ"] else ", as one run would log them.")
            + " Each segment's output is OUTPUT_DIR.segment-K.out in the run's clone; the values are in the JSON.")


def kept_sentence(best: dict) -> str:
    """Which evaluation the run kept, and whether the set it is scored on chose it."""
    where = f"Kept: step {best['step']:,} (epoch {best['epoch']:g}), "
    if best.get("rule") == "last":
        return where + "the last evaluation (the run trained to the end of its schedule): chosen on nothing."
    lowest = "lowest" if best["metric"] == "loss" else "highest"
    return (where + f"the {lowest} test {best['metric']}; it was chosen on the set it is scored on, as the card's run "
            "was. The last epoch's row is chosen on nothing.")


def baseline_sentence(baseline: dict) -> str:
    """The run's own TF-IDF baseline against the kept model, with the paired interval, as its card says it."""
    from textfit.baseline import BaselineComparison

    fields = {k: v for k, v in baseline.items() if k != "model_is_better"}
    return BaselineComparison(**fields | {"interval": tuple(fields["interval"])}).sentence()


def as_one_run(rows: list[dict], facts: dict) -> str:
    """Did the run in segments end as one run would? What the history can show, and what it cannot."""
    every = rows[0]["step"]
    on_plan = all(r["step"] == every * (i + 1) and r["epoch"] == i + 1 for i, r in enumerate(rows))
    return (f"As one run: the {len(rows)} evaluations fell {'at' if on_plan else 'NOT at'} the planned steps (every "
            f"{every:,}, the last at {rows[-1]['step']:,}) across {facts['resumes']} resumes; each resume restores the "
            "weights, optimizer, schedule, random state and the data order at its step, which "
            "tests/training/test_resume.py checks against an uninterrupted run (every evaluation equal, weights to "
            "1e-6). An uninterrupted run of this length, to compare with at full scale, was not made.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "pause", "cont", "status", "report"))
    parser.add_argument("recipe")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="the checkout the run lives in (default: this one); the report goes to this one's "
                             "benchmarks/results")
    parser.add_argument("--results-name", help="report: results/NAME.md and .json (default: the recipe's name)")
    argv = sys.argv[1:]
    # after --: settings for `textfit train` that differ from the recipe (give the same ones to every segment)
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    global RUN_REPO
    RUN_REPO = args.repo.resolve()
    if args.action == "run":
        return run(args.recipe, flags)
    if args.action == "pause":
        return signal_run(args.recipe, signal.SIGSTOP, "pause")
    if args.action == "cont":
        return signal_run(args.recipe, signal.SIGCONT, "cont")
    if args.action == "report":
        return report(args.recipe, args.results_name or args.recipe, flags)
    return status(args.recipe)


if __name__ == "__main__":
    raise SystemExit(main())
