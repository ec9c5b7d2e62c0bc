"""Length-grouped batches: every example once per epoch, far less padding, order reproducible from the seed."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from textfit.batching import TRUNCATIONS, collate, encode, length_grouped_batches, sorted_batches


def as_lists(rows) -> list[list[int]]:
    return [row.tolist() for row in rows]


def padded_tokens(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def imdb_lengths(imdb_sample) -> list[int]:
    return [len(json.loads(line)["text"].split()) for line in (imdb_sample / "train.jsonl").open()]


def test_each_example_once_and_less_padding(imdb_sample):
    lengths = [min(n, 256) for n in imdb_lengths(imdb_sample)]
    grouped = length_grouped_batches(lengths, 16, seed=42, epoch=0)
    plain = length_grouped_batches(lengths, 16, seed=42, epoch=0, group_by_length=False)
    for batches in (grouped, plain):
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    real = sum(lengths)
    assert real / padded_tokens(grouped, lengths) > 0.95
    assert real / padded_tokens(plain, lengths) < 0.85


def test_order_is_a_function_of_seed_and_epoch():
    rng = random.Random(0)
    lengths = [rng.randint(5, 300) for _ in range(2000)]
    a = length_grouped_batches(lengths, 16, seed=42, epoch=3)
    assert a == length_grouped_batches(lengths, 16, seed=42, epoch=3)
    assert a != length_grouped_batches(lengths, 16, seed=42, epoch=4)
    assert a != length_grouped_batches(lengths, 16, seed=7, epoch=3)
    # shuffled groups: the longest batch is not always first
    firsts = {max(lengths[i] for i in length_grouped_batches(lengths, 16, 42, e)[0]) for e in range(5)}
    assert len(firsts) > 1


def test_sorted_batches_longest_first():
    lengths = [3, 9, 1, 7, 5]
    assert sorted_batches(lengths, 2) == [[1, 3], [4, 0], [2]]


def test_collate_pads_to_longest_in_batch(small_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(small_model)
    data = encode(tok, ["short", "a somewhat longer text here", "mid length"], max_length=5, labels=[0, 1, 0])
    assert max(data.lengths()) == 5  # truncated at max_length
    batch = collate(data, [0, 2], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, max(data.lengths()[0], data.lengths()[2]))
    assert batch["attention_mask"].sum().item() == data.lengths()[0] + data.lengths()[2]
    assert batch["labels"].tolist() == [0, 0]


def test_token_cache_reuses_ids_and_keys_on_settings(small_model, imdb_sample, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(small_model)
    texts = [json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()][:50]
    first = encode(tok, texts, max_length=128, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = encode(tok, texts, max_length=128, cache_dir=tmp_path)
    fresh = encode(tok, texts, max_length=128)
    assert as_lists(again.input_ids) == as_lists(first.input_ids) == as_lists(fresh.input_ids)
    encode(tok, texts, max_length=64, cache_dir=tmp_path)  # other settings, other entry
    encode(tok, texts[:-1], max_length=128, cache_dir=tmp_path)  # other data, other entry
    assert len(list(tmp_path.glob("*.npz"))) == 3
    pairs = encode(tok, texts, texts, max_length=128, cache_dir=tmp_path)
    again = encode(tok, texts, texts, max_length=128, cache_dir=tmp_path)
    assert as_lists(again.token_type_ids) == as_lists(pairs.token_type_ids)
    assert as_lists(pairs.token_type_ids) == tok(texts, texts, truncation=True, max_length=128)["token_type_ids"]


def test_ids_are_int32_arrays_tokenized_in_chunks_as_in_one_call(small_model, imdb_sample, monkeypatch):
    """Chunked tokenization (to keep the tokenizer's full output small) changes nothing in the ids."""
    from transformers import AutoTokenizer

    from textfit import batching

    tok = AutoTokenizer.from_pretrained(small_model)
    texts = [json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()][:30]
    whole = batching.encode_windows(tok, texts, max_length=64)
    monkeypatch.setattr(batching, "CHUNK", 7)
    data = encode(tok, texts, max_length=128, labels=[0] * 30)
    assert all(ids.dtype == np.int32 for ids in data.input_ids)
    assert as_lists(data.input_ids) == tok(texts, truncation=True, max_length=128)["input_ids"]
    windows, owners = batching.encode_windows(tok, texts, max_length=64)
    assert as_lists(windows.input_ids) == as_lists(whole[0].input_ids) and owners == whole[1]
    batch = collate(data, [3, 0, 29], tok.pad_token_id, multiple=32)
    for row, i in enumerate([3, 0, 29]):
        n = len(data.input_ids[i])
        assert batch["input_ids"][row, :n].tolist() == data.input_ids[i].tolist()
        assert batch["attention_mask"][row].sum().item() == n
        assert (batch["input_ids"][row, n:] == tok.pad_token_id).all()


def test_collate_rounds_width_up_to_a_multiple(small_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(small_model)
    data = encode(tok, ["one two three", "one"], max_length=64, labels=[0, 1])
    batch = collate(data, [0, 1], tok.pad_token_id, multiple=32)
    assert batch["input_ids"].shape == (2, 32)
    assert batch["attention_mask"].sum().item() == sum(data.lengths())


def test_truncation_keeps_head_tail_or_both(small_model, imdb_sample):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(small_model)
    review = max((json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()), key=len)
    words = tokenizer(review, add_special_tokens=False)["input_ids"]
    assert len(words) > 600
    kept = {t: encode(tokenizer, [review], max_length=128, truncation=t).input_ids[0].tolist() for t in TRUNCATIONS}
    for ids in kept.values():
        assert len(ids) == 128 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert kept["head"][1:-1] == words[:126]
    assert kept["tail"][1:-1] == words[-126:]
    assert kept["head+tail"][1:-1] == words[:31] + words[-95:]  # a quarter of the 126-token budget from the head

    import pytest

    from textfit.errors import ConfigError

    with pytest.raises(ConfigError, match="sentence pairs are truncated at the head"):
        encode(tokenizer, ["a"], ["b"], max_length=16, truncation="tail")


def test_a_tail_model_reads_the_end_of_a_review(small_model, imdb_sample, trained, tmp_path):
    """With head truncation a review's ending cannot change the prediction; with tail truncation it does, and
    textfit.load applies the truncation the model was trained with."""
    import textfit
    from tests.conftest import small_run_config
    from textfit.training import train

    review = max((json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()), key=len)
    endings = [review + " In the end, a masterpiece: wonderful, moving, brilliant.",
               review + " In the end, a disaster: awful, boring, the worst film ever."]
    head = textfit.load(trained, precision="fp32").predict_proba(endings)  # trained with max_length 64, head
    assert abs(head[0] - head[1]).max() < 1e-6
    tail = textfit.load(trained, precision="fp32", truncation="tail").predict_proba(endings)
    assert tail[0, 1] > tail[1, 1] + 0.05  # the glowing ending reads as more positive

    out = tmp_path / "tail"
    train(small_run_config(small_model, imdb_sample, out, truncation="tail", max_steps=20, eval_strategy="no",
                           eval_split="test", max_eval_samples=50))
    assert textfit.load(out, precision="fp32").truncation == "tail"  # from the recipe saved with the model
    assert "keeping their end (`truncation: tail`" in (out / "README.md").read_text()


def test_windows_cover_a_long_text_and_average_their_scores(small_model, imdb_sample, trained, tmp_path):
    from transformers import AutoTokenizer

    import textfit
    from tests.conftest import run_textfit
    from textfit.batching import encode_windows

    tokenizer = AutoTokenizer.from_pretrained(small_model)
    review = max((json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()), key=len)
    words = tokenizer(review, add_special_tokens=False)["input_ids"]
    data, owners = encode_windows(tokenizer, [review, "short one"], max_length=64)
    content = [ids[1:-1].tolist() for ids, owner in zip(data.input_ids, owners, strict=True) if owner == 0]
    assert content[0] == words[:62] and content[-1][-1] == words[-1]  # from the first token to the last
    assert all(len(ids) <= 64 for ids in data.input_ids) and owners.count(1) == 1
    assert content[1][:31] == words[31:62]  # windows overlap by half

    clf = textfit.load(trained, precision="fp32")
    endings = [review + " In the end, a masterpiece: wonderful, moving, brilliant.",
               review + " In the end, a disaster: awful, boring, the worst film ever."]
    probs = clf.predict_proba(endings, windows=True)
    assert abs(probs.sum(1) - 1).max() < 1e-5
    assert probs[0, 1] > probs[1, 1]  # the ending counts now, diluted over the windows
    assert clf.predict_proba(["short one"], windows=True) == pytest.approx(clf.predict_proba(["short one"]), abs=1e-6)

    result = run_textfit("predict", trained, "--windows", endings[0])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[0] == clf.labels[int(probs[0].argmax())]


def test_evaluate_reads_long_texts_whole_in_windows(imdb_sample, trained, tmp_path):
    import textfit
    from tests.conftest import run_textfit
    from textfit.evaluate import evaluate_folder

    rows = [json.loads(line) for line in (imdb_sample / "test.jsonl").open()][:30]
    names = {0: "negative", 1: "positive", "neg": "negative", "pos": "positive"}  # the sentiment names `trained` knows
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text("".join(json.dumps({"text": r["text"], "label": names[r["label"]]}) + "\n" for r in rows))
    clf = textfit.load(trained, precision="fp32")
    whole, _, count = evaluate_folder(clf, str(reviews), windows=True)
    cut, _, _ = evaluate_folder(clf, str(reviews))
    assert count == 30 and whole["loss"] != pytest.approx(cut["loss"], rel=1e-4)  # long reviews were read past the cut

    out = tmp_path / "windows.json"
    result = run_textfit("evaluate", trained, "--dataset", reviews, "--windows", "--output", out)
    assert result.returncode == 0, result.stderr
    assert "read whole in windows" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["windows"] is True and saved["num_examples"] == 30
    assert saved["accuracy"] == whole["accuracy"] and saved["loss"] == pytest.approx(whole["loss"], rel=1e-5)


def test_a_model_trained_with_windows_is_evaluated_and_read_whole(small_model, imdb_sample, tmp_path):
    """windows: true makes training's evaluation read every review whole, and the saved folder remembers it:
    textfit.load, evaluate and predict read it the same way unless told --no-windows."""
    import textfit
    from tests.conftest import run_textfit, small_run_config
    from textfit.config import TrainConfig
    from textfit.errors import ConfigError
    from textfit.evaluate import evaluate_folder
    from textfit.training import train

    out = tmp_path / "windows"
    result = train(small_run_config(small_model, imdb_sample, out, windows=True, max_steps=20, eval_split="test",
                                    max_eval_samples=60, precision="fp32", baseline="none"))
    clf = textfit.load(out, precision="fp32")
    assert clf.windows and clf.folder.windows
    # the card's figures are what the folder reads: the same 60 reviews, scored whole by default
    again, _, count = evaluate_folder(clf, str(imdb_sample), "test", max_samples=60)
    assert count == 60 and again["accuracy"] == result.metrics["accuracy"]
    assert again["loss"] == pytest.approx(result.metrics["loss"], rel=1e-4)
    review = max((json.loads(line)["text"] for line in (imdb_sample / "test.jsonl").open()), key=len)
    assert clf.predict_proba([review]) == pytest.approx(clf.predict_proba([review], windows=True))
    assert clf.predict_proba([review]) != pytest.approx(clf.predict_proba([review], windows=False), abs=1e-7)
    truncated = textfit.load(out, precision="fp32", windows=False).predict_proba([review])
    assert truncated == pytest.approx(clf.predict_proba([review], windows=False))
    ran = run_textfit("predict", out, "--no-windows", review)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\t")[0] == clf.labels[int(truncated[0].argmax())]
    with pytest.raises(ConfigError, match="sentence pairs"):
        TrainConfig(dataset="x", windows=True, text_pair_column="hypothesis")
