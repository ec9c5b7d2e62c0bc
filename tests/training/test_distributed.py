"""Two processes (gloo on the CPU) train the same model as one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ARGS = ["--max-train-samples", "320", "--max-eval-samples", "96", "--learning-rate", "3e-4", "--max-steps", "12",
        "--train-batch-size", "16", "--max-length", "64", "--eval-strategy", "steps", "--eval-steps", "6",
        "--precision", "fp32", "--logging-steps", "6"]


def train(model: Path, data: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_port", "29533"] if processes > 1 else [sys.executable]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(2 // processes)}
    result = subprocess.run([*launcher, "-m", "textfit", "train", "--model", str(model), "--dataset", str(data),
                             "--output-dir", str(out), *ARGS], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_two_processes_match_one(small_model_no_dropout, sst2_sample, tmp_path):
    train(small_model_no_dropout, sst2_sample, tmp_path / "one", 1)
    two = train(small_model_no_dropout, sst2_sample, tmp_path / "two", 2)
    assert "2 process(es)" in two.stdout
    assert two.stdout.count("model written to") == 1  # only the main process reports and writes
    a = json.loads((tmp_path / "one" / "history.json").read_text())
    b = json.loads((tmp_path / "two" / "history.json").read_text())
    assert b["processes"] == 2 and a["processes"] == 1
    assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]] == [6, 12]
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        assert row_b["train_loss"] == pytest.approx(row_a["train_loss"], abs=2e-3)
        assert row_b["loss"] == pytest.approx(row_a["loss"], abs=2e-3)
    wa = load_file(tmp_path / "one" / "model.safetensors")
    wb = load_file(tmp_path / "two" / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-3, atol=1e-3)
    card = (tmp_path / "two" / "README.md").read_text()
    assert "- num_devices: 2" in card and "- total_train_batch_size: 16" in card
    leftovers = {p.name for p in (tmp_path / "two").iterdir()} - {p.name for p in (tmp_path / "one").iterdir()}
    assert not leftovers


def test_two_nodes_match_one(small_model_no_dropout, sst2_sample, tmp_path):
    """Two torchrun "nodes" on this machine (one process each, c10d rendezvous on 127.0.0.1) train the same model
    as one process: what `torchrun --nnodes 2` across two machines does, with the network on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "nodes"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--node_rank",
         str(rank), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "textfit-test",
         "-m", "textfit", "train", "--model", str(small_model_no_dropout), "--dataset", str(sst2_sample),
         "--output-dir", str(out), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for rank in (0, 1)]
    outputs = [node.communicate(timeout=900) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-4000:]
    assert sum(stdout.count("model written to") for stdout, _ in outputs) == 1  # one main process in the world
    assert "2 process(es)" in "".join(stdout for stdout, _ in outputs)

    train(small_model_no_dropout, sst2_sample, tmp_path / "one", 1)
    a = json.loads((tmp_path / "one" / "history.json").read_text())
    b = json.loads((out / "history.json").read_text())
    assert b["processes"] == 2 and [r["step"] for r in b["history"]] == [r["step"] for r in a["history"]]
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        assert row_b["train_loss"] == pytest.approx(row_a["train_loss"], abs=2e-3)
        assert row_b["loss"] == pytest.approx(row_a["loss"], abs=2e-3)
    wa, wb = load_file(tmp_path / "one" / "model.safetensors"), load_file(out / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-3, atol=1e-3)
