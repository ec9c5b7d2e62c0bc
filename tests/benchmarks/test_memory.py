"""The memory harness reads a process's RSS beside the step it has logged: its growth per 100 steps must be what
the process really added, or the table would blame (or clear) the training loop wrongly."""

from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import memory

# A stand-in for a training run: 20 MB more kept at every 'step' of 10, logged as textfit logs its steps.
GROWING = """
import time
kept = []
for step in range(10, 70, 10):
    kept.append(bytearray(20 * 2**20))
    for page in range(0, len(kept[-1]), 4096):
        kept[-1][page] = 1  # touched, so resident
    print(f"step {step}: train loss 0.5", flush=True)
    time.sleep(1.5)
"""


def test_growth_per_100_steps_is_what_the_process_added():
    samples, code = memory.sampled([sys.executable, "-c", GROWING], {}, REPO)
    assert code == 0 and len(samples) >= 6
    row = memory.summary("stand-in", samples, 9.0, code)
    assert row["first_step"] == 10 and row["last_step"] == 60
    assert 180 <= row["growth_per_100_steps_mb"] <= 220  # 20 MB per 10 steps
    assert row["peak_mb"] >= row["rss_at_last_mb"] >= row["rss_at_first_mb"] + 90
    assert "| stand-in | 10-60 |" in memory.report([row | {"machine": "here"}])
