"""Fine-tuning the imported multilingual model on real multilingual data: per-language results, a trimmed
vocabulary that still tokenizes its training texts as before, frozen embeddings that stay frozen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textfit.config import TrainConfig
from textfit.training import train

TWEETS_LANGUAGES = {"ar", "de", "en", "es", "fr", "hi", "it", "pt"}


def test_trimmed_tokenizer_segments_training_texts_as_before(shared_data):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textfit.data import Columns, load_training_data
    from textfit.models import resolve_model
    from textfit.vocab_trim import trim_vocabulary

    folder = resolve_model("multilingual-e5-small").path
    data = load_training_data(str(shared_data / "tweet_sentiment_multilingual"), Columns("text", "label", None),
                              max_train_samples=300, max_eval_samples=50)
    texts = [ex.text for ex in data.train]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    before = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(texts)["input_ids"]]
    old_embeddings = model.get_input_embeddings().weight.detach().clone()
    trimmed, model, note = trim_vocabulary(tokenizer, model, texts)
    after_ids = trimmed(texts)["input_ids"]
    assert [trimmed.convert_ids_to_tokens(ids) for ids in after_ids] == before
    assert model.get_input_embeddings().weight.shape[0] == len(trimmed) < 20_000
    row = tokenizer.convert_tokens_to_ids(before[0][1])  # a token's embedding moved with it
    assert (model.get_input_embeddings().weight[after_ids[0][1]] == old_embeddings[row]).all()
    assert "trimmed" in note


def test_trim_refuses_a_wordpiece_vocabulary(small_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textfit.errors import ConfigError
    from textfit.vocab_trim import trim_vocabulary

    with pytest.raises(ConfigError, match="only Unigram"):
        trim_vocabulary(AutoTokenizer.from_pretrained(small_model),
                        AutoModelForSequenceClassification.from_pretrained(small_model, num_labels=2), ["a b"])


def test_frozen_embeddings_stay_as_they_were(small_model, sst2_sample, tmp_path):
    from safetensors.torch import load_file

    from tests.conftest import small_run_config

    out = tmp_path / "frozen"
    train(small_run_config(small_model, sst2_sample, out, freeze_embeddings=True, max_steps=10, eval_strategy="no"))
    key = "embeddings.word_embeddings.weight"
    trained = load_file(out / "model.safetensors")
    base = load_file(small_model / "model.safetensors")
    assert (trained[f"bert.{key}"] == base[key]).all()
    layer = "encoder.layer.0.output.dense.weight"
    assert not (trained[f"bert.{layer}"] == base[layer]).all()
    assert "word embeddings (not trained)" in (out / "README.md").read_text()


@pytest.mark.slow
def test_multilingual_run_reports_each_language(shared_data, tmp_path):
    out = tmp_path / "tweets"
    result = train(TrainConfig(
        model="multilingual-e5-small", dataset=str(shared_data / "tweet_sentiment_multilingual"),
        output_dir=str(out), max_train_samples=800, max_eval_samples=400, max_length=64, epochs=1,
        learning_rate=5e-5, train_batch_size=16, eval_batch_size=64, trim_vocab=True, freeze_embeddings=True))
    metrics = result.metrics
    assert set(metrics["per_language"]) == TWEETS_LANGUAGES
    assert sum(m["num_examples"] for m in metrics["per_language"].values()) == 400
    saved = json.loads((out / "metrics.json").read_text())["eval"]
    assert saved["per_language"] == metrics["per_language"]
    card = (out / "README.md").read_text()
    assert "### Results per language" in card and "| hi |" in card
    assert "vocabulary trimmed" in card

    # the trimmed folder is an ordinary Hugging Face folder: the pipeline and textfit agree on it
    from transformers import AutoConfig, pipeline

    import textfit

    assert AutoConfig.from_pretrained(out).vocab_size < 30_000
    assert Path(out / "model.safetensors").stat().st_size < 100e6  # the full vocabulary alone is 384 MB
    texts = ["Das war ein wunderbarer Abend!", "यह बहुत बुरा है", "Je déteste attendre le bus sous la pluie."]
    ours = textfit.load(out, precision="fp32").predict(texts)
    theirs = pipeline("text-classification", model=str(out))(texts)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
