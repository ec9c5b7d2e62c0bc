"""Prediction speed on this machine: `transformers.pipeline` against textfit's backends, and the HTTP service.

    make bench-predict                                    # = python benchmarks/predict_speed.py
    python benchmarks/predict_speed.py --texts 200 --repeats 1 --load-seconds 3   # a quick look

The model is the default all-MiniLM-L6-v2 fine-tuned by `textfit train --recipe demo` (trained first when
--model-dir does not exist yet), exported with `textfit export --quantize int8`. Each dataset gives the same
texts to every variant: a seeded sample of IMDB test reviews (long; truncated at the model's 256 tokens) and of
SST-2 validation sentences (short). Variants run interleaved over the repetitions; the table shows medians.

(1) pipeline: transformers.pipeline("text-classification", batch_size=32, truncation=True), fp32, texts in the
    order given (its defaults).
(1b) pipeline-sorted: the same pipeline given its best honest use: texts sorted by token count first (the
    tokenizing for it is timed too) and the answers put back in order.
(2) textfit torch-fp32 / torch-bf16 / onnxruntime-fp32 / onnxruntime-int8: batches of 32 sorted by length.

Then a load run of `textfit serve` (its default backend for the folder) on loopback: single short texts from
concurrent clients, bounded in requests and seconds per level.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from train_speed import machine  # the CPU, its bf16 kind, torch and threads

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
BACKENDS = ("torch-fp32", "torch-bf16", "onnxruntime-fp32", "onnxruntime-int8")
BATCH = 32  # the pipeline's batch in the issue; textfit uses the same


def sample(dataset: str, split: str, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    path = DATA / dataset / f"{split}.jsonl.gz"
    if not path.is_file():
        path = path.with_suffix("")  # plain .jsonl
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    names = json.loads((DATA / dataset / "labels.json").read_text())
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    labels = [r["label"] if isinstance(r["label"], str) else names[r["label"]] for r in rows]
    return [r["text"] for r in rows], labels


def ensure_model(model_dir: Path) -> None:
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    if not (model_dir / "config.json").is_file():
        print(f"training the demo recipe into {model_dir} (about 4 minutes) ...", flush=True)
        subprocess.run([sys.executable, "-m", "textfit", "train", "--recipe", "demo", "--output-dir", str(model_dir),
                        "--overwrite"], check=True, env=env, cwd=REPO)
    if not (model_dir / "model.int8.onnx").is_file():
        subprocess.run([sys.executable, "-m", "textfit", "export", str(model_dir), "--quantize", "int8"], check=True,
                       env=env, cwd=REPO)


def time_variant(variant: str, model_dir: Path, texts: list[str]) -> tuple[float, list[str]]:
    """Seconds to label `texts` (after one warm-up batch), and the labels."""
    if variant.startswith("pipeline"):
        from transformers import pipeline

        pipe = pipeline("text-classification", model=str(model_dir), device=-1)
        pipe(texts[:BATCH], batch_size=BATCH, truncation=True)
        start = time.perf_counter()
        if variant == "pipeline-sorted":  # its best honest use: batches of similar length, answers put back in order
            lengths = [len(ids) for ids in pipe.tokenizer(texts, truncation=True)["input_ids"]]
            order = sorted(range(len(texts)), key=lengths.__getitem__)
            answers = pipe([texts[i] for i in order], batch_size=BATCH, truncation=True)
            labels = [""] * len(texts)
            for i, answer in zip(order, answers, strict=True):
                labels[i] = answer["label"]
        else:
            labels = [p["label"] for p in pipe(texts, batch_size=BATCH, truncation=True)]
        return time.perf_counter() - start, labels
    import textfit

    backend = {"torch-fp32": "torch", "torch-bf16": "torch", "onnxruntime-fp32": "onnx",
               "onnxruntime-int8": "int8"}[variant]
    clf = textfit.load(model_dir, backend=backend, precision="bf16" if variant == "torch-bf16" else "fp32",
                       batch_size=BATCH)
    clf.predict(texts[:BATCH])
    start = time.perf_counter()
    labels = [p["label"] for p in clf.predict(texts)]
    return time.perf_counter() - start, labels


def load_run(model_dir: Path, texts: list[str], levels: list[int], seconds: float, max_requests: int) -> list[dict]:
    """`textfit serve` on a free loopback port, then one bounded load level per number of concurrent clients."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "textfit", "serve", str(model_dir), "--port", str(port)],
                              env=os.environ | {"HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        backend = httpx.get(f"{url}/metadata").json()["backend"]
        return [asyncio.run(load_level(url, texts, clients, seconds, max_requests)) | {"backend": backend}
                for clients in levels]
    finally:
        server.terminate()
        server.wait(timeout=30)


async def load_level(url: str, texts: list[str], clients: int, seconds: float, max_requests: int) -> dict:
    """`clients` concurrent clients post single texts until `seconds` pass or `max_requests` are sent."""
    import httpx

    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    counter = iter(range(max_requests))

    async def client(http: httpx.AsyncClient, offset: int) -> None:
        for i in counter:
            if time.perf_counter() > stop:
                return
            start = time.perf_counter()
            response = await http.post("/predict", json={"texts": [texts[(offset + i) % len(texts)]]})
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await http.post("/predict", json={"texts": texts[:1]})
        began = time.perf_counter()
        await asyncio.gather(*(client(http, c) for c in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def run_one(args: argparse.Namespace) -> None:
    """One variant on one dataset in this process; prints a JSON line (fresh process: own threads and caches)."""
    texts, _ = sample(*args.dataset.split(":"), args.texts)
    seconds, labels = time_variant(args.run_one, Path(args.model_dir), texts)
    print(json.dumps({"seconds": seconds, "labels": labels, "texts": len(texts)}))


def backends_here() -> tuple[str, ...]:
    """torch-bf16 only where the CPU has native bf16: elsewhere textfit runs it in fp32, and the column would
    repeat torch-fp32 under another name."""
    from textfit.precision import cpu_has_fast_bf16

    return BACKENDS if cpu_has_fast_bf16() else tuple(b for b in BACKENDS if b != "torch-bf16")


DATASETS = {"IMDB test reviews": "imdb:test", "SST-2 validation sentences": "sst2:validation"}


@dataclass
class Timings:
    """What the batch runs measured: seconds per (dataset, variant) over the repetitions, the texts actually
    timed per dataset (SST-2 validation has 872, not --texts), and each variant's labels."""

    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    labels: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=str(REPO / "outputs" / "bench-predict"))
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=15.0, help="per concurrency level")
    parser.add_argument("--load-requests", type=int, default=3000, help="at most, per concurrency level")
    parser.add_argument("--service-only", action="store_true",
                        help="measure the service again, keep the batch table of predict_speed.json")
    parser.add_argument("--results-name", default="predict_speed",
                        help="results/NAME.md and .json: another CPU kind's table beside the first one")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.run_one:
        return run_one(args)
    model_dir = Path(args.model_dir)
    ensure_model(model_dir)
    if args.service_only:
        return service_only(args, model_dir)
    variants = ("pipeline", "pipeline-sorted", *backends_here())
    timings = time_all(args, model_dir, variants)
    lines, summary = batch_table(args, model_dir, variants, timings)
    write_tables(args, lines, summary, load_run(model_dir, sample("sst2", "validation", 872)[0], [1, 8, 32],
                                               args.load_seconds, args.load_requests))


def time_all(args: argparse.Namespace, model_dir: Path, variants: tuple[str, ...]) -> Timings:
    """Every variant on every dataset, each in a fresh process, the order reversed every other repetition."""
    timings = Timings()
    for rep in range(args.repeats):
        for name, dataset in DATASETS.items():
            for variant in variants if rep % 2 == 0 else variants[::-1]:
                out = subprocess.run([sys.executable, __file__, "--run-one", variant, "--dataset", dataset,
                                      "--texts", str(args.texts), "--model-dir", str(model_dir)],
                                     capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
                if out.returncode:
                    sys.exit(f"{variant} on {name} failed:\n{out.stderr[-3000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                timings.seconds.setdefault((name, variant), []).append(result["seconds"])
                timings.counts[name] = result["texts"]
                timings.labels[(name, variant)] = result["labels"]
                print(f"  rep {rep + 1} {name:<27} {variant:<17} {result['texts'] / result['seconds']:8.1f} texts/s",
                      flush=True)
    return timings


def batch_table(args: argparse.Namespace, model_dir: Path, variants: tuple[str, ...],
                timings: Timings) -> tuple[list[str], list[dict]]:
    """The batch table's lines, and its rows for the JSON; throughput divides by the texts actually timed."""
    lines = batch_header(args, variants, timings.counts)
    summary = []
    model_labels = json.loads((model_dir / "config.json").read_text())["id2label"]
    for name, dataset in DATASETS.items():
        _, gold = sample(*dataset.split(":"), args.texts)
        # the model says neg/pos (IMDB's names), SST-2 says negative/positive: matched by position
        names = json.loads((DATA / dataset.split(":")[0] / "labels.json").read_text())
        gold = [model_labels[str(names.index(label))] for label in gold]
        reference = timings.labels[(name, "torch-fp32")]
        count = timings.counts[name]
        base = count / statistics.median(timings.seconds[(name, "pipeline")])
        best = count / statistics.median(timings.seconds[(name, "pipeline-sorted")])  # the peer at its best
        for variant in variants:
            rate = count / statistics.median(timings.seconds[(name, variant)])
            got = timings.labels[(name, variant)]
            same = sum(a == b for a, b in zip(got, reference, strict=True)) / len(got)
            accuracy = sum(a == b for a, b in zip(got, gold, strict=True)) / len(got)
            lines.append(f"| {name} | {variant} | {rate:,.1f} | {rate / base:.2f} | {rate / best:.2f} | {same:.2%} | "
                         f"{accuracy:.4f} |")
            summary.append({"texts": name, "count": count, "variant": variant, "texts_per_s": rate,
                            "x_pipeline": rate / base, "x_pipeline_sorted": rate / best,
                            "same_labels": same, "accuracy": accuracy, "seconds": timings.seconds[(name, variant)]})
    return lines, summary


def batch_header(args: argparse.Namespace, variants: tuple[str, ...], counts: dict[str, int]) -> list[str]:
    return [
        "# Prediction speed: transformers.pipeline vs textfit backends, and the HTTP service",
        "",
        f"Machine: {machine()}, {versions()}",
        f"Model: all-MiniLM-L6-v2 fine-tuned on the bundled IMDB sample (`textfit train --recipe demo`), "
        f"max_length 256, batch {BATCH}. Texts timed: "
        + ", ".join(f"{name} {n:,}" for name, n in counts.items()) + f" (a seeded sample of at most {args.texts:,}; "
        "throughput divides by the texts actually timed). "
        f"Medians of {args.repeats} repetitions, each variant a fresh process, after one warm-up batch; "
        "time covers tokenization and the model. SST-2 labels are matched to the model's by position "
        "(negative = neg, positive = pos)." + ("" if "torch-bf16" in variants else
                                                " torch-bf16 is not timed: this CPU has no native bf16, and textfit "
                                                "runs a bf16 request in fp32."),
        "",
        "| texts | variant | texts/s | x pipeline | x pipeline, sorted | same labels as fp32 | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]


def service_only(args: argparse.Namespace, model_dir: Path) -> None:
    """The service measured again; the batch table stays as predict_speed.md has it (the lines above its end)."""
    text = (RESULTS / f"{args.results_name}.md").read_text()
    lines = text[:text.index("\nService load run")].split("\n")
    summary = json.loads((RESULTS / f"{args.results_name}.json").read_text())["batch"]
    write_tables(args, lines, summary, load_run(model_dir, sample("sst2", "validation", 872)[0], [1, 8, 32],
                                               args.load_seconds, args.load_requests))


def write_tables(args: argparse.Namespace, lines: list[str], summary: list[dict], load: list[dict]) -> None:
    lines += ["", f"Service load run (`textfit serve`, backend {load[0]['backend']}, loopback, single SST-2 "
              f"sentences per request, at most {args.load_requests:,} requests or {args.load_seconds:g} s per level):",
              "", "| concurrent clients | requests | requests/s | p50 latency (ms) | p99 latency (ms) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['clients']} | {r['requests']:,} | {r['rps']:,.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
              for r in load]
    named = f" --results-name {args.results_name}" if args.results_name != "predict_speed" else ""
    lines += ["", f"Command: python benchmarks/predict_speed.py --texts {args.texts} --repeats {args.repeats}{named}"
              + (" (the service table alone, measured again: --service-only)" if args.service_only else "")]
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{args.results_name}.md", table)
    atomic_write_text(RESULTS / f"{args.results_name}.json",
                      json.dumps({"batch": summary, "service": load}, indent=2) + "\n")


def versions() -> str:
    import onnxruntime
    import torch
    import transformers

    return f"torch {torch.__version__}, transformers {transformers.__version__}, onnxruntime {onnxruntime.__version__}"


if __name__ == "__main__":
    main()
