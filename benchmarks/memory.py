"""Memory of a long training run: where the full-IMDB run's 5.6 GB peak came from, and what is left of it.

    python benchmarks/memory.py --part tokenize     # full IMDB's token ids, before and now (~3 min)
    python benchmarks/memory.py --part train        # 300 steps of the full-IMDB recipe, per variant (~12 min each)

tokenize: in a fresh process each, the token ids that the full-IMDB recipe makes (25,000 train reviews at 256
tokens, 25,000 test reviews read whole as windows), made the way textfit made them up to 58b2cfe (one tokenizer
call over all the texts, ids kept as lists of Python ints) and the way it makes them now (`encode`,
`encode_windows`: CHUNK texts per call, one int32 array per text). Reports the process's RSS once they are made,
and its peak.

train: `textfit train --recipe imdb-distilbert-full --eval-strategy no --baseline none` (checkpoints every 100
steps, as the recipe writes them), its RSS sampled every second and the process killed once it logs step N (the
final evaluation would take longer than the steps), for each variant: the code now under
glibc's default malloc; the same with fixed malloc thresholds (GLIBC_TUNABLES: glibc stops raising its mmap
threshold after large frees, so large tensors are given back to the system when freed); the same with
malloc_trim(0) every 10 s (free pages inside the heap given back); and, with --before COMMIT,
the code of that commit (a worktree of it). Reports the RSS at the first step logged, at the last, the growth per
100 steps between them, the peak, and the seconds. The baseline is off: its forked child would add its own memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from textfit.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import machine

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "imdb"
RESULTS = REPO / "benchmarks" / "results"
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
FIXED_MALLOC = "glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=16777216"  # 1 MB, 16 MB
# the same command with glibc's malloc_trim(0) called every 10 s from a thread: the free pages inside the heap go
# back to the system, the thresholds stay as they are
TRIMMED = """
import ctypes, runpy, sys, threading, time
libc = ctypes.CDLL("libc.so.6")
def trim():
    while True:
        time.sleep(10)
        libc.malloc_trim(0)
threading.Thread(target=trim, daemon=True).start()
sys.argv = ["textfit"] + sys.argv[1:]
runpy.run_module("textfit", run_name="__main__")
"""

TOKENIZE = """
import gzip, json, resource, sys
mode, data = sys.argv[1], sys.argv[2]
from transformers import AutoTokenizer
from textfit.models import resolve_model
from textfit.batching import encode, encode_windows
tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path)
train, test = ([json.loads(line)["text"] for line in gzip.open(f"{data}/{split}.jsonl.gz", "rt")]
               for split in ("train", "test"))
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
start = rss()
if mode == "before":  # as batching.encode/encode_windows were: one call, lists of Python ints
    kept = tok(train, truncation=True, max_length=256, padding=False)["input_ids"]
    content = tok(test, add_special_tokens=False, truncation=False)["input_ids"]
    cls, sep = [tok.cls_token_id], [tok.sep_token_id]
    windows = [cls + ids[s:s + 254] + sep for ids in content for s in range(0, max(1, len(ids) - 127), 127)]
    del content
else:
    kept = encode(tok, train, max_length=256).input_ids
    windows = encode_windows(tok, test, max_length=256)[0].input_ids
tokens = sum(len(ids) for ids in kept) + sum(len(ids) for ids in windows)
print(json.dumps({"texts_mb": round(start), "after_mb": round(rss()), "peak_mb":
                  round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "tokens": tokens}))
"""


def tokenize_part() -> list[dict]:
    rows = []
    for mode in ("before", "now"):
        out = subprocess.run([sys.executable, "-c", TOKENIZE, mode, str(DATA)], env=ENV, cwd=REPO,
                             capture_output=True, text=True, check=True)
        row = {"part": "tokenize", "variant": mode, **json.loads(out.stdout.strip().splitlines()[-1])}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if rows[0]["tokens"] != rows[1]["tokens"]:  # the two ways must make the same ids, or the comparison is void
        raise SystemExit(f"before and now made different token counts: {rows[0]['tokens']} != {rows[1]['tokens']}")
    return rows


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every second, beside the last 'step N:' line it has printed."""

    def __init__(self, process: subprocess.Popen):
        super().__init__(daemon=True)
        self.process, self.step, self.samples = process, 0, []

    def run(self) -> None:
        while self.process.poll() is None:
            try:
                status = Path(f"/proc/{self.process.pid}/status").read_text()
            except OSError:
                break
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
            self.samples.append((time.time(), self.step, rss))
            time.sleep(1)

    def read_steps(self, stop_at: int | None = None) -> None:
        """Follow the process's output; kill it once it logs step `stop_at` (what comes after is not training)."""
        for line in self.process.stdout:
            match = re.match(r"step (\d+):", line)
            if match:
                self.step = int(match.group(1))
                time.sleep(1.5)  # a last sample at this step
                if stop_at is not None and self.step >= stop_at:
                    self.process.kill()


def train_run(variant: str, repo: Path, env: dict, steps: int, trimmed: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, *(["-c", TRIMMED] if trimmed else ["-m", "textfit"]), "train", "--recipe",
               "imdb-distilbert-full", "--dataset", str(DATA), "--max-steps", str(steps + 50), "--eval-strategy",
               "no", "--baseline", "none", "--output-dir", f"{tmp}/out"]
        start = time.time()
        samples, code = sampled(cmd, env | {"PYTHONPATH": str(repo)}, repo, stop_at=steps)
    return summary(variant, samples, time.time() - start, code)


def sampled(cmd: list[str], env: dict, cwd: Path,
            stop_at: int | None = None) -> tuple[list[tuple[float, int, float]], int]:
    """Run `cmd` with its RSS sampled every second, to its end or to step `stop_at` (the final evaluation of 25,000
    reviews would take longer than the steps): (time, step logged last, MB) rows, and the exit code."""
    process = subprocess.Popen(cmd, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = RssSampler(process)
    sampler.start()
    sampler.read_steps(stop_at)
    process.wait()
    sampler.join()
    return sampler.samples, process.returncode


def summary(variant: str, samples: list[tuple[float, int, float]], seconds: float, code: int) -> dict:
    logged = [(step, rss) for _, step, rss in samples if step > 0]
    first, last = (logged[0], logged[-1]) if logged else ((0, 0.0), (0, 0.0))
    growth = (last[1] - first[1]) / (last[0] - first[0]) * 100 if last[0] > first[0] else None
    return {"part": "train", "variant": variant, "exit_code": code, "seconds": round(seconds),
            "first_step": first[0], "rss_at_first_mb": round(first[1]), "last_step": last[0],
            "rss_at_last_mb": round(last[1]), "growth_per_100_steps_mb": None if growth is None else round(growth),
            "peak_mb": round(max(rss for _, _, rss in samples)) if samples else None}


def train_part(steps: int, before: str | None) -> list[dict]:
    variants = [("now, glibc malloc defaults", REPO, ENV, False),
                (f"now, GLIBC_TUNABLES={FIXED_MALLOC}", REPO, ENV | {"GLIBC_TUNABLES": FIXED_MALLOC}, False),
                ("now, malloc_trim(0) every 10 s", REPO, ENV, True)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if before:
            subprocess.run(["git", "worktree", "add", "--detach", f"{tmp}/before", before], cwd=REPO, check=True,
                           capture_output=True)
            variants.insert(0, (f"code of {before}, glibc malloc defaults", Path(tmp) / "before", ENV, False))
        try:
            for variant, repo, env, trimmed in variants:
                rows.append(train_run(variant, repo, env, steps, trimmed))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            if before:
                subprocess.run(["git", "worktree", "remove", "--force", f"{tmp}/before"], cwd=REPO)
    return rows


def report(rows: list[dict]) -> str:
    machines = "; ".join(dict.fromkeys(r["machine"] for r in rows))
    lines = ["# Memory of a long training run", "", f"Measured on: {machines}.", ""]
    tokenize = [r for r in rows if r["part"] == "tokenize"]
    if tokenize:
        lines += ["Full IMDB's token ids (25,000 train reviews at 256 tokens, 25,000 test reviews as windows), in a "
                  "fresh process each: `python benchmarks/memory.py --part tokenize`.", "",
                  "| made | tokens | RSS with the texts (MB) | RSS with the ids (MB) | peak (MB) |",
                  "|---|---|---|---|---|"]
        made = {"before": "one tokenizer call, lists of Python ints (textfit up to 58b2cfe)",
                "now": "1,000 texts per call, an int32 array per text (now)"}
        lines += [f"| {made[r['variant']]} | {r['tokens']:,} | {r['texts_mb']:,} | {r['after_mb']:,} | "
                  f"{r['peak_mb']:,} |" for r in tokenize]
    train = [r for r in rows if r["part"] == "train"]
    if train:
        lines += ["", "The full-IMDB recipe's first steps, no evaluation, no baseline: `python benchmarks/memory.py "
                  "--part train` (the RSS every second).", "",
                  "| variant | steps | RSS at first logged step (MB) | RSS at last (MB) | growth per 100 steps (MB) "
                  "| peak (MB) | seconds |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['first_step']}-{r['last_step']} | {r['rss_at_first_mb']:,} | "
                  f"{r['rss_at_last_mb']:,} | {r['growth_per_100_steps_mb']} | {r['peak_mb']:,} | {r['seconds']} |"
                  for r in train]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("tokenize", "train"), nargs="+", default=["tokenize", "train"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--before", help="a commit whose code is measured as well (train part)")
    args = parser.parse_args()
    store = RESULTS / "memory.json"
    rows = [r for r in (json.loads(store.read_text()) if store.is_file() else []) if r["part"] not in args.part]
    here = machine()
    if "tokenize" in args.part:
        rows += [r | {"machine": here} for r in tokenize_part()]
    if "train" in args.part:
        rows += [r | {"machine": here} for r in train_part(args.steps, args.before)]
    atomic_write_text(store, json.dumps(rows, indent=1))
    atomic_write_text(RESULTS / "memory.md", report(rows))


if __name__ == "__main__":
    main()
