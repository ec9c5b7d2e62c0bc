"""Shared fixtures: real data (bundled samples and ../shared/data) and a small real model.

The small model is the default all-MiniLM-L6-v2 cut to its first 2 layers: real pretrained weights and
tokenizer, fast enough for many short training runs on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
if "TEXTFIT_CACHE" not in os.environ:  # the tests' token cache stays out of the user's ~/.cache
    import tempfile

    os.environ["TEXTFIT_CACHE"] = tempfile.mkdtemp(prefix="textfit-test-cache-")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "examples" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"


def run_textfit(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """The `textfit` command in a real process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "textfit", *map(str, args)], capture_output=True, text=True,
                          env=os.environ | {"HF_HUB_OFFLINE": "1"}, timeout=timeout)


def build_small_model(folder: Path, layers: int = 2, dropout: float | None = None) -> Path:
    from transformers import AutoModel, AutoTokenizer

    from textfit.models import resolve_model

    source = resolve_model("minilm-l6").path
    model = AutoModel.from_pretrained(source)
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    if dropout is not None:
        model.config.hidden_dropout_prob = dropout
        model.config.attention_probs_dropout_prob = dropout
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """2 layers of all-MiniLM-L6-v2, with its own dropout (0.1)."""
    return build_small_model(tmp_path_factory.mktemp("minilm-l2"))


@pytest.fixture(scope="session")
def small_model_no_dropout(tmp_path_factory) -> Path:
    """The same without dropout, for runs that must match bit for bit across process layouts."""
    return build_small_model(tmp_path_factory.mktemp("minilm-l2-nodrop"), dropout=0.0)


@pytest.fixture(scope="session")
def sst2_sample() -> Path:
    return SAMPLES / "sst2_sample"


@pytest.fixture(scope="session")
def imdb_sample() -> Path:
    return SAMPLES / "imdb_sample"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests read the shared real datasets beside the repository")
    return SHARED_DATA


def small_run_config(model: Path, data: Path, out: Path, **overrides):
    """A short SST-2 run: 2,000 sentences, one epoch of 125 steps (about 20 s on 2 cores)."""
    from textfit.config import TrainConfig

    values = dict(model=str(model), dataset=str(data), output_dir=str(out), learning_rate=3e-4, epochs=1,
                  train_batch_size=16, max_length=64, seed=42, logging_steps=20)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def trained(small_model, sst2_sample, tmp_path_factory) -> Path:
    """One finished run on the SST-2 sample, shared by the tests that read an output folder."""
    from textfit.training import train

    out = tmp_path_factory.mktemp("sst2-run") / "model"
    train(small_run_config(small_model, sst2_sample, out, eval_strategy="steps", eval_steps=40))
    return out


@pytest.fixture
def card_facts() -> dict:
    """A run shaped like the IMDB reference card (3,000/300 subset, 11 epochs, best at epoch 2)."""
    from textfit.config import TrainConfig

    config = TrainConfig(model="minilm-l6", dataset="../shared/data/imdb", output_dir="outputs/imdb-minilm",
                         eval_split="test", max_train_samples=3000, max_eval_samples=300, learning_rate=1e-5,
                         epochs=11, seed=42, precision="bf16", metric_for_best="loss").to_dict()  # as the card
    losses = [0.3412, 0.2896, 0.3020, 0.3311, 0.3650]
    history = [{"step": 188 * (i + 1), "epoch": float(i + 1), "train_loss": 0.45 / (i + 1), "loss": loss,
                "accuracy": 0.86 + 0.01 * (i == 1), "precision": 0.875, "recall": 0.8867, "f1": 0.8808}
               for i, loss in enumerate(losses)]
    metrics = {"loss": 0.2896, "accuracy": 0.88, "precision": 0.875, "recall": 0.8867, "f1": 0.8808,
               "per_class": {"neg": {"precision": 0.8853, "recall": 0.8733, "f1": 0.8792, "support": 150},
                             "pos": {"precision": 0.875, "recall": 0.8867, "f1": 0.8808, "support": 150}},
               "confusion_matrix": [[131, 19], [17, 133]], "num_examples": 300,
               "accuracy_ci": [0.8433, 0.9133], "f1_ci": [0.8418, 0.9167], "ece": 0.0412}
    from textfit.findings import run_findings

    kept = {"metric": "loss", "value": 0.2896, "step": 376, "epoch": 2.0}
    return {"config": config, "base_model": "sentence-transformers/all-MiniLM-L6-v2", "license": "apache-2.0",
            "findings": run_findings(history, kept, metrics, {"neg": 150, "pos": 150}, 1e-5),
            "pictures": [("Loss and metrics over training", "training_curves.png"),
                         ("Confusion matrix", "confusion_matrix.png")],
            "mistake_count": 36, "mistakes": [
                {"text": "A film so bad it is good: I laughed all the way through.", "label": "neg",
                 "predicted": "pos", "confidence": 0.9912},
                {"text": "Not the masterpiece they promised, yet I would watch it again.", "label": "pos",
                 "predicted": "neg", "confidence": 0.9655}],
            "dataset": "imdb", "eval_split": "test", "label_names": ["neg", "pos"],
            "train_counts": {"neg": 1489, "pos": 1511}, "eval_counts": {"neg": 150, "pos": 150},
            "history": history, "kept": kept,
            "metrics": metrics, "precision": "bf16", "total_steps": 940, "planned_steps": 2068,
            "steps_per_epoch": 188, "warmup_steps": 0, "processes": 1, "stopped_early": True,
            "architecture": "BertForSequenceClassification",
            "versions": [("textfit", "0.1.0"), ("Transformers", "5.23.0"), ("Pytorch", "2.13.0+cpu")]}


@pytest.fixture
def trained_copy(trained, tmp_path) -> Path:
    """A private copy of the trained folder, for tests that add files to it (exports) or change it."""
    import shutil

    return Path(shutil.copytree(trained, tmp_path / "model"))


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Selenium, for the service's page and the report's HTML."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # this machine has no network: no background connections, no first-run or sync traffic
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
