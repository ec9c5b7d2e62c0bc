"""Where a run is and what it has kept: the typed state every checkpoint saves as trainer_state.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# names that checkpoints written before the state was typed used for the same fields
LEGACY_KEYS = {"eval_loss_sum": "window_loss_sum", "eval_steps_seen": "window_steps"}


@dataclass
class TrainState:
    global_step: int = 0  # optimizer steps taken
    epoch: int = 0  # the epoch the loop is in (0-based)
    step_in_epoch: int = 0  # optimizer steps taken in that epoch: where a resumed run picks up
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per evaluation
    best: dict[str, Any] | None = None  # the kept evaluation: {"metric", "value", "step", "epoch", "rule"}
    best_metrics: dict[str, Any] | None = None  # every metric of the kept evaluation
    evals_since_best: int = 0  # for early stopping
    log_loss_sum: float = 0.0  # training loss summed since the last log line ...
    log_steps: int = 0  # ... over this many steps
    window_loss_sum: float = 0.0  # training loss summed since the last evaluation (its row's train_loss) ...
    window_steps: int = 0  # ... over this many steps
    stopped_early: bool = False  # early stopping or divergence ended the loop before its last step
    stop_reason: str | None = None  # why it stopped early, in words (early stopping, divergence, the time budget)
    diverged_at: int | None = None  # the step whose loss stopped being a number, if any
    train_time: float = 0.0  # seconds spent in optimizer steps (evaluation excluded), across resumes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        renamed = {LEGACY_KEYS.get(k, k): v for k, v in values.items()}
        return cls(**{k: v for k, v in renamed.items() if k in known})
