"""`textfit serve` under real clients: a real uvicorn process on loopback, httpx, schemathesis, Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest


def test_predictions_match_the_model(service, trained, texts):
    import textfit

    response = httpx.post(f"{service}/predict", json={"texts": texts[:8]}, timeout=60)
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    direct = textfit.load(trained, precision="fp32").predict(texts[:8])
    assert [p["label"] for p in served] == [d["label"] for d in direct]
    for got, want in zip(served, direct, strict=True):
        assert set(got["scores"]) == {"negative", "positive"}
        assert got["scores"]["positive"] == pytest.approx(want["scores"]["positive"], abs=1e-4)


@pytest.mark.parametrize("body, limit", [  # the limits the service fixture sets
    ({"texts": ["a fine film"] * 9}, "max_texts=8"),
    ({"texts": ["fine " * 401]}, "max_chars=2,000"),
    ({"texts": ["x" * 1999] * 30}, "max_body_bytes=50,000"),
])
def test_each_limit_answers_413_naming_it(service, body, limit):
    response = httpx.post(f"{service}/predict", json=body, timeout=60)
    assert response.status_code == 413
    assert limit in response.json()["detail"]
    assert httpx.get(f"{service}/health").json()["status"] == "ok"


def test_body_limit_holds_without_content_length(service):
    def chunks():
        for _ in range(60):
            yield b"x" * 1000

    response = httpx.post(f"{service}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "max_body_bytes" in response.json()["detail"]


@pytest.mark.parametrize("content", [b"{not json", b'{"texts": "one string"}', b'{"texts": []}', b'{"texts": [1, 2]}',
                                     b"[]", b'{"other": ["a"]}', b"\xff\xfe", b'\x8f\xc4\xab\x8bA}'])
def test_malformed_requests_get_4xx_and_the_service_stays_up(service, content):
    response = httpx.post(f"{service}/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text  # 400: bytes that are not UTF-8 JSON at all
    assert response.json()["detail"]
    assert httpx.post(f"{service}/predict", json={"texts": ["still serving"]}).status_code == 200


def test_concurrent_requests_are_batched_with_the_same_answers(service, texts):
    one_by_one = [httpx.post(f"{service}/predict", json={"texts": [t]}).json()["predictions"][0] for t in texts[:24]]
    before = httpx.get(f"{service}/health").json()

    async def all_at_once() -> list[dict]:
        async with httpx.AsyncClient(base_url=service, timeout=60) as client:
            responses = await asyncio.gather(*(client.post("/predict", json={"texts": [t]}) for t in texts[:24]))
        return [r.json()["predictions"][0] for r in responses]

    together = asyncio.run(all_at_once())
    after = httpx.get(f"{service}/health").json()
    assert [p["label"] for p in together] == [p["label"] for p in one_by_one]
    np.testing.assert_allclose([p["scores"]["positive"] for p in together],
                               [p["scores"]["positive"] for p in one_by_one], atol=1e-4)
    assert after["requests"] - before["requests"] == 24
    assert after["model_calls"] - before["model_calls"] < 24 / 2, "concurrent requests should share model calls"


def test_metadata_health_and_docs(service, service_limits):
    metadata = httpx.get(f"{service}/metadata").json()
    assert metadata["labels"] == ["negative", "positive"]
    assert metadata["limits"] == service_limits
    assert 0.5 < metadata["metrics"]["accuracy"] <= 1.0
    assert metadata["backend"] == "torch-fp32"
    schema = httpx.get(f"{service}/openapi.json").json()
    assert {"/predict", "/health", "/metadata"} <= set(schema["paths"])
    assert httpx.get(f"{service}/docs").status_code == 200
    assert "<textarea" in httpx.get(f"{service}/").text


def test_no_generated_request_gets_a_5xx(service, tmp_path):
    schemathesis = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    assert schemathesis, "schemathesis is installed by make setup"
    result = subprocess.run([schemathesis, "run", f"{service}/openapi.json", "--checks", "all",
                             "--max-examples", "40", "--seed", "1", "--generation-database", "none",
                             "--request-timeout", "60"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert httpx.get(f"{service}/health").json()["status"] == "ok"
