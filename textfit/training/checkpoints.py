"""The run's checkpoints, each written whole in a staging folder and then swapped in, so a kill at any moment
leaves the previous one intact:
- checkpoints/best: the kept model's weights and its mistakes, the source of the final folder;
- checkpoints/last: everything a resumed run needs (weights, optimizer, schedule, RNG states, the TrainState).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from accelerate import Accelerator

from textfit.config import TrainConfig, save_recipe
from textfit.errors import ConfigError, DiskFull
from textfit.io import atomic_write_json, atomic_write_text, replace_dir
from textfit.training.state import TrainState

FINAL_FILES = ("README.md", "metrics.json", "model.safetensors")  # their presence marks a finished run
# settings that may differ when resuming: they change nothing the checkpoint holds
RESUME_IGNORED = ("resume", "overwrite", "keep_checkpoints", "save_steps", "output_dir", "baseline")
SCORES = "eval_scores.npy"  # the kept model's evaluation scores, for the baseline's paired comparison
LOW_SPACE = 64 * 2**20  # a write failing with less free space than this failed for want of it


def check_output_dir(config: TrainConfig, accelerator: Accelerator) -> None:
    """Refuse to overwrite a finished model or to start over an interrupted run unless told to."""
    out = Path(config.output_dir)
    checkpoints = out / "checkpoints"
    if accelerator.is_main_process:
        recover(checkpoints)
    accelerator.wait_for_everyone()
    finished = any((out / f).exists() for f in FINAL_FILES)
    interrupted = (checkpoints / "last").is_dir()
    if config.overwrite:
        if accelerator.is_main_process and checkpoints.exists():
            shutil.rmtree(checkpoints)
        accelerator.wait_for_everyone()
    elif config.resume and not interrupted:
        raise ConfigError(f"{out}: nothing to resume (no checkpoints/last); run without --resume")
    elif not config.resume and interrupted:
        raise ConfigError(f"{out}: holds an interrupted run; pass --resume to continue it "
                          "or --overwrite to start over")
    elif not config.resume and finished:
        raise ConfigError(f"{out}: holds a finished model; pass --overwrite to replace it "
                          "or choose another --output-dir")


def recover(folder: Path) -> None:
    """A kill between the two renames of replace_dir leaves the previous checkpoint as .NAME.old: put it back."""
    for name in ("last", "best"):
        old = folder / f".{name}.old"
        if old.is_dir() and not (folder / name).exists():
            os.replace(old, folder / name)


@contextlib.contextmanager
def space_checked(staging: Path, what: str) -> Iterator[None]:
    """A write that fails for want of space becomes a DiskFull error saying what is intact; the partial staging
    folder is removed so the space it took is free again."""
    try:
        yield
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError("... write failed")
        free = shutil.disk_usage(staging.parent if staging.parent.exists() else Path.cwd()).free
        if getattr(exc, "errno", None) not in (errno.ENOSPC, errno.EDQUOT) and free > LOW_SPACE:
            raise
        shutil.rmtree(staging, ignore_errors=True)
        last = staging.parent / "last" / "trainer_state.json"
        intact = (f"the previous checkpoint (step {json.loads(last.read_text())['global_step']}) is intact: free "
                  "some space and run the same command with --resume") if last.is_file() else \
            "no earlier checkpoint was written: free some space and run the same command again"
        raise DiskFull(f"{staging.parent}: no space left on the device while writing {what} "
                       f"({free / 2**20:.0f} MiB free); {intact}") from None


def save_best(accelerator: Accelerator, model: Any, folder: Path, mistakes: list[dict[str, Any]],
              scores: np.ndarray) -> None:
    """The kept model's weights (already in target units), its most confident mistakes and its scores."""
    staging = folder / ".best-staging"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        with space_checked(staging, "the best checkpoint"):
            _write_best(model, staging, mistakes, scores)
        replace_dir(staging, folder / "best")
    accelerator.wait_for_everyone()


def _write_best(model: Any, staging: Path, mistakes: list[dict[str, Any]], scores: np.ndarray) -> None:
    model.save_pretrained(staging, safe_serialization=True)
    atomic_write_text(staging / "errors.jsonl", "".join(json.dumps(m, ensure_ascii=False) + "\n"
                                                        for m in mistakes))
    np.save(staging / SCORES, np.asarray(scores, dtype=np.float32))


def save_last(accelerator: Accelerator, folder: Path, state: TrainState, config: TrainConfig) -> None:
    """Weights, optimizer, schedule and RNG states (Accelerate's save_state), the TrainState and the settings."""
    staging = folder / ".last-staging"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with space_checked(staging, f"the checkpoint of step {state.global_step}"):
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            atomic_write_json(staging / "trainer_state.json", state.to_json())
            save_recipe(config, staging / "recipe.yaml")
    if accelerator.is_main_process:
        replace_dir(staging, folder / "last")
    accelerator.wait_for_everyone()


def saved_settings(folder: Path, names: Iterable[str]) -> dict[str, Any]:
    """These settings as checkpoints/last saved them (nothing when there is no checkpoint yet)."""
    recipe = folder / "last" / "recipe.yaml"
    if not recipe.is_file():
        return {}
    saved = yaml.safe_load(recipe.read_text())
    return {name: saved[name] for name in names if name in saved}


def default_settings() -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def load_last(accelerator: Accelerator, folder: Path, config: TrainConfig) -> TrainState:
    """Restore checkpoints/last into the prepared objects; refuses settings that differ from the saved ones."""
    last = folder / "last"
    saved = yaml.safe_load((last / "recipe.yaml").read_text())
    now, defaults = config.to_dict(), default_settings()
    # a setting that the checkpoint's textfit did not know yet ran at its default
    changed = [k for k in now if k not in RESUME_IGNORED and saved.get(k, defaults[k]) != now[k]]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise ConfigError(f"{last}: cannot resume with different settings ({diffs})")
    accelerator.load_state(str(last))
    return TrainState.from_json(json.loads((last / "trainer_state.json").read_text()))
