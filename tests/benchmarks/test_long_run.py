"""The long-run harness keeps what each segment prints and compares the steps that two segments both computed (the
ones after the last checkpoint before a kill): the full-scale check that a resumed run logs what one run would."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import long_run

# a stand-in for `textfit train` in the run's clone: it prints what a segment prints, and ends
FAKE_TRAIN = """import sys
print("resuming from checkpoints/last at step 100 of 300" if "--resume" in sys.argv else "starting")
for step in (150, 200):
    print(f"step {step}: train loss {0.5 if step == 150 else float(sys.argv[-2]):.4f}, 1.0 samples/s, 9 tokens/s")
print("eval @ step 200 (epoch 2): train_loss 0.4000  loss 0.3000  accuracy 0.9000  f1 0.9000", file=sys.stderr)
"""


@pytest.fixture
def clone(tmp_path, monkeypatch):
    (tmp_path / "textfit" / "recipes").mkdir(parents=True)
    (tmp_path / "textfit" / "__init__.py").write_text("")  # found before the installed textfit, as the clone's is
    (tmp_path / "textfit" / "__main__.py").write_text(FAKE_TRAIN)
    (tmp_path / "textfit" / "recipes" / "long.yaml").write_text("output_dir: outputs/long\n")
    monkeypatch.setattr(long_run, "RUN_REPO", tmp_path)
    monkeypatch.setattr(long_run, "machine", lambda: "a CPU")
    return tmp_path


def segment(clone, train_loss: str) -> None:
    """One segment; a checkpoint is there from the second on, so it resumes."""
    assert long_run.run("long", ["--loss", train_loss]) == 0
    last = clone / "outputs" / "long" / "checkpoints" / "last"
    last.mkdir(parents=True, exist_ok=True)
    (last / "trainer_state.json").write_text('{"global_step": 100}')


def test_what_two_segments_both_logged_is_compared(clone, capsys):
    segment(clone, "0.2500")
    segment(clone, "0.2500")
    kept = (clone / "outputs" / "long.segment-2.out").read_text()
    assert "resuming from" in kept and "step 200: train loss 0.2500" in kept and "eval @ step 200" in kept
    assert "step 200: train loss 0.2500" in capsys.readouterr().out  # shown as well as kept
    same = long_run.summary("long")["redone"]
    assert {key: same[key] for key in ("logged_twice", "differ", "steps")} == {
        "logged_twice": 3, "differ": [], "steps": [150, 200]}
    assert same["values"]["train @ 200"] == [("0.2500",), ("0.2500",)]
    assert "3 of 3 logged values are the same" in long_run.redone_sentence(same)

    segment(clone, "0.2501")  # a resume that went astray
    astray = long_run.summary("long")["redone"]
    assert astray["differ"] == ["train @ 200"]
    assert "differing: train @ 200" in long_run.redone_sentence(astray)


def test_a_finished_run_reports_its_own_baseline_with_the_paired_interval():
    facts = {"finished": True, "flags": [], "machines": ["a CPU"], "segments": 2, "resumes": 1,
             "resumed_from_steps": [100], "seconds_computing": 7200, "seconds_paused": 0, "peak_rss_mb": 900,
             "commits": ["abc1234", "abc1234"], "redone": None}
    row = {"epoch": 1, "step": 200, "train_loss": 0.3, "loss": 0.25, "accuracy": 0.91, "f1": 0.91, "train_time": 7000}
    baseline = {"name": "TF-IDF + logistic regression", "metric": "accuracy", "baseline": 0.8, "model": 0.91,
                "difference": 0.11, "interval": [0.05, 0.17], "seconds": 9.0, "examples": 100,
                "train_examples": 300, "background": True, "model_is_better": True}
    data = {"log": facts, "history": [row], "best": {"step": 200, "epoch": 1, "rule": "last"}, "examples": 100,
            "baseline": baseline}
    text = long_run.report_text("long", data, "long")
    assert ("baseline fitted on the same 300 training examples reaches accuracy 0.8000 on the same 100 evaluation "
            "examples; the fine-tuned model 0.9100 (+11.0 points") in text
    assert "baseline" not in long_run.report_text("long", data | {"baseline": None}, "long").split("As one run")[1]
