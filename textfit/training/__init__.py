"""Training: from a TrainConfig to an output folder.

    finetune.py     FineTune, the recipe: setup() -> train() -> save()
    state.py        TrainState: where the loop is and what it kept (each checkpoint's trainer_state.json)
    callbacks.py    what observes the loop: the console and experiment tracking (tune.py adds pruning)
    model.py        the model: its task head, attention kernels, head units when saved
    optim.py        optimizer, schedule, class weights
    budget.py       --time-budget: the probe, the plan, the deadline
    distill.py      Distill: FineTune whose loss also follows a teacher's scores (a smaller student)
    evaluation.py   logits over a data set across processes
    checkpoints.py  checkpoints/best and checkpoints/last, written whole then swapped in; resume
    output.py       the output folder, the card's data, and the Result that train() returns
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from textfit.baseline import BaselineJob
from textfit.config import TrainConfig, check_known
from textfit.training.callbacks import Callback
from textfit.training.distill import Distill
from textfit.training.finetune import FineTune, load_data
from textfit.training.output import Result

__all__ = ["Callback", "Distill", "FineTune", "Result", "load_data", "train"]


def train(config: TrainConfig | None = None, /, *, callbacks: list[Callback] | None = None,
          fixed: Collection[str] = (), started: float | None = None, early_baseline: BaselineJob | None = None,
          **settings: Any) -> Result:
    """Fine-tune a model and write its output folder; returns what it kept and found.

        textfit.train(TrainConfig(dataset="reviews.csv", output_dir="outputs/reviews"))
        textfit.train(dataset="reviews.csv", model="minilm-l6", epochs=2, output_dir="outputs/reviews")

    Settings are TrainConfig's fields (the `textfit train` flags with underscores); given with a config, they
    override it. `callbacks` replace the default ones (the console and tracking). With `teacher` set, the model
    learns that fine-tuned model's scores as well as the labels (distillation; see training/distill.py).
    With `time_budget` set, the plan keeps the settings given here (and those named in `fixed`) as they are and
    counts from `started` (time.time(); default: now). `early_baseline`: the TF-IDF baseline's job, if the
    caller started it already (BaselineJob.from_config, as `textfit train` does before importing PyTorch).
    """
    if config is None:
        config = TrainConfig.from_sources(None, **settings)
    elif settings:
        check_known(settings)
        config = dataclasses.replace(config, **settings)
    run = (Distill if config.teacher else FineTune)(config, callbacks, fixed={*fixed, *settings}, started=started,
                                                   early_baseline=early_baseline)
    run.setup()
    run.train()
    return run.save()
