"""The whole pipeline: file -> training pairs, the tutorial's report, and corpus resolution."""

import numpy as np
import pytest

from rnnlm.data.corpus import corpus_from_documents, find_corpus, load_corpus
from rnnlm.errors import ConfigError, DataError


def test_training_pairs_are_shifted_by_one(reddit_csv):
    corpus = load_corpus(reddit_csv, vocabulary_size=8000, min_count=1)
    vocab = corpus.vocabulary
    for x, y in zip(corpus.X, corpus.Y):
        assert x.dtype == np.int64 and len(x) == len(y)
        assert x[0] == vocab.start_index and y[-1] == vocab.end_index
        np.testing.assert_array_equal(x[1:], y[:-1])
    first = vocab.decode(corpus.X[0])
    assert first[:4] == ["SENTENCE_START", "i", "love", "this"]


def test_report_has_the_tutorial_figures(reddit_csv):
    report = load_corpus(reddit_csv, vocabulary_size=10).report
    assert report.documents == 4
    assert report.sentences == 7
    assert report.vocabulary_size == 10
    assert report.least_frequent_count >= 1
    text = str(report)
    assert "Parsed 7 sentences" in text and "Using vocabulary size 10." in text
    assert "least frequent word in our vocabulary is" in text


def test_evaluating_with_a_model_vocabulary_reuses_its_indices(reddit_csv, tiny_text):
    train = load_corpus(tiny_text, vocabulary_size=8000)
    other = load_corpus(reddit_csv, vocabulary=train.vocabulary)
    assert other.vocabulary is train.vocabulary
    assert other.report.unknown_fraction > 0.5


def test_no_known_word_is_a_clear_error(tmp_path, tiny_text):
    vocab = load_corpus(tiny_text).vocabulary
    path = tmp_path / "other.txt"
    path.write_text("zzz yyy xxx\n", encoding="utf-8")
    with pytest.raises(DataError, match="no word of .* is in the model's vocabulary"):
        load_corpus(path, vocabulary=vocab)


def test_char_level_corpus():
    corpus = corpus_from_documents(["床前明月光", "疑是地上霜"], level="char")
    assert corpus.vocabulary.decode(corpus.X[0][1:]) == list("床前明月光")


def test_find_corpus_prefers_existing_files_then_the_builtin_stand_in(tmp_path, reddit_csv):
    missing = tmp_path / "missing.csv"
    assert find_corpus(search=(missing, reddit_csv)).path == reddit_csv
    fallback = find_corpus(search=(missing,))
    assert fallback.path is None and "stand-in" in fallback.description
    corpus = fallback.load(vocabulary_size=500, max_records=50)  # the notebooks' loader: the tutorial's rule
    assert len(corpus.vocabulary) == 500 and len(corpus.X) > 50
    # min_count 2 (DataConfig's): only words seen twice, the rest reported as UNKNOWN_TOKEN
    corpus = fallback.load(vocabulary_size=500, max_records=50, min_count=2)
    vocab = corpus.vocabulary
    assert len(vocab) < 500 and min(vocab.counts[:-1]) >= 2
    assert f"Kept {len(vocab) - 3} words seen at least 2 times; {vocab.rare_tokens:,} rarer words become " \
           "UNKNOWN_TOKEN" in str(corpus.report)


def test_min_count_is_word_level_only_and_must_be_positive():
    corpus = corpus_from_documents(["a b c a", "b d"], min_count=2)
    assert set(corpus.vocabulary.index_to_word) == {"a", "b", "SENTENCE_START", "SENTENCE_END", "UNKNOWN_TOKEN"}
    assert corpus.vocabulary.rare_tokens == 2
    assert set(corpus_from_documents(["ab", "c"], level="char").vocabulary.index_to_word) >= {"a", "b", "c"}
    with pytest.raises(ConfigError, match="minimum count"):
        corpus_from_documents(["a"], min_count=0)
    capped = corpus_from_documents(["a b c a b c d e", "a b"], vocabulary_size=5, min_count=2)
    assert "Kept the 2 most frequent words (--vocab-size); 1 more seen at least 2 times and 2 rarer words " \
           "become UNKNOWN_TOKEN." in str(capped.report)


def test_report_wording_counts_and_a_long_unspaced_word():
    from rnnlm.data.corpus import CorpusReport
    from rnnlm.data.text import in_unspaced_script, tokenize_words
    base = dict(path="x.csv", format="reddit-csv", documents=1, sentences=1, tokens=10, unique_tokens=5,
                vocabulary_size=5, least_frequent_word="cat", least_frequent_count=1, unknown_fraction=0.1,
                sentence_splitter="Punkt")
    text = str(CorpusReport(**base))
    assert "Read 1 comment from" in text and "Parsed 1 sentence (" in text and "appeared 1 time." in text
    assert "Found 5 unique tokens (words and punctuation)." in text and "words tokens" not in text
    # the Treebank tokenizer keeps a run of Japanese whole: the report says so and cuts it short
    sentence = "今日は本当に良い天気ですね" * 12
    assert tokenize_words(sentence) == [sentence] and in_unspaced_script(sentence) and not in_unspaced_script("cat")
    line = CorpusReport(**{**base, "least_frequent_word": sentence, "least_frequent_count": 2}).lines()[4]
    assert f"'{sentence[:40]}...' ({len(sentence)} characters) and appeared 2 times." in line
    assert "written without spaces stays one token" in line and sentence not in line
