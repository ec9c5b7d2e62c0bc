"""Tokenize once, then batch by length: padding only to the longest text of each batch.

Padding every batch to max_length wastes a quarter of the compute on IMDB at 256 tokens and half at 512
(../shared/notes/cpu-baselines.md). Training batches are grouped by length inside shuffled mega-batches,
so the order stays random; evaluation and prediction batches are simply sorted by length.

Token ids are kept as one int32 array per text, tokenized a chunk of texts at a time: as Python lists, with the
tokenizer's whole output alive at once, the 50,000 reviews of a full-IMDB run took 1,892 MB; now 230 MB
(benchmarks/results/memory.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textfit.errors import ConfigError
from textfit.io import cache_root

MEGABATCH_MULT = 50  # batches per sorted group: ~1% padding left, order still random (Trainer uses 50 too)
CHUNK = 1000  # texts per tokenizer call: its full output costs ~100 bytes per token beyond the ids, and the
# allocator keeps what it frees, so one call over all the texts leaves that much behind (results/memory.md)


@dataclass
class Encoded:
    """Token ids of a list of texts (and their labels, when known)."""

    input_ids: list[np.ndarray]  # int32, one array per text (4 bytes a token; a list of ints costs ~36)
    token_type_ids: list[np.ndarray] | None
    labels: list[Any] | None = None  # class indices, multi-hot lists or target values

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


TRUNCATIONS = ("head", "tail", "head+tail")
HEAD_SHARE = 0.25  # head+tail keeps the first quarter of the budget and the last three quarters (128 + 382 of 510)


def encode(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *, max_length: int,
           labels: Sequence[int] | None = None, cache_dir: Path | None = None, truncation: str = "head") -> Encoded:
    """Tokenize without padding; truncation at max_length as in training and prediction alike.

    `truncation` says which tokens a long text keeps: its beginning (head), its end (tail), or both (head+tail:
    reviews tend to put their verdict last, which head-only truncation throws away).

    With `cache_dir`, token ids are kept there under a key of (tokenizer, max_length, texts), so a second run
    over the same data skips tokenization (25,000 IMDB reviews: ~15 s on 2 cores).
    """
    if truncation not in TRUNCATIONS:
        raise ConfigError(f"truncation={truncation!r}: choose one of {', '.join(TRUNCATIONS)}")
    if truncation != "head" and pairs is not None:
        raise ConfigError(f"truncation={truncation!r} is for single texts; sentence pairs are truncated at the head")
    path = None
    if cache_dir is not None:  # the key hashes the whole tokenizer (~70 ms): only worth it when a cache is read
        key = _cache_key(tokenizer, texts, pairs, max_length) + ("" if truncation == "head" else f"-{truncation}")
        path = cache_dir / f"{key}.npz"
    if path is not None and path.is_file():
        input_ids, token_types = _load_cached(path)
    elif truncation == "head":
        input_ids, token_types = token_ids(tokenizer, texts, pairs, truncation=True, max_length=max_length)
    else:
        prefix, suffix = special_tokens_around(tokenizer)
        budget = max_length - len(prefix) - len(suffix)
        content, _ = token_ids(tokenizer, texts, add_special_tokens=False, truncation=False)
        input_ids = [np.concatenate((prefix, keep_tokens(ids, budget, truncation), suffix)) for ids in content]
        token_types = None
    if path is not None and not path.is_file():
        _save_cached(path, input_ids, token_types)
    return Encoded(input_ids, token_types, list(labels) if labels is not None else None)


def encode_windows(tokenizer, texts: Sequence[str], *, max_length: int) -> tuple[Encoded, list[int]]:
    """Every text as overlapping windows of max_length tokens (half a window apart), so nothing is cut off;
    returns the windows and, for each, the index of its text. Short texts are one window."""
    prefix, suffix = special_tokens_around(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    stride = max(1, budget // 2)
    windows, owners = [], []
    for i, ids in enumerate(token_ids(tokenizer, texts, add_special_tokens=False, truncation=False)[0]):
        start = 0
        while True:
            windows.append(np.concatenate((prefix, ids[start:start + budget], suffix)))
            owners.append(i)
            if start + budget >= len(ids):
                break
            start += stride
    return Encoded(windows, None), owners


def token_ids(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None,
              **options: Any) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The tokenizer's ids (and, for pairs, token types) as int32 arrays, CHUNK texts at a time."""
    ids: list[np.ndarray] = []
    with_types = pairs is not None and "token_type_ids" in tokenizer.model_input_names  # RoBERTa's have none
    types: list[np.ndarray] | None = [] if with_types else None
    for start in range(0, len(texts), CHUNK):
        out = tokenizer(list(texts[start:start + CHUNK]),
                        list(pairs[start:start + CHUNK]) if pairs is not None else None,
                        padding=False, return_attention_mask=False, **options)
        ids += [np.asarray(row, dtype=np.int32) for row in out["input_ids"]]
        if types is not None:
            types += [np.asarray(row, dtype=np.int32) for row in out["token_type_ids"]]
    return ids, types


def average_windows(per_window: np.ndarray, owners: Sequence[int], texts: int) -> np.ndarray:
    """One row of scores per text: the mean over its windows (encode_windows' `owners` say whose each one is)."""
    out = np.zeros((texts, per_window.shape[1]), dtype=per_window.dtype)
    np.add.at(out, np.asarray(owners), per_window)
    return out / np.bincount(np.asarray(owners), minlength=texts)[:, None]


def special_tokens_around(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """The ids the tokenizer puts before and after a single text ([CLS] ... [SEP], <s> ... </s>)."""
    full = tokenizer("a")["input_ids"]
    content = tokenizer("a", add_special_tokens=False)["input_ids"]
    for start in range(len(full) - len(content) + 1):
        if full[start:start + len(content)] == content:
            return (np.asarray(full[:start], dtype=np.int32),
                    np.asarray(full[start + len(content):], dtype=np.int32))
    raise ConfigError(f"cannot tell where {type(tokenizer).__name__} puts its special tokens; use truncation=head")


def keep_tokens(ids: np.ndarray, budget: int, truncation: str) -> np.ndarray:
    if len(ids) <= budget:
        return ids
    if truncation == "tail":
        return ids[-budget:]
    head = int(budget * HEAD_SHARE)
    return np.concatenate((ids[:head], ids[len(ids) - (budget - head):]))


def _cache_key(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int) -> str:
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # its JSON, less the truncation/padding state that each call sets
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        digest.update(json.dumps(spec, sort_keys=True).encode())
    else:
        digest.update(repr(tokenizer).encode())
    digest.update(f"|{max_length}|{type(tokenizer).__name__}|{len(texts)}|".encode())
    for column in (texts, pairs or ()):
        digest.update("\x00".join(column).encode())
        digest.update(b"\x01")
    return digest.hexdigest()[:32]


def _flatten(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    return (np.concatenate(rows) if rows else np.zeros(0)).astype(np.int32), offsets


def _save_cached(path: Path, input_ids: list[np.ndarray], token_types: list[np.ndarray] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(("ids", "offsets"), _flatten(input_ids), strict=True))
    if token_types is not None:
        arrays["types"] = _flatten(token_types)[0]
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_cached(path: Path) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Each text's ids are a view into the one array read (no copy per text)."""
    with np.load(path) as data:
        ids, offsets = data["ids"], data["offsets"].tolist()
        types = data.get("types")
    spans = list(itertools.pairwise(offsets))
    return [ids[a:b] for a, b in spans], ([types[a:b] for a, b in spans] if types is not None else None)


def default_cache_dir() -> Path:
    """Token ids go in tokens/ under textfit's cache (see io.cache_root)."""
    return cache_root() / "tokens"


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


def collate(data: Encoded, indices: Sequence[int], pad_token_id: int, multiple: int = 1) -> dict[str, torch.Tensor]:
    """Pad the selected rows to the longest among them, rounded up to a multiple of `multiple`."""
    lengths = np.array([len(data.input_ids[i]) for i in indices])
    width = -(-int(lengths.max()) // multiple) * multiple
    batch = {"input_ids": _padded(data.input_ids, indices, width, pad_token_id),
             "attention_mask": torch.from_numpy((np.arange(width) < lengths[:, None]).astype(np.int64))}
    if data.token_type_ids is not None:
        batch["token_type_ids"] = _padded(data.token_type_ids, indices, width, 0)
    if data.labels is not None:  # class indices; or floats: multi-hot label sets, regression targets
        values = [data.labels[i] for i in indices]
        batch["labels"] = torch.tensor(values, dtype=torch.long if isinstance(values[0], int) else torch.float32)
    return batch


def _padded(rows: list[np.ndarray], indices: Sequence[int], width: int, pad: int) -> torch.Tensor:
    out = np.full((len(indices), width), pad, dtype=np.int64)
    for row, i in enumerate(indices):
        out[row, :len(rows[i])] = rows[i]
    return torch.from_numpy(out)
