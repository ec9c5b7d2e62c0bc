"""A real `textfit serve` process on a free loopback port, shared by the service tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LIMITS = {"max_texts": 8, "max_chars": 2000, "max_body_bytes": 50_000}


@pytest.fixture(scope="module")
def service_limits() -> dict:
    return dict(LIMITS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(model_dir: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`textfit serve MODEL_DIR` on a free port, once /health answers; fails the test if it does not come up."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "textfit", "serve", str(model_dir), "--port", str(port), *flags],
                               env=os.environ | {"HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"textfit serve did not come up:\n{process.stdout.read()}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def service(trained):
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in LIMITS.items()]
    # fp32: the tests compare scores across batch compositions to 1e-4
    process, url = start_service(trained, "--batch-window-ms", "20", "--precision", "fp32", *flags)
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def texts(sst2_sample) -> list[str]:
    return [json.loads(line)["text"] for line in (sst2_sample / "validation.jsonl").open()][:40]
