"""The service under the conditions that break services: SIGTERM with requests in flight, clients that stall or
vanish mid-request. Real sockets against a real `textfit serve` process."""

from __future__ import annotations

import asyncio
import signal
import socket
import statistics
import time
from urllib.parse import urlparse

import httpx

from tests.serve.conftest import start_service

TEXTS = [f"review {i}: {'a moving, beautifully shot film ' * (i % 5 + 1)}" for i in range(64)]


def test_sigterm_answers_every_accepted_request_then_exits(trained):
    process, url = start_service(trained, "--precision", "fp32", "--max-texts", "64")
    outcomes: list[str] = []

    async def one(client: httpx.AsyncClient, i: int) -> None:
        try:
            response = await client.post("/predict", json={"texts": TEXTS[: 16 + i % 48]}, timeout=60)
            outcomes.append(f"{response.status_code}" if len(response.json()["predictions"]) == 16 + i % 48
                            else "short")
        except httpx.ConnectError:
            outcomes.append("refused")  # arrived after the listening socket closed: never accepted
        except httpx.HTTPError as exc:  # accepted, then dropped: what a graceful shutdown must not do
            outcomes.append(type(exc).__name__)

    async def load_then_terminate() -> float:
        async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=64)) as client:
            tasks = [asyncio.create_task(one(client, i)) for i in range(24)]
            await asyncio.sleep(0.3)  # requests are queued in the micro-batcher and running in the model
            process.send_signal(signal.SIGTERM)
            stopped = time.perf_counter()
            await asyncio.gather(*tasks)
            return stopped

    stopped = asyncio.run(load_then_terminate())
    process.wait(timeout=30)
    exit_seconds = time.perf_counter() - stopped
    assert outcomes.count("200") >= 1 and set(outcomes) <= {"200", "refused"}, outcomes
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says SIGTERM ended it
    assert process.returncode in (0, -signal.SIGTERM) and exit_seconds < 30, process.returncode
    port = urlparse(url).port
    with socket.socket() as sock:  # and nothing listens any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def _stall(url: str, declared: int, sent: bytes) -> socket.socket:
    """A client that announces a body, sends part of it, and stalls (the socket stays open)."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port))
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {declared}\r\n\r\n".encode() + sent)
    return sock


def _latencies(url: str, n: int = 20) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            start = time.perf_counter()
            assert client.post("/predict", json={"texts": TEXTS[i % 8: i % 8 + 4]}).status_code == 200
            out.append(time.perf_counter() - start)
    return out


def test_stalled_and_vanishing_clients_hold_nothing_hostage(trained):
    process, url = start_service(trained, "--precision", "fp32")
    try:
        before = statistics.median(_latencies(url))
        stalled = [_stall(url, 10_000, b'{"texts": ["half a bo') for _ in range(8)]
        for _ in range(8):  # and clients that hang up in the middle of their body
            _stall(url, 10_000, b'{"texts": ["gone').close()
        during = _latencies(url)
        assert statistics.median(during) < max(3 * before, before + 0.05), (before, during)
        for sock in stalled:
            sock.close()
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["requests"] >= 40
    finally:
        process.terminate()
        process.wait(timeout=20)
