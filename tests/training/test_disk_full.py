"""A full disk: the checkpoint that cannot be written stops the run with a clear error, the previous checkpoint
stays intact, and --resume works once space is back. On a small tmpfs that the test mounts (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = os.environ | {"HF_HUB_OFFLINE": "1"}


@pytest.fixture
def small_disk(tmp_path):
    """A 360 MiB tmpfs: room for the first evaluation's checkpoints (the best and the last, ~240 MiB with
    the 2-layer model's weights and Adam state), not for the second's staging copy beside them."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=360m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); needs root and mount "
                    "rights")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def command(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "textfit", "train", "--model", str(model), "--dataset", str(data),
            "--output-dir", str(out), "--max-train-samples", "320", "--max-eval-samples", "64", "--max-length", "32",
            "--learning-rate", "3e-4", "--max-steps", "20", "--eval-strategy", "steps", "--eval-steps", "10",
            "--baseline", "none", *extra]


def test_a_full_disk_stops_cleanly_and_resume_works_once_space_is_back(small_model, sst2_sample, small_disk):
    out = small_disk / "run"
    full = subprocess.run(command(small_model, sst2_sample, out), capture_output=True, text=True, env=ENV)
    assert full.returncode == 2, full.stderr[-3000:]
    message = full.stderr.strip().splitlines()[-1]
    assert "no space left on the device while writing" in message and "Traceback" not in full.stderr
    assert "the previous checkpoint (step 10) is intact" in message and "--resume" in message
    last = out / "checkpoints" / "last"
    assert json.loads((last / "trainer_state.json").read_text())["global_step"] == 10
    assert not list((out / "checkpoints").glob(".*staging"))  # the partial copy is gone, its space free again

    subprocess.run(["mount", "-o", "remount,size=2g", str(small_disk)], check=True)  # space is back
    resumed = subprocess.run(command(small_model, sst2_sample, out, "--resume"), capture_output=True, text=True,
                             env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "at step 10 of 20" in resumed.stdout
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["step"] for row in history] == [10, 20]
