"""Trim a Unigram (SentencePiece) vocabulary to the tokens a training set uses.

A multilingual encoder carries a 250k-token vocabulary: in multilingual-e5-small the word embeddings are 96M of
118M parameters, so the saved model is mostly rows no training text ever touches, and every optimizer step
updates them. Keeping the used rows (and the special tokens) shrinks the model and the step; a text made of
the kept pieces tokenizes exactly as before, because Unigram's best segmentation over a subset of pieces that
still holds the old best path is that path. Texts with pieces never seen in training fall back to other kept
pieces or to <unk>, which is what trimming costs in accuracy: measure it (benchmarks/multilingual.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch

from textfit.errors import ConfigError


def trim_vocabulary(tokenizer, model, texts: Sequence[str], batch_size: int = 1000):
    """(tokenizer, model) -> (trimmed tokenizer, model with the matching embedding rows, a note for the log)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"]["type"] != "Unigram":
        raise ConfigError(f"trim_vocab: only Unigram (SentencePiece) vocabularies can be trimmed; this tokenizer's "
                          f"model is {state['model']['type']}. Leave trim_vocab off for this model.")
    keep = _used_ids(tokenizer, state, texts, batch_size)
    new_id = {old: new for new, old in enumerate(keep)}
    trimmed = _trimmed_tokenizer(tokenizer, state, keep, new_id)
    old_rows = model.get_input_embeddings().weight.shape[0]
    _keep_embedding_rows(model, keep, new_id, trimmed.pad_token_id)
    note = (f"vocabulary trimmed to the {len(keep):,} tokens the training data uses (from {old_rows:,} embedding "
            f"rows): {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    return trimmed, model, note


def _used_ids(tokenizer, state: dict, texts: Sequence[str], batch_size: int) -> list[int]:
    """The ids the texts tokenize to, with every special and added token, in vocabulary order."""
    used: set[int] = set(tokenizer.all_special_ids)
    used.update(token["id"] for token in state.get("added_tokens", []))
    for start in range(0, len(texts), batch_size):
        for ids in tokenizer(list(texts[start:start + batch_size]), add_special_tokens=False)["input_ids"]:
            used.update(ids)
    return sorted(used)


def _trimmed_tokenizer(tokenizer, state: dict, keep: list[int], new_id: dict[int, int]):
    """The same Unigram pipeline over the kept pieces; `state` (the tokenizer's JSON) is rewritten in place."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    unigram = state["model"]
    unigram["vocab"] = [unigram["vocab"][old] for old in keep]
    unigram["unk_id"] = new_id[unigram["unk_id"]]
    for token in state.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    _remap_post_processor(state.get("post_processor"), new_id)
    specials = {name: getattr(tokenizer, name) for name in
                ("bos_token", "eos_token", "cls_token", "sep_token", "pad_token", "unk_token", "mask_token")
                if getattr(tokenizer, name, None) is not None}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)),
                                   model_max_length=tokenizer.model_max_length, **specials)


def _keep_embedding_rows(model, keep: list[int], new_id: dict[int, int], pad_id: int | None) -> None:
    """Replace the word embeddings by their kept rows, and move the config's special ids with them."""
    embedding = torch.nn.Embedding(len(keep), model.config.hidden_size, padding_idx=pad_id)
    with torch.no_grad():
        embedding.weight.copy_(model.get_input_embeddings().weight[torch.tensor(keep)])
    model.set_input_embeddings(embedding)
    model.config.vocab_size = len(keep)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        old = getattr(model.config, name, None)
        if old is not None:
            setattr(model.config, name, new_id.get(old))


def _remap_post_processor(processor: dict | None, new_id: dict[int, int]) -> None:
    """The template that adds <s> ... </s> names its tokens' ids; they move with the trim."""
    if not processor:
        return
    if processor.get("type") == "Sequence":
        for inner in processor.get("processors", []):
            _remap_post_processor(inner, new_id)
    elif processor.get("type") == "TemplateProcessing":
        for special in processor.get("special_tokens", {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    elif processor.get("type") in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            token, old = processor[key]
            processor[key] = [token, new_id[old]]
