"""An interrupted run (killed hard) resumed with --resume ends exactly where an uninterrupted run ends, from a
checkpoint written between evaluations (--save-steps) in the middle of an epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file


def command(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "textfit", "train", "--model", str(model), "--dataset", str(data),
            "--output-dir", str(out), "--max-train-samples", "800", "--max-eval-samples", "100",
            "--learning-rate", "3e-4", "--epochs", "2", "--max-length", "64", "--logging-steps", "10", *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_resume_after_kill_equals_uninterrupted(small_model, sst2_sample, tmp_path):
    straight = tmp_path / "straight"
    run(command(small_model, sst2_sample, straight))

    interrupted = tmp_path / "interrupted"  # 50 steps per epoch, one evaluation per epoch, a checkpoint every 10
    proc = subprocess.Popen(command(small_model, sst2_sample, interrupted, "--save-steps", "10"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ | {"HF_HUB_OFFLINE": "1"})
    state = interrupted / "checkpoints" / "last" / "trainer_state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["global_step"] >= 30:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["global_step"]
    assert 30 <= killed_at < 50 and killed_at % 10 == 0  # mid-epoch, before any evaluation
    assert not (interrupted / "README.md").exists()

    # without --resume the run refuses to start over silently
    refused = subprocess.run(command(small_model, sst2_sample, interrupted), capture_output=True, text=True)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr

    resumed = run(command(small_model, sst2_sample, interrupted, "--resume"))
    assert f"resuming from {interrupted / 'checkpoints' / 'last'} at step {killed_at} of 100" in resumed.stdout

    a = json.loads((straight / "history.json").read_text())
    b = json.loads((interrupted / "history.json").read_text())
    assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]] == [50, 100]
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "loss", "accuracy", "f1"):
            assert row_b[key] == pytest.approx(row_a[key], abs=1e-6), (row_a["step"], key)
    assert a["best"] == b["best"]
    wa, wb = load_file(straight / "model.safetensors"), load_file(interrupted / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=1e-6)


def test_resume_refuses_changed_settings(small_model, sst2_sample, tmp_path):
    out = tmp_path / "run"
    run(command(small_model, sst2_sample, out, "--max-steps", "10", "--keep-checkpoints"))
    (out / "README.md").unlink()  # as if it had been interrupted after its last checkpoint
    # a checkpoint from a textfit that did not have a setting yet ran at its default: it resumes
    recipe = out / "checkpoints" / "last" / "recipe.yaml"
    saved = yaml.safe_load(recipe.read_text())
    recipe.write_text(yaml.safe_dump({k: v for k, v in saved.items() if k not in ("time_budget", "layers")}))
    changed = subprocess.run(command(small_model, sst2_sample, out, "--max-steps", "10", "--resume",
                                     "--learning-rate", "1e-3"), capture_output=True, text=True)
    assert changed.returncode == 2
    assert "cannot resume with different settings (learning_rate: 0.0003 -> 0.001)" in changed.stderr
    # save_steps changes nothing a checkpoint holds: it may be added on resume
    resumed = run(command(small_model, sst2_sample, out, "--max-steps", "10", "--resume", "--save-steps", "5"))
    assert "resuming from" in resumed.stdout and (out / "README.md").is_file()
