"""Tokenize once, then batch by length: padding only to the longest text of each batch.

Padding every batch to max_length wastes a quarter of the compute on IMDB at 256 tokens and half at 512
(../shared/notes/cpu-baselines.md). Training batches are grouped by length inside shuffled mega-batches,
so the order stays random; evaluation and prediction batches are simply sorted by length.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

MEGABATCH_MULT = 50  # batches per sorted group: ~1% padding left, order still random (Trainer uses 50 too)


@dataclass
class Encoded:
    """Token ids of a list of texts (and their labels, when known)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def encode(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *, max_length: int,
           labels: Sequence[int] | None = None) -> Encoded:
    """Tokenize without padding; truncation at max_length as in training and prediction alike."""
    out = tokenizer(list(texts), list(pairs) if pairs is not None else None, truncation=True,
                    max_length=max_length, padding=False)
    token_types = out.get("token_type_ids") if pairs is not None else None
    return Encoded(out["input_ids"], token_types, list(labels) if labels is not None else None)


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                           group_by_length: bool = True) -> list[list[int]]:
    """The batches of one epoch, a pure function of (seed, epoch) so a resumed run sees the same order."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        group = batch_size * MEGABATCH_MULT
        order = [i for start in range(0, len(order), group)
                 for i in sorted(order[start:start + group], key=lambda i: -lengths[i])]
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)  # else every group would start with its longest batch
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Longest first, for evaluation and prediction: a memory problem shows at the first batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def collate(data: Encoded, indices: Sequence[int], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad the selected rows to the longest among them."""
    width = max(len(data.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        seq = data.input_ids[i]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if data.token_type_ids is not None:
        types = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            seq = data.token_type_ids[i]
            types[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        batch["token_type_ids"] = types
    if data.labels is not None:
        batch["labels"] = torch.tensor([data.labels[i] for i in indices], dtype=torch.long)
    return batch
