"""Look at the data before training on it: what `textfit check` prints and `train` warns about.

Labels and their balance, duplicate texts (and duplicates that disagree on their label), texts that sit in both
the training and the evaluation split (they inflate the evaluation), how much the chosen max length cuts, and
the languages present. Every warning gives counts and the rows (file:line) to look at.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from textfit.data.dataset import Example
from textfit.task import SINGLE, Task

IMBALANCE_RATIO = 3.0  # most / least frequent label at which we suggest class weights
EXAMPLES_SHOWN = 3
TRUNCATION_SAMPLE = 2000  # texts tokenized to measure truncation; enough for a share within ~2 points


@dataclass
class DataReport:
    lines: list[str] = field(default_factory=list)  # what the data is
    warnings: list[str] = field(default_factory=list)  # what may hurt the model or the honesty of its numbers


def _shown(examples: list[Example]) -> str:
    more = f" and {len(examples) - EXAMPLES_SHOWN} more" if len(examples) > EXAMPLES_SHOWN else ""
    return ", ".join(str(ex.extra.get("id") or ex.where) for ex in examples[:EXAMPLES_SHOWN]) + more


def _key(ex: Example) -> tuple[str, str | None]:
    return ex.text.strip(), ex.text_pair.strip() if ex.text_pair else None


def check_data(train: list[Example], evaluation: list[Example], label_names: list[str], *, tokenizer=None,
               max_length: int | None = None, seed: int = 42, task: Task = SINGLE) -> DataReport:
    report = DataReport()
    for name, examples in (("train", train), ("evaluation", evaluation)):
        if task.has_classes:
            _label_counts(name, examples, label_names, task, report)
        elif examples:
            values = [float(ex.label) for ex in examples]
            report.lines.append(f"{name}: {len(examples):,} texts; target {min(values):g} to {max(values):g}, "
                                f"mean {sum(values) / len(values):.3g}")
    _duplicates(train, evaluation, report)
    if tokenizer is not None and max_length:
        _truncation(train, tokenizer, min(max_length, tokenizer.model_max_length), seed, report)
    languages = Counter(ex.extra.get("language") for ex in train if ex.extra.get("language"))
    if languages:
        report.lines.append("languages in train: " + ", ".join(f"{lang} {n:,}" for lang, n in languages.most_common()))
    return report


def _label_counts(name: str, examples: list[Example], label_names: list[str], task: Task, report: DataReport) -> None:
    """Examples per label; warnings for imbalance in train and for labels a split never shows."""
    counts = Counter(i for ex in examples for i in task.label_ids(ex.label))
    shown = ", ".join(f"{label_names[i]} {counts.get(i, 0):,}" for i in range(len(label_names)))
    per_text = f" ({sum(len(ex.label) for ex in examples) / max(len(examples), 1):.2f} per text)" \
        if task.label_sets else ""
    report.lines.append(f"{name}: {len(examples):,} texts; labels{per_text}: {shown}")
    present = [counts[i] for i in range(len(label_names)) if counts.get(i)]
    if name == "train" and present and max(present) / min(present) >= IMBALANCE_RATIO:
        most, least = counts.most_common()[0], counts.most_common()[-1]
        advice = "; consider --class-weights auto" if task.one_label_per_text else ""
        report.warnings.append(
            f"labels are imbalanced in train: {label_names[most[0]]} {most[1]:,} vs {label_names[least[0]]} "
            f"{least[1]:,} ({most[1] / least[1]:.1f}:1){advice}")
    missing = [label_names[i] for i in range(len(label_names)) if not counts.get(i)]
    if missing and examples:
        report.warnings.append(f"{name} has no example of: {', '.join(missing)}")


def _duplicates(train: list[Example], evaluation: list[Example], report: DataReport) -> None:
    """Texts repeated in train (with different labels, worse), and evaluation texts that train also holds."""
    by_text: dict[tuple, list[Example]] = defaultdict(list)
    for ex in train:
        by_text[_key(ex)].append(ex)
    repeated = [group for group in by_text.values() if len(group) > 1]
    if repeated:
        extra = sum(len(group) - 1 for group in repeated)
        report.warnings.append(f"{extra:,} duplicate texts in train ({len(repeated):,} texts occur more than once), "
                               f"e.g. {_shown([ex for group in repeated for ex in group])}")
        conflicting = [group for group in repeated if len({str(ex.label) for ex in group}) > 1]
        if conflicting:
            report.warnings.append(f"{len(conflicting):,} texts appear in train with different labels, e.g. "
                                   f"{_shown([ex for group in conflicting for ex in group])}")
    shared = [ex for ex in evaluation if _key(ex) in by_text]
    if shared:
        report.warnings.append(f"{len(shared):,} evaluation texts also appear in train (they flatter the evaluation),"
                               f" e.g. {_shown(shared)}")


def _truncation(train: list[Example], tokenizer, max_length: int, seed: int, report: DataReport) -> None:
    """How many train texts (of a seeded sample) max_length cuts, and how much of them; a warning from a quarter."""
    sample = train if len(train) <= TRUNCATION_SAMPLE else random.Random(seed).sample(train, TRUNCATION_SAMPLE)
    lengths = [len(ids) for ids in tokenizer([ex.text for ex in sample],
                                             [ex.text_pair for ex in sample] if sample[0].text_pair else None,
                                             truncation=False)["input_ids"]]
    cut = [n for n in lengths if n > max_length]
    of = f"of a sample of {len(sample):,}" if len(sample) < len(train) else f"of {len(sample):,}"
    line = f"max_length {max_length}: {len(cut):,} {of} train texts are truncated ({len(cut) / len(sample):.0%})"
    if cut:
        dropped = sum((n - max_length) / n for n in cut) / len(cut)
        line += f", losing {dropped:.0%} of their tokens on average (longest {max(cut):,} tokens)"
    report.lines.append(line)
    if len(cut) / len(sample) >= 0.25:
        report.warnings.append(line + "; a larger max_length keeps more of each text")
