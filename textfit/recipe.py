"""Recipes: the shipped YAML files (textfit/recipes/*.yaml), and reading one back out of a model card.

`textfit train --recipe NAME` runs a shipped recipe; `textfit recipe list` lists them;
`textfit recipe from-card README.md` turns a card in the Trainer's layout (hyperparameter list, results
table, framework versions) into the recipe that repeats its run, and says which values the card did not give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from textfit.errors import ConfigError

RECIPES = Path(__file__).with_name("recipes")


def shipped_recipes() -> dict[str, Path]:
    return {path.stem: path for path in sorted(RECIPES.glob("*.yaml"))}


def recipe_path(name: str) -> Path:
    """A shipped recipe by name, or a path to a recipe file."""
    recipes = shipped_recipes()
    if name in recipes:
        return recipes[name]
    if Path(name).is_file():
        return Path(name)
    raise ConfigError(f"no recipe {name!r}; shipped recipes: {', '.join(recipes)} (or give a YAML file)")


def describe(path: Path) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data.get("description", ""))


# -------------------------------------------------------------------------------------------- from a card

# card wording -> recipe key; the Trainer's own names first, then what people write by hand
KEY_ALIASES = {
    "learning_rate": "learning_rate", "learning rate": "learning_rate", "lr": "learning_rate",
    "train_batch_size": "train_batch_size", "per_device_train_batch_size": "train_batch_size",
    "train batch size": "train_batch_size",
    # one batch size for training and evaluation alike: "batch size", "train/eval batch size", ...
    "batch_size": "batch_size", "batch size": "batch_size", "train/eval batch size": "batch_size",
    "train and eval batch size": "batch_size", "batch size (train and eval)": "batch_size",
    "batch size (train/eval)": "batch_size", "train & eval batch size": "batch_size",
    "total_train_batch_size": "total_train_batch_size",
    "eval_batch_size": "eval_batch_size", "per_device_eval_batch_size": "eval_batch_size",
    "eval batch size": "eval_batch_size",
    "seed": "seed", "random seed": "seed",
    "optimizer": "optimizer",
    "lr_scheduler_type": "lr_scheduler_type", "lr scheduler type": "lr_scheduler_type",
    "lr scheduler": "lr_scheduler_type", "scheduler": "lr_scheduler_type",
    "lr_scheduler_warmup_steps": "warmup_steps", "warmup_steps": "warmup_steps", "warmup steps": "warmup_steps",
    "lr_scheduler_warmup_ratio": "warmup_ratio", "warmup_ratio": "warmup_ratio", "warmup ratio": "warmup_ratio",
    "num_epochs": "epochs", "num epochs": "epochs", "epochs": "epochs", "number of epochs": "epochs",
    "num_train_epochs": "epochs",
    "training_steps": "max_steps", "training steps": "max_steps", "max_steps": "max_steps",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "gradient accumulation steps": "gradient_accumulation_steps",
    "mixed_precision_training": "mixed_precision", "mixed precision training": "mixed_precision",
    "mixed precision": "mixed_precision",
    "max_length": "max_length", "max_seq_length": "max_length", "max sequence length": "max_length",
    "weight_decay": "weight_decay", "weight decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "early_stopping_patience": "early_stopping_patience",
    "metric_for_best_model": "metric_for_best",
    "max_train_samples": "max_train_samples", "max_eval_samples": "max_eval_samples",
    "eval_steps": "eval_steps",
}
# what a faithful repeat needs; anything not found is reported rather than guessed
ESSENTIAL = ("learning_rate", "train_batch_size", "eval_batch_size", "seed", "adam_beta1", "adam_beta2",
             "adam_epsilon", "lr_scheduler_type", "epochs")
BULLET = r"^\s*(?:[-*+•]|\d+[.)])?\s*"
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
PROSE_PATTERNS = {  # hyperparameters inside sentences: "a learning rate of 2e-5", "batch size of 16", "3 epochs"
    "learning_rate": rf"(?:learning[ _]rate|\blr)\s*(?:of|=|was|is|:)?\s*({NUMBER})",
    "batch_size": r"batch[ _]size\s*(?:of|=|was|is|:)?\s*(\d+)",
    "epochs": r"(?:for\s+)?(\d+(?:\.\d+)?)\s+epochs?\b",
    "seed": r"seed\s*(?:of|=|was|is|:)?\s*(\d+)",
}


@dataclass
class CardReading:
    recipe: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        lines = ["# Recipe read from a model card by `textfit recipe from-card`."]
        lines += [f"# {note}" for note in self.notes]
        if self.missing:
            lines.append(f"# Not found in the card (textfit defaults apply): {', '.join(self.missing)}")
        return "\n".join(lines) + "\n" + yaml.safe_dump(self.recipe, sort_keys=False)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and not re.search(r"[.eE]", text) else value


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        meta = {}
    return (meta if isinstance(meta, dict) else {}), text[match.end():]


KEY = r"([A-Za-z][A-Za-z_ /()&]{1,40}?)"


def _hyperparameters(body: str) -> dict[str, str]:
    """`key: value` lines anywhere in the card, any bullet style, any case; card wording -> recipe key. A line
    may hold several ("Learning rate: 2e-5, epochs: 3"): the rest of its value is read for more known keys."""
    found: dict[str, str] = {}
    for line in body.splitlines():
        match = re.match(BULLET + r"\**" + KEY + r"\**\s*[:=]\s*(.+?)\s*$", line)
        if not match:
            continue
        key = KEY_ALIASES.get(match.group(1).strip().lower())
        if not key:
            continue
        found.setdefault(key, match.group(2).strip().strip("`*"))
        for more in re.finditer(r"(?:^|[,;]|\band\b)\s*" + KEY + r"\s*[:=]\s*([^,;]+)", match.group(2)):
            other = KEY_ALIASES.get(more.group(1).strip().lower())
            if other and other != "optimizer":
                found.setdefault(other, more.group(2).strip().strip("`*"))
    return found


def _optimizer(value: str, recipe: dict[str, Any], notes: list[str]) -> None:
    betas = re.search(rf"betas\s*=\s*\(\s*({NUMBER})\s*,\s*({NUMBER})\s*\)", value)
    epsilon = re.search(rf"(?:epsilon|eps)\s*=\s*({NUMBER})", value)
    decay = re.search(rf"weight_decay\s*=\s*({NUMBER})", value)
    if betas:
        recipe["adam_beta1"], recipe["adam_beta2"] = float(betas.group(1)), float(betas.group(2))
    if epsilon:
        recipe["adam_epsilon"] = float(epsilon.group(1))
    if decay:
        recipe["weight_decay"] = float(decay.group(1))
    if not re.search(r"adam", value, re.I):
        notes.append(f"the card's optimizer is {value!r}; textfit trains with AdamW")


def _results_table(body: str) -> list[dict[str, str]]:
    """Rows of the table whose header has Epoch and Step columns."""
    lines = [ln.strip() for ln in body.splitlines()]
    for i, line in enumerate(lines):
        cells = [c.strip().lower() for c in line.strip("|").split("|")]
        if line.startswith("|") and "epoch" in cells and "step" in cells:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(cells, (c.strip() for c in row.strip("|").split("|")), strict=False)))
            return rows
    return []


def _eval_schedule(rows: list[dict[str, str]], recipe: dict[str, Any], notes: list[str]) -> None:
    try:
        epochs = [float(r["epoch"]) for r in rows]
        steps = [int(r["step"]) for r in rows]
    except (KeyError, ValueError):
        return
    if not rows:
        return
    if all(e.is_integer() for e in epochs[:-1]):
        recipe["eval_strategy"] = "epoch"
    else:
        recipe["eval_strategy"] = "steps"
        recipe["eval_steps"] = steps[0]
    notes.append(f"results table: {len(rows)} evaluations, last at step {steps[-1]} (epoch {epochs[-1]:g})")


def read_card(text: str) -> CardReading:
    """The recipe a card describes, and what it leaves out. Nothing is guessed: absent stays absent."""
    meta, body = _front_matter(text)
    reading = CardReading()
    recipe, notes = reading.recipe, reading.notes
    _model_and_data(meta, body, recipe)
    for key, value in _stated_values(body, notes).items():
        _read_setting(key, value, recipe, notes)
    _batch_sizes(recipe, notes)
    _eval_schedule(_results_table(body), recipe, notes)
    recipe["head_learning_rate"] = 0.0
    notes.append("head_learning_rate 0: a card's run trains its head at the learning rate, as the Trainer does")
    versions = re.findall(BULLET + r"(Transformers|Pytorch|Datasets|Tokenizers)\s+([\w.+-]+)", body, re.M)
    if versions:
        notes.append("card's framework versions: " + ", ".join(f"{n} {v}" for n, v in versions))
    reading.missing = [key for key in ESSENTIAL if key not in recipe]
    order = ["card_model", "model", "dataset", *ESSENTIAL]
    reading.recipe = {k: recipe[k] for k in order if k in recipe} | {k: v for k, v in recipe.items() if k not in order}
    return reading


def _model_and_data(meta: dict[str, Any], body: str, recipe: dict[str, Any]) -> None:
    """The base model (a packaged one when textfit ships it) and the dataset, from the metadata or the prose."""
    base = meta.get("base_model")
    link = re.search(r"fine-tuned version of \[([^\]]+)\]", body)
    base = base if isinstance(base, str) else (link.group(1) if link else None)
    if base:
        from textfit.models import PACKAGED_MODELS

        packaged = next((name for name, spec in PACKAGED_MODELS.items() if spec.hub_id == base), None)
        recipe["card_model"] = base
        recipe["model"] = packaged or base
    datasets = meta.get("datasets")
    named = re.search(r"on the ([\w./-]+) dataset", body)
    if isinstance(datasets, list) and datasets:
        recipe["dataset"] = str(datasets[0])
    elif named and named.group(1) != "None":
        recipe["dataset"] = named.group(1)


def _stated_values(body: str, notes: list[str]) -> dict[str, str]:
    """The hyperparameter list, completed from prose for what the list leaves out (each such reading noted)."""
    values = _hyperparameters(body)
    for key, pattern in PROSE_PATTERNS.items():
        if key not in values:
            match = re.search(pattern, body, re.I)
            if match:
                values[key] = match.group(1)
                notes.append(f"{key} read from prose: {match.group(0)!r}")
    return values


def _read_setting(key: str, value: str, recipe: dict[str, Any], notes: list[str]) -> None:
    number = re.match(rf"^({NUMBER})\b", value)
    if key == "optimizer":
        _optimizer(value, recipe, notes)
    elif key == "lr_scheduler_type":
        recipe[key] = value.split()[0].lower()
    elif key == "mixed_precision":
        lowered = value.lower()
        recipe["precision"] = "fp32" if "none" in lowered else "bf16" if "bf16" in lowered else "fp16"
        if recipe["precision"] == "fp16":  # a GPU's arithmetic: repeat the run in what this machine does best
            recipe["precision"] = "auto"
            notes.append(f"the card trained with mixed precision {value!r} (fp16, a GPU's); precision auto "
                         "trains in bf16 where the CPU has it, else fp32")
    elif key == "metric_for_best":
        recipe[key] = "loss" if "loss" in value.lower() else value.lower().replace("validation ", "")
    elif number:
        recipe[key] = _number(number.group(1))


def _batch_sizes(recipe: dict[str, Any], notes: list[str]) -> None:
    shared = recipe.pop("batch_size", None)
    if shared is not None:  # one batch size stated for both
        for key in ("train_batch_size", "eval_batch_size"):
            if key not in recipe:
                recipe[key] = shared
                notes.append(f"{key} {shared}: the card gives one batch size for training and evaluation")
    total = recipe.pop("total_train_batch_size", None)
    if total is not None:  # textfit's train_batch_size is the total over devices and accumulation
        recipe["train_batch_size"] = total
