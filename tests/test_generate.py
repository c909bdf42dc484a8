"""Sentence generation: seeds, UNKNOWN masking, length rules, greedy decoding, prefixes, detokenizing."""

import numpy as np
import pytest

from rnnlm.config import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN
from rnnlm.errors import ConfigError
from rnnlm.models.fast import FastRNN
from rnnlm.models.generate import (GenerateConfig, generate_sentence, generate_sentences, next_token, sentence_length,
                            tokenize_prefix)
from rnnlm.data.detokenize import detokenize
from rnnlm.data.text import tokenize_words
from rnnlm.data.vocab import Vocabulary

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "."]


@pytest.fixture
def vocab():
    sentences = [WORDS[:4], WORDS[3:], ["the", "cat", "ran", "."], ["rare"]]
    return Vocabulary.build(sentences, vocabulary_size=len(WORDS) + 3)


def _model(vocab, seed=0, bias=None):
    """A random FastRNN; `bias` {token: value} adds to that token's output score at every step."""
    model = FastRNN(len(vocab), hidden_dim=8, seed=seed)
    if bias:
        model.V *= 0.1
        model.V[:, 0] = 0.0
        # a constant feature: hidden unit 0 saturates to ~1 through a large recurrent weight
        model.W[0, :] = 0.0
        model.U[0, :] = 50.0
        for token, value in bias.items():
            model.V[vocab.word_to_index[token], 0] = value
    return model


def test_same_seed_same_sentences(vocab):
    model = _model(vocab)
    config = GenerateConfig(num_sentences=5, min_length=1)
    first = generate_sentences(model, vocab, np.random.default_rng(7), config)
    second = generate_sentences(model, vocab, np.random.default_rng(7), config)
    other = generate_sentences(model, vocab, np.random.default_rng(8), config)
    assert first == second and first != other


def test_never_unknown_even_when_it_is_the_likeliest(vocab):
    model = _model(vocab, bias={UNKNOWN_TOKEN: 30.0})
    rng = np.random.default_rng(0)
    for temperature in (0, 0.5, 1.0, 3.0):
        for _ in range(5):
            tokens = generate_sentence(model, vocab, rng, min_length=0, max_length=20, temperature=temperature)
            assert UNKNOWN_TOKEN not in tokens and SENTENCE_START not in tokens and SENTENCE_END not in tokens


def test_max_length_ends_a_sentence_that_never_ends(vocab):
    model = _model(vocab, bias={SENTENCE_END: -60.0})
    tokens = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=13)
    assert len(tokens) == 13


def test_short_sentences_are_drawn_again(vocab):
    # SENTENCE_END is likely but not certain: most draws are short, some reach the minimum
    model = _model(vocab, bias={SENTENCE_END: 2.0})
    rng = np.random.default_rng(0)
    lengths = [len(generate_sentence(model, vocab, rng, min_length=4, max_length=30)) for _ in range(20)]
    assert min(lengths) >= 4


def test_min_length_counts_words_not_punctuation(vocab):
    model = _model(vocab, bias={".": 3.0, SENTENCE_END: 1.0})  # mostly full stops
    rng = np.random.default_rng(0)
    for _ in range(10):
        tokens = generate_sentence(model, vocab, rng, min_length=3, max_length=40)
        assert sum(t != "." for t in tokens) >= 3
    assert sentence_length(["i", "do", "n't", ",", "...", "2", "!"]) == 4
    assert sentence_length(list("春眠 不觉"), level="char") == 5


def test_impossible_minimum_returns_the_longest_attempt_and_terminates(vocab):
    model = _model(vocab, bias={SENTENCE_END: 60.0})  # ends at once, every time
    tokens = generate_sentence(model, vocab, np.random.default_rng(0), min_length=5, max_length=10, max_attempts=7)
    assert tokens == []


def test_temperature_zero_is_the_argmax_chain(vocab):
    model = _model(vocab, seed=3)
    tokens = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=12, temperature=0)
    again = generate_sentence(model, vocab, np.random.default_rng(99), min_length=0, max_length=12, temperature=0)
    assert tokens == again
    # the same chain, computed by hand
    state, x, expected = model.start_state(1), vocab.start_index, []
    banned = {vocab.unknown_index, vocab.start_index}
    while len(expected) < 12:
        logits, state = model.step(state, np.array([x]))
        order = [int(i) for i in np.argsort(-logits[0].astype(np.float64), kind="stable") if int(i) not in banned]
        x = order[0]
        if x == vocab.end_index:
            break
        expected.append(vocab.index_to_word[x])
    assert tokens == expected


def test_prefix_starts_every_sentence_and_keeps_unknown_words(vocab):
    model = _model(vocab)
    rng = np.random.default_rng(1)
    for prefix in (["the", "cat"], ["zebra", "sat"]):
        tokens = generate_sentence(model, vocab, rng, min_length=0, max_length=10, prefix_tokens=prefix)
        assert tokens[:2] == prefix
    assert vocab.unknown_tokens(["zebra", "sat"]) == ["zebra"]


def test_prefix_conditions_the_model(vocab):
    model = _model(vocab, seed=5)
    a = generate_sentence(model, vocab, np.random.default_rng(0), 0, 30, 0, ["cat"])
    b = generate_sentence(model, vocab, np.random.default_rng(0), 0, 30, 0, ["dog", "dog", "dog"])
    assert a[1:] != b[3:]


def test_prefix_longer_than_max_length_is_an_error(vocab):
    with pytest.raises(ConfigError, match="prefix"):
        generate_sentence(_model(vocab), vocab, np.random.default_rng(0), 0, 2, 1.0, ["the", "cat", "sat"])


def test_next_token_is_float64_safe_and_respects_bans():
    rng = np.random.default_rng(0)
    logits = np.array([1e4, 80.0, -1e4, 0.0], dtype=np.float32)
    draws = {next_token(logits, rng, 1.0, [0]) for _ in range(200)}
    assert draws == {1}
    spread = {next_token(np.zeros(4, np.float32), rng, 1.0, [2]) for _ in range(200)}
    assert spread == {0, 1, 3}
    assert next_token(np.array([0.0, 5.0, 1.0]), rng, 0, [1]) == 2


@pytest.mark.parametrize("kwargs", [
    {"num_sentences": 0}, {"num_sentences": -1}, {"min_length": -1}, {"max_length": 0},
    {"min_length": 9, "max_length": 5}, {"temperature": -0.5}, {"temperature": float("nan")},
    {"max_attempts": 0},
])
def test_impossible_generation_settings(kwargs):
    with pytest.raises(ConfigError):
        GenerateConfig(**kwargs)


@pytest.mark.parametrize("text, expected", [
    ("i don't know, really.", "I don't know, really."),
    ("you can't; it's 50% off!", "You can't; it's 50% off!"),
    ("we're gonna win (maybe) and i'm sure", "We're gonna win (maybe) and I'm sure"),
    ('he said "hi" to me?', 'He said "hi" to me?'),
    ("see https://example.com/x for it", "See https://example.com/x for it"),
    ("they'll say it's fine: we've won", "They'll say it's fine: we've won"),
    ("... and then", "... And then"),
    ("&gt; quoted text &amp; more", "> Quoted text & more"),
    ("read [the rules](http://x.org/r) first", "Read [the rules](http://x.org/r) first"),
])
def test_detokenize_undoes_treebank(text, expected):
    assert detokenize(tokenize_words(text.lower())) == expected


def test_detokenize_tokens_directly():
    assert detokenize(["do", "n't", "stop", "!"]) == "Don't stop!"
    assert detokenize([SENTENCE_START, "hello", "world", SENTENCE_END]) == "Hello world"
    assert detokenize([]) == ""
    assert detokenize(list("春眠不觉晓"), level="char") == "春眠不觉晓"
    assert detokenize(list("a b"), level="char") == "a b"


def test_tokenize_prefix_per_level():
    assert tokenize_prefix("I Don't", "word") == ["i", "do", "n't"]
    assert tokenize_prefix("春眠", "char") == ["春", "眠"]


@pytest.mark.parametrize("cell", ["gru", "lstm", "jordan"])
def test_generation_works_for_every_cell(vocab, cell):
    from rnnlm.io.kinds import build_model
    from rnnlm.config import ModelConfig
    model = build_model(ModelConfig(vocab_size=len(vocab), hidden_size=6, cell=cell), seed=0)
    tokens = generate_sentence(model, vocab, np.random.default_rng(0), 0, 10, 1.0, ["the", "cat"])
    assert tokens[:2] == ["the", "cat"] and len(tokens) <= 10 and UNKNOWN_TOKEN not in tokens[2:]


def test_bundled_model_generates_sentences():
    from rnnlm.io import checkpoint
    if not checkpoint.BUNDLED_MODEL.is_file():
        pytest.skip("bundled model not built yet")
    loaded = checkpoint.load_model(checkpoint.BUNDLED_MODEL)
    rng = np.random.default_rng(0)
    sentences = generate_sentences(loaded.model, loaded.vocabulary, rng, GenerateConfig(num_sentences=5))
    assert len(sentences) == 5
    for tokens in sentences:
        assert 1 <= len(tokens) <= GenerateConfig.max_length and UNKNOWN_TOKEN not in tokens
        assert detokenize(tokens)[0].isupper() or not detokenize(tokens)[0].isalpha()
