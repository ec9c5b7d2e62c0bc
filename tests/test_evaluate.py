"""`textfit evaluate --against`: two models on the very same examples, and whether their difference is beyond the
luck of the evaluation set. The second models are the trained one with its head changed, so the truth is known:
the same model with its labels in the other order, and the same model with its answers turned around."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_textfit


def changed_copy(trained: Path, where: Path, *, swap_labels: bool = False, negate_head: bool = False,
                 rename: dict[str, str] | None = None) -> Path:
    from safetensors.numpy import load_file, save_file

    folder = Path(shutil.copytree(trained, where))
    config = json.loads((folder / "config.json").read_text())
    names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    if swap_labels:
        names = names[::-1]
    names = [(rename or {}).get(name, name) for name in names]
    config["id2label"] = {str(i): name for i, name in enumerate(names)}
    config["label2id"] = {name: i for i, name in enumerate(names)}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    weights = load_file(folder / "model.safetensors")
    for key in ("classifier.weight", "classifier.bias"):
        if swap_labels:
            weights[key] = np.ascontiguousarray(weights[key][::-1])
        if negate_head:
            weights[key] = -weights[key]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_the_same_model_in_another_label_order_is_no_different(trained, sst2_sample, tmp_path):
    import textfit
    from textfit.evaluate import evaluate_against, evaluate_folder

    swapped = changed_copy(trained, tmp_path / "swapped", swap_labels=True)
    clf, other = textfit.load(trained, backend="torch", precision="fp32"), textfit.load(swapped, backend="torch",
                                                                                       precision="fp32")
    assert other.labels == clf.labels[::-1]
    ours, theirs, comparison, split = evaluate_against(clf, other, str(sst2_sample), "validation")
    alone, _, count = evaluate_folder(clf, str(sst2_sample), "validation")
    assert split == "validation" and comparison.examples == count == 300
    assert comparison.ours == ours["accuracy"] == alone["accuracy"] == theirs["accuracy"] == comparison.theirs
    assert comparison.difference == 0 and comparison.interval == (0.0, 0.0)
    assert comparison.agreement == 1.0 and comparison.verdict.startswith("within the luck")


def test_a_better_model_is_named_better_beyond_the_interval(trained, sst2_sample, tmp_path):
    turned = changed_copy(trained, tmp_path / "turned", negate_head=True)  # every answer the other way round
    out = tmp_path / "comparison.json"
    result = run_textfit("evaluate", trained, "--against", turned, "--dataset", sst2_sample, "--split", "validation",
                         "--output", out)
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    comparison = saved["comparison"]
    assert saved["accuracy"] > 0.6 and abs(saved["against"]["accuracy"] - (1 - saved["accuracy"])) < 1e-9
    assert comparison["difference"] == pytest.approx(saved["accuracy"] - saved["against"]["accuracy"])
    lo, hi = comparison["interval"]
    assert 0 < lo < comparison["difference"] < hi and comparison["agreement"] == 0.0
    assert comparison["verdict"] == "better beyond the luck of this evaluation set"
    assert f"{trained} against {turned}, on the same 300 examples: accuracy" in result.stdout
    assert "they give the same answer on 0.0% of them" in result.stdout

    # turned around, the same comparison says "worse", with the interval mirrored
    import textfit
    from textfit.evaluate import evaluate_against

    _, _, back, _ = evaluate_against(textfit.load(turned, backend="torch", precision="fp32"),
                                     textfit.load(trained, backend="torch", precision="fp32"), str(sst2_sample),
                                     "validation")
    assert back.verdict == "worse beyond the luck of this evaluation set"
    assert back.difference == pytest.approx(-comparison["difference"])
    assert back.interval[1] < 0


def test_models_with_other_labels_are_refused_by_name(trained, sst2_sample, tmp_path):
    import textfit
    from textfit.errors import ConfigError
    from textfit.evaluate import evaluate_against

    renamed = changed_copy(trained, tmp_path / "renamed", rename={"positive": "good", "negative": "bad"})
    with pytest.raises(ConfigError) as refused:  # the command prints it and exits with 2, as every ConfigError
        evaluate_against(textfit.load(trained, backend="torch"), textfit.load(renamed, backend="torch"),
                         str(sst2_sample))
    assert f"{trained} has labels negative, positive and {renamed} has bad, good" in str(refused.value)
