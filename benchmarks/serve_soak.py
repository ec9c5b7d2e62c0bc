"""A soak run of `textfit serve` on loopback: sustained concurrent load, latency, errors and memory over time.

    make bench-serve                                   # = python benchmarks/serve_soak.py (about 6 minutes)
    python benchmarks/serve_soak.py --clients 4 --seconds 30    # a quick look

The service runs the default backend `serve` picks for the folder on this CPU (named in the table). 16 clients
(by default) send requests back to back for 5 minutes: batches of 1 to 64 texts (mostly small: 1-8 texts in 3
requests of 4, 9-64 in the rest), a mix of short SST-2 sentences and long IMDB reviews. Every status code is
counted; RSS of the server process is read from /proc every 5 s, and the growth from minute 1 to the end says
whether memory stops growing after warm-up. Then schemathesis runs every check of the OpenAPI contract against
the same server, and the number of cases it ran is recorded. The load is bounded in time and count and goes to
127.0.0.1 only. Writes benchmarks/results/serve_soak.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textfit.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

from predict_speed import ensure_model, sample  # noqa: E402  (the same model and texts)
from train_speed import machine  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def batch_size(rng: random.Random) -> int:
    return rng.randint(1, 8) if rng.random() < 0.75 else rng.randint(9, 64)


async def soak(url: str, pid: int, texts: list[str], clients: int, seconds: float, max_requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    transport_errors: list[str] = []
    memory: list[tuple[float, float]] = []
    texts_done = 0
    start = time.perf_counter()
    stop = start + seconds
    budget = iter(range(max_requests))

    async def client(http: httpx.AsyncClient, seed: int) -> None:
        nonlocal texts_done
        rng = random.Random(seed)
        for _ in budget:
            if time.perf_counter() > stop:
                return
            batch = [texts[rng.randrange(len(texts))] for _ in range(batch_size(rng))]
            began = time.perf_counter()
            try:
                response = await http.post("/predict", json={"texts": batch})
            except httpx.HTTPError as exc:
                transport_errors.append(type(exc).__name__)
                continue
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                texts_done += len(batch)

    async def watch_memory() -> None:
        while time.perf_counter() < stop:
            memory.append((round(time.perf_counter() - start, 1), rss_mb(pid)))
            await asyncio.sleep(5)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(watch_memory(), *(client(http, seed) for seed in range(clients)))
    elapsed = time.perf_counter() - start
    memory.append((round(elapsed, 1), rss_mb(pid)))
    latencies.sort()

    def at(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    after_warmup = [m for t, m in memory if t >= 60] or [memory[-1][1]]
    return {"clients": clients, "seconds": elapsed, "requests": len(latencies), "texts": texts_done,
            "requests_per_s": len(latencies) / elapsed, "texts_per_s": texts_done / elapsed,
            "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": 1000 * latencies[-1], "statuses": statuses,
            "server_errors": sum(n for code, n in statuses.items() if code >= 500),
            "transport_errors": len(transport_errors), "memory": memory,
            "rss_start_mb": memory[0][1], "rss_minute1_mb": after_warmup[0],
            "rss_middle_mb": memory[len(memory) // 2][1], "rss_end_mb": memory[-1][1],
            "growth_after_warmup": memory[-1][1] / after_warmup[0] - 1}


def contract(url: str) -> dict:
    """schemathesis with every check against the running service; the number of cases it generated."""
    tool = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    with tempfile.TemporaryDirectory() as where:
        done = subprocess.run([tool, "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", "200",
                               "--seed", "1", "--generation-database", "none", "--request-timeout", "60"],
                              capture_output=True, text=True, timeout=1800, cwd=where)
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    cases = re.search(r"(\d[\d,]*)\s+(?:test cases|generated)", text)
    return {"passed": done.returncode == 0, "cases": int(cases.group(1).replace(",", "")) if cases else None,
            "summary": "\n".join(text.strip().splitlines()[-12:])}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=str(REPO / "outputs" / "bench-predict"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--no-contract", action="store_true", help="skip the schemathesis run")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    model_dir = Path(args.model_dir)
    ensure_model(model_dir)
    result = run_service(args, model_dir)
    text = report(args, result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "serve_soak.md", text)
    atomic_write_text(RESULTS / "serve_soak.json", json.dumps(result, indent=1) + "\n")
    print(text, end="")
    return 0 if result["server_errors"] == 0 and result["alive_after"] else 1


def run_service(args: argparse.Namespace, model_dir: Path) -> dict:
    """The service started as the tests start it, warmed up, soaked, checked against its contract, then asked
    whether it is still alive."""
    texts = sample("sst2", "validation", 872)[0] + sample("imdb", "test", 872)[0]
    sys.path.insert(0, str(REPO))
    from tests.serve.conftest import start_service

    server, url = start_service(model_dir)
    try:
        import httpx

        backend = httpx.get(f"{url}/metadata").json()["backend"]
        httpx.post(f"{url}/predict", json={"texts": texts[:64]}, timeout=120)  # warm-up
        result = asyncio.run(soak(url, server.pid, texts, args.clients, args.seconds, args.max_requests))
        result["contract"] = None if args.no_contract else contract(url)
        result["alive_after"] = httpx.get(f"{url}/health").json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
    return result | {"backend": backend, "cpu": machine()}


def report(args: argparse.Namespace, result: dict) -> str:
    lines = [
        "# `textfit serve` under sustained load",
        "",
        f"Machine: {result['cpu']}. Backend: {result['backend']} (what `serve` picks for the folder on this CPU). "
        "Model: all-MiniLM-L6-v2 fine-tuned by `textfit train --recipe demo`, max_length 256.",
        f"Load: {args.clients} concurrent clients on loopback for {result['seconds']:.0f} s, back to back; batches "
        "of 1-8 texts (3 requests in 4) or 9-64 texts, drawn from 872 SST-2 sentences and 872 IMDB reviews.",
        "",
        "| requests | requests/s | texts/s | p50 ms | p99 ms | max ms | 5xx | transport errors | status codes |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {result['requests']:,} | {result['requests_per_s']:.1f} | {result['texts_per_s']:.1f} | "
        f"{result['p50_ms']:.0f} | {result['p99_ms']:.0f} | {result['max_ms']:.0f} | {result['server_errors']} | "
        f"{result['transport_errors']} | {json.dumps(result['statuses'])} |",
        "",
        f"Server RSS: {result['rss_start_mb']:.0f} MiB at the start, {result['rss_minute1_mb']:.0f} MiB after "
        f"minute 1, {result['rss_middle_mb']:.0f} MiB in the middle, {result['rss_end_mb']:.0f} MiB at the end: "
        f"{result['growth_after_warmup']:+.1%} from minute 1 to the end (the bound: under +10%).",
        f"Alive and answering /health after the run: {result['alive_after']}.",
    ]
    if result["contract"]:
        c = result["contract"]
        lines += ["", f"Contract: schemathesis, every check (`--checks all`, status codes, response schemas, "
                      f"content types, headers), {c['cases'] if c['cases'] is not None else 'an unknown number of'} "
                      f"cases: {'passed' if c['passed'] else 'FAILED'}.", "", "```", c["summary"], "```"]
    lines += ["", f"Command: python benchmarks/serve_soak.py --clients {args.clients} --seconds {args.seconds:g}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
