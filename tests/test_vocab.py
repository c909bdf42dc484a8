"""Vocabulary: exact size, deterministic ties, special tokens, UNKNOWN mapping, array round trip."""

import numpy as np
import pytest

from rnnlm.config import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN
from rnnlm.errors import ConfigError
from rnnlm.data.vocab import Vocabulary

SENTENCES = [["a", "b", "c"], ["a", "b", "d"], ["a", "e"], ["f"]]
# counts: a 3, b 2, c/d/e/f 1, start/end 4 each


def test_keeps_the_most_frequent_and_breaks_ties_by_token():
    vocab = Vocabulary.build(SENTENCES, vocabulary_size=6)
    assert len(vocab) == 6
    assert vocab.index_to_word == (SENTENCE_END, SENTENCE_START, "a", "b", "c", UNKNOWN_TOKEN)
    assert vocab.least_frequent() == ("c", 1)
    assert vocab.counts[-1] == 3  # d, e, f map to UNKNOWN_TOKEN


def test_exact_vocabulary_size_and_word_to_index_inverse():
    sentences = [[f"w{i}"] * (i + 1) for i in range(50)]
    vocab = Vocabulary.build(sentences, vocabulary_size=20)
    assert len(vocab) == 20
    assert all(vocab.word_to_index[w] == i for i, w in enumerate(vocab.index_to_word))
    assert "w49" in vocab.word_to_index and "w0" not in vocab.word_to_index


def test_smaller_corpus_gives_every_token_plus_unknown():
    vocab = Vocabulary.build(SENTENCES, vocabulary_size=8000)
    assert len(vocab) == 6 + 2 + 1


def test_unknown_mapping_and_sentence_encoding():
    vocab = Vocabulary.build(SENTENCES, vocabulary_size=5)
    encoded = vocab.encode_sentence(["a", "zebra", "b"])
    assert list(encoded) == [vocab.start_index, vocab.word_to_index["a"], vocab.unknown_index,
                             vocab.word_to_index["b"], vocab.end_index]
    assert vocab.decode(encoded)[2] == UNKNOWN_TOKEN


def test_build_is_deterministic_regardless_of_sentence_order():
    v1 = Vocabulary.build(SENTENCES, 6)
    v2 = Vocabulary.build(list(reversed(SENTENCES)), 6)
    assert v1.index_to_word == v2.index_to_word


@pytest.mark.parametrize("size", [3, 0, -1])
def test_vocabulary_below_four_is_rejected(size):
    with pytest.raises(ConfigError, match="at least 4"):
        Vocabulary.build(SENTENCES, size)


def test_round_trip_through_plain_arrays(tmp_path):
    vocab = Vocabulary.build([["café", "🙂"], ["naïve"]], 10)
    path = tmp_path / "v.npz"
    np.savez(path, **vocab.to_arrays())
    with np.load(path, allow_pickle=False) as data:
        restored = Vocabulary.from_arrays(dict(data))
    assert restored == vocab
