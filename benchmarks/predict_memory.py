"""Peak memory of `textfit predict` on a very large file, killed halfway and continued.

    python benchmarks/predict_memory.py                       # 1,000,000 lines (SST-2 train sentences repeated)
    python benchmarks/predict_memory.py --lines 20000         # a quick look

Writes a JSON Lines file of real texts repeated to --lines, starts `textfit predict` on it (the folder's default
backend), SIGKILLs it when half of the rows are written, starts the same command again, and reports the peak
resident memory (VmHWM) of each process, the rows each one predicted, and the overall throughput. Uses the
model folder of benchmarks/predict_speed.py (trained and exported there when missing).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textfit.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
from predict_speed import DATA, REPO, RESULTS, ensure_model
from train_speed import machine


def write_input(path: Path, lines: int) -> None:
    with gzip.open(DATA / "sst2" / "train.jsonl.gz", "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            out.write(json.dumps({"id": i, "text": texts[i % len(texts)]}) + "\n")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(command: list[str], partial: Path, kill_at: int | None) -> tuple[float, float, bool]:
    """(peak RSS in MB, seconds, killed) of one `textfit predict` process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=os.environ | {"HF_HUB_OFFLINE": "1"}, stderr=subprocess.DEVNULL)
    peak, killed = 0.0, False
    while process.poll() is None:
        peak = max(peak, peak_rss_mb(process.pid) or 0.0)
        if kill_at and partial.is_file() and partial.stat().st_size and _lines(partial) >= kill_at:
            peak = max(peak, peak_rss_mb(process.pid) or 0.0)
            process.send_signal(signal.SIGKILL)
            killed = True
            process.wait()
            break
        time.sleep(0.5)
    if not killed and process.returncode:
        sys.exit(f"textfit predict failed with status {process.returncode}")
    return peak, time.perf_counter() - start, killed


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--model-dir", default=str(REPO / "outputs" / "bench-predict"))
    parser.add_argument("--workdir", default=None, help="where the big input goes (default: a temporary folder)")
    args = parser.parse_args()
    model_dir = Path(args.model_dir)
    ensure_model(model_dir)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="textfit-predict-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    source, out = work / "big.jsonl", work / "preds.jsonl"
    partial = out.with_name(out.name + ".partial")
    for stale in (out, partial, out.with_name(out.name + ".partial.json")):
        stale.unlink(missing_ok=True)
    print(f"writing {args.lines:,} lines to {source} ...", flush=True)
    write_input(source, args.lines)
    command = [sys.executable, "-m", "textfit", "predict", str(model_dir), "--input", str(source),
               "--output", str(out), "--no-progress"]
    first_peak, first_seconds, killed = run(command, partial, kill_at=args.lines // 2)
    done_at_kill = _lines(partial) if partial.is_file() else 0
    second_peak, second_seconds, _ = run(command, partial, kill_at=None)
    written = _lines(out)
    from textfit.backends import pick_backend

    backend, precision = pick_backend(model_dir)
    backend = f"torch-{precision}" if backend == "torch" else f"onnxruntime-{'int8' if backend == 'int8' else 'fp32'}"
    table = "\n".join([
        "# Prediction of a very large file: peak memory, kill and continue",
        "",
        f"Machine: {machine()}. Model: the predict_speed.py folder, backend {backend} "
        f"(the folder's default). Input: {args.lines:,} lines of SST-2 train sentences, repeated.",
        "",
        "| run | rows predicted | seconds | texts/s | peak RSS (MB) |",
        "|---|---|---|---|---|",
        f"| first, SIGKILLed halfway{'' if killed else ' (finished before the kill)'} | {done_at_kill:,} | "
        f"{first_seconds:.0f} | {done_at_kill / first_seconds:,.0f} | {first_peak:,.0f} |",
        f"| second, continued | {written - done_at_kill:,} | {second_seconds:.0f} | "
        f"{(written - done_at_kill) / second_seconds:,.0f} | {second_peak:,.0f} |",
        "",
        f"Output rows: {written:,} of {args.lines:,} ({'complete' if written == args.lines else 'INCOMPLETE'}).",
        f"Command: python benchmarks/predict_memory.py --lines {args.lines}",
    ]) + "\n"
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "predict_memory.md", table)
    source.unlink()


if __name__ == "__main__":
    main()
