"""The budget harness stops a run at several budgets in one go: what it copies at each must be what a user who
killed the run then would have had, or the budget table compares the plan with the wrong models."""

from __future__ import annotations

import json
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import budget

# A stand-in for a Trainer run: complete checkpoints at about 0.5 s and 1.5 s, a third begun at 2.2 s and never
# finished (no trainer_state.json), then a long wait that the harness must cut.
TRAINER_LIKE = """
import pathlib, sys, time
out = pathlib.Path(sys.argv[1])
for step, at in ((1, 0.5), (2, 1.5)):
    time.sleep(max(0, at - (time.time() - START)))
    (out / f"checkpoint-{step}").mkdir(parents=True)
    (out / f"checkpoint-{step}" / "model.safetensors").write_text(str(step))
    (out / f"checkpoint-{step}" / "optimizer.pt").write_text("state")
    (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
time.sleep(max(0, 2.2 - (time.time() - START)))
(out / "checkpoint-3").mkdir()
(out / "checkpoint-3" / "model.safetensors").write_text("3")
time.sleep(60)
"""

# A stand-in for a run that ends by itself at about 1.2 s with its folder written.
ENDS_EARLY = """
import pathlib, sys, time
out = pathlib.Path(sys.argv[1])
time.sleep(1.2)
out.mkdir(parents=True)
(out / "README.md").write_text("card")
(out / "model.safetensors").write_text("final")
"""


def script(body: str) -> str:
    return "import time; START = time.time()\n" + body


def test_each_budget_gets_the_last_complete_checkpoint_written_by_then(tmp_path):
    out = tmp_path / "run"
    stops = budget.run_with_snapshots([sys.executable, "-c", script(TRAINER_LIKE), str(out)], [1.0, 2.0, 3.0],
                                      "trainer", out, tmp_path / "run.log")
    written = [(stop["model"] / "model.safetensors").read_text() for stop in stops]
    assert written == ["1", "2", "2"]  # the unfinished checkpoint-3 does not count
    assert [stop["seconds"] for stop in stops] == [1.0, 2.0, 3.0]
    assert not any(stop["ended_by_itself"] for stop in stops)
    assert not (stops[0]["model"] / "optimizer.pt").exists()  # the copy is the model, not the optimizer
    assert (stops[-1]["model"] / "trainer_state.json").exists()


def test_a_run_that_ends_before_a_budget_keeps_its_own_end_time(tmp_path):
    out = tmp_path / "run"
    stops = budget.run_with_snapshots([sys.executable, "-c", script(ENDS_EARLY), str(out)], [0.5, 3.0],
                                      "default", out, tmp_path / "run.log")
    assert stops[0]["model"] is None and not stops[0]["ended_by_itself"]  # nothing written at 0.5 s
    assert stops[1]["ended_by_itself"] and 1.0 < stops[1]["seconds"] < 3.0
    assert (stops[1]["model"] / "model.safetensors").read_text() == "final"


def test_the_table_holds_only_this_machines_cells():
    from train_speed import machine

    def row(where: str, accuracy: float) -> dict:
        return {"machine": where, "data": "sst2", "budget_min": 5, "seed": 42, "method": "plan", "seconds": 290.0,
                "ended_by_itself": True, "model": "m", "accuracy": accuracy, "scored_on": 100}

    table = budget.report([row(machine(), 0.8111), row("Intel Xeon, 2 cores (amx_bf16)", 0.8999)])
    assert "0.8111" in table and "0.8999" not in table  # a budget buys another run on another CPU
    assert "also keeps cells measured on Intel Xeon, 2 cores (amx_bf16)" in table


def test_measuring_again_keeps_the_earlier_cells_as_the_evidence_before(tmp_path, monkeypatch):
    import argparse

    from train_speed import machine

    monkeypatch.setattr(budget, "RESULTS", tmp_path)
    here = machine()

    def row(method: str, seed: int, accuracy: float | None, where: str = here) -> dict:
        return {"machine": where, "commit": "abc1234", "data": "imdb", "budget_min": 5, "seed": seed,
                "method": method, "seconds": 290.0, "ended_by_itself": True, "model": "m", "accuracy": accuracy,
                "scored_on": 100}

    rows = [row("plan", 42, 0.8035), row("plan", 43, 0.81), row("trainer", 42, None), row("plan", 42, 0.9, "Xeon")]
    again = argparse.Namespace(data=["imdb"], budgets=[5.0], seeds=[42], methods=["plan"])
    kept = budget.supersede(rows, here, again)
    assert kept == rows[1:]  # only this machine's chosen cell is measured again
    assert json.loads((tmp_path / "budget-superseded.json").read_text()) == rows[:1]
    assert "- imdb, 5 min, seed 42, plan (code abc1234): accuracy 0.8035" in budget.report(kept)
