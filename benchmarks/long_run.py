"""Run a recipe that outlasts a session (the full-IMDB card's run) in segments, and keep its log.

    python benchmarks/long_run.py run imdb-distilbert-full      # starts it, or continues it with --resume
    python benchmarks/long_run.py pause imdb-distilbert-full    # SIGSTOP while something else is measured
    python benchmarks/long_run.py cont imdb-distilbert-full     # SIGCONT
    python benchmarks/long_run.py status imdb-distilbert-full   # segments, pauses, steps, peak memory

Each segment is one `textfit train --recipe NAME` process (with `--resume` when a checkpoint is there) under
`/usr/bin/time -v`, so its peak RSS is measured by the kernel's accounting, not by the run itself; a sampler
logs the RSS as it grows too, for segments killed before /usr/bin/time can report. The log,
OUTPUT_DIR.log.jsonl beside the output folder, records every start, end (exit code, peak RSS, the step reached)
and pause, so the results can say how many interruptions the run took and how long it computed in all.
Start it from a separate clone, so that pulls cannot change its code mid-run.
"""

from __future__ import annotations

import argparse
import json
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

REPO = Path(__file__).resolve().parents[1]


def output_dir(recipe: str) -> Path:
    config = yaml.safe_load((REPO / "textfit" / "recipes" / f"{recipe}.yaml").read_text())
    return REPO / config["output_dir"]


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


def run(recipe: str) -> int:
    out = output_dir(recipe)
    resume = checkpoint_step(out) is not None
    cmd = [sys.executable, "-m", "textfit", "train", "--recipe", recipe, "--output-dir", str(out)]
    cmd += ["--resume"] if resume else ["--overwrite"]
    timing = out.with_suffix(".time.txt")
    timing.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(timing), *cmd], cwd=REPO, env=env)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    append(recipe, {"event": "start", "resume": resume, "from_step": checkpoint_step(out), "pid": process.pid,
                    "command": " ".join(cmd), "commit": commit})
    threading.Thread(target=watch_memory, args=(recipe, process), daemon=True).start()
    code = process.wait()
    text = timing.read_text() if timing.is_file() else ""
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    append(recipe, {"event": "end", "exit_code": code, "step": checkpoint_step(out),
                    "finished": (out / "metrics.json").is_file(),
                    "peak_rss_mb": round(int(peak.group(1)) / 1024) if peak else None})
    return code


def watch_memory(recipe: str, process: subprocess.Popen, every: float = 20.0) -> None:
    """Log the training process's peak RSS as it grows: a segment killed with the session never reaches the
    `end` event that /usr/bin/time's figure would go into."""
    peak = 0
    while process.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in psutil.Process(process.pid).children(recursive=True))
        except psutil.Error:
            rss = 0
        if rss > peak * 1.01:
            peak = rss
            append(recipe, {"event": "rss", "peak_rss_mb": round(peak / 2**20)})
        time.sleep(every)


def signal_run(recipe: str, sig: signal.Signals, name: str) -> int:
    starts = [e for e in events(recipe) if e["event"] == "start"]
    if not starts:
        raise SystemExit(f"{recipe}: no run started")
    # the training process is the child of /usr/bin/time
    children = subprocess.run(["pgrep", "-P", str(starts[-1]["pid"])], capture_output=True, text=True).stdout.split()
    for pid in [starts[-1]["pid"], *map(int, children)]:
        os.kill(int(pid), sig)
    append(recipe, {"event": name})
    return 0


def status(recipe: str) -> int:
    log = events(recipe)
    paused, computed, since, pause_start = 0.0, 0.0, None, None
    for e in log:
        if e["event"] == "start":
            since = e["time"]
        elif e["event"] == "end" and since is not None:
            computed += e["time"] - since
            since = None
        elif e["event"] == "pause":
            pause_start = e["time"]
        elif e["event"] == "cont" and pause_start is not None:
            paused += e["time"] - pause_start
            pause_start = None
    if since is not None:
        computed += time.time() - since
    segments = sum(e["event"] == "start" for e in log)
    peaks = [e["peak_rss_mb"] for e in log if e.get("peak_rss_mb")]
    print(json.dumps({"segments": segments, "resumes": sum(bool(e.get("resume")) for e in log),
                      "wall_seconds_running": round(computed), "seconds_paused": round(paused),
                      "seconds_computing": round(computed - paused), "peak_rss_mb": max(peaks, default=None),
                      "checkpoint_step": checkpoint_step(output_dir(recipe)),
                      "finished": (output_dir(recipe) / "metrics.json").is_file()}, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "pause", "cont", "status"))
    parser.add_argument("recipe")
    args = parser.parse_args()
    if args.action == "run":
        return run(args.recipe)
    if args.action == "pause":
        return signal_run(args.recipe, signal.SIGSTOP, "pause")
    if args.action == "cont":
        return signal_run(args.recipe, signal.SIGCONT, "cont")
    return status(args.recipe)


if __name__ == "__main__":
    raise SystemExit(main())
