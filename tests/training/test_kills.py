"""Runs that survive any kill: a training run killed with SIGKILL again and again, at seeded random moments and
while its checkpoint and its final folder are being written, resumed each time, ends exactly as an uninterrupted
run; at every kill the folder is resumable or finished, never corrupt. The same for streaming prediction."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ENV = os.environ | {"HF_HUB_OFFLINE": "1"}
SEED = 20261129  # the kill schedule's seed: a failure repeats with the same kills


def command(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "textfit", "train", "--model", str(model), "--dataset", str(data),
            "--output-dir", str(out), "--max-train-samples", "640", "--max-eval-samples", "100",
            "--learning-rate", "3e-4", "--epochs", "2", "--max-length", "48", "--eval-strategy", "steps",
            "--eval-steps", "10", "--logging-steps", "10", "--baseline", "none", *extra]


def state_of(out: Path) -> str:
    """finished | resumable | empty; anything else (a folder half written, a checkpoint that does not parse) fails."""
    if (out / "README.md").is_file():
        for name in ("model.safetensors", "config.json", "metrics.json", "history.json", "tokenizer.json"):
            assert (out / name).is_file(), f"finished folder without {name}"
        load_file(out / "model.safetensors")
        return "finished"
    last = out / "checkpoints" / "last"
    if last.is_dir():
        json.loads((last / "trainer_state.json").read_text())
        assert (last / "recipe.yaml").is_file()
        return "resumable"
    return "empty"


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL the process as soon as `ready()` holds; False when the process ended first."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.wait()
    return False


@pytest.mark.slow
def test_training_killed_again_and_again_ends_as_one_run(small_model, sst2_sample, tmp_path):
    straight = tmp_path / "straight"
    done = subprocess.run(command(small_model, sst2_sample, straight), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]

    out, rng, kills = tmp_path / "killed", random.Random(SEED), []
    moments = [("at a random moment", None)] * 3 + [
        ("while a checkpoint is written", lambda: (out / "checkpoints" / ".last-staging").exists()),
        ("while the best checkpoint is written", lambda: (out / "checkpoints" / ".best-staging").exists()),
        ("while the final folder is written", lambda: (out / ".final-staging").exists()),
    ]
    for what, marker in moments:
        resume = ["--resume"] if state_of(out) == "resumable" else []
        if state_of(out) == "finished":
            break
        proc = subprocess.Popen(command(small_model, sst2_sample, out, *resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=ENV)
        started, delay = time.time(), rng.uniform(4, 14)
        ready = marker or (lambda delay=delay, started=started: time.time() - started > delay)
        if kill_when(proc, ready):
            kills.append((what, state_of(out)))
    while state_of(out) != "finished":  # the last resume runs to the end
        resume = ["--resume"] if state_of(out) == "resumable" else []
        done = subprocess.run(command(small_model, sst2_sample, out, *resume), capture_output=True, text=True,
                              env=ENV)
        assert done.returncode == 0, done.stderr[-3000:]
    assert len(kills) >= 5, kills  # the kills landed, each leaving a resumable (or empty) folder
    assert {what for what, _ in kills} >= {"while a checkpoint is written", "while the final folder is written"}

    a = json.loads((straight / "history.json").read_text())
    b = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]]
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "loss", "accuracy"):
            assert row_b[key] == pytest.approx(row_a[key], abs=1e-6), (row_a["step"], key, kills)
    assert a["best"] == b["best"]
    ma, mb = (json.loads((folder / "metrics.json").read_text())["eval"] for folder in (straight, out))
    assert ma["per_class"] == mb["per_class"] and ma["confusion_matrix"] == mb["confusion_matrix"]
    for key in ("loss", "accuracy", "f1"):
        assert mb[key] == pytest.approx(ma[key], abs=1e-6), key
    wa, wb = load_file(straight / "model.safetensors"), load_file(out / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=1e-6)


def test_prediction_killed_again_and_again_writes_every_row_once(trained, tmp_path):
    texts = [f"{word} film number {i}, {'truly ' * (i % 7)}{word}" for i in range(6000)
             for word in (("dull", "moving")[i % 2],)]
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    reference, out = tmp_path / "straight.jsonl", tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "textfit", "predict", str(trained), "--input", str(source), "--no-progress",
           "--precision", "fp32"]
    assert subprocess.run([*cmd, "--output", str(reference)], capture_output=True, env=ENV).returncode == 0
    rng, kills = random.Random(SEED), 0
    while not out.exists() and kills < 8:
        proc = subprocess.Popen([*cmd, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=ENV)
        started, delay = time.time(), rng.uniform(3, 8)
        kills += kill_when(proc, lambda started=started, delay=delay: time.time() - started > delay)
    if not out.exists():
        assert subprocess.run([*cmd, "--output", str(out)], capture_output=True, env=ENV).returncode == 0
    assert kills >= 2
    assert out.read_text() == reference.read_text()  # every row, in order, none twice
