"""`--format tokens`: pre-tokenized text (the Penn Treebank files of PyTorch's word_language_model).

Whitespace tokens kept exactly (no NLTK, no lower-casing, no link placeholders), `<unk>` read as
UNKNOWN_TOKEN, SENTENCE_END (a line break in stream mode) after every line, and the predicted-token
count word_language_model's: every whitespace token plus one <eos> per line.
"""

import pytest

from rnnlm.config import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, DataConfig
from rnnlm.data.corpus import load_corpus
from rnnlm.data.text import token_lines, token_stream, tokenize_tokens_line
from rnnlm.errors import ConfigError
from rnnlm.training.stream import load_stream

from helpers import run

TEXT = (" the Cat sat on the <unk> mat N N\n"
        " see http://example.com/a?b=1 and r/python , u/someone 's post\n"
        "\n"
        "Don't LOWER this <unk>\n")
LINES = [line for line in TEXT.split("\n")[:-1]]


def word_language_model_tokens(text):
    """What PyTorch's word_language_model `Corpus.tokenize` reads: line.split() + ['<eos>'] per line."""
    words = []
    for line in text.splitlines():
        words += line.split() + ["<eos>"]
    return words


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "ptb-like.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_a_line_is_its_whitespace_tokens_exactly():
    assert tokenize_tokens_line(" the Cat  <unk> http://x.com r/a u/b N\t.") == [
        "the", "Cat", UNKNOWN_TOKEN, "http://x.com", "r/a", "u/b", "N", "."]
    assert token_lines("a b\n\nc\n") == [["a", "b"], [], ["c"]]
    assert token_lines("a b\nc") == [["a", "b"], ["c"]]  # a last line without its line break still counts


def test_sentence_corpus_round_trips_tokens_and_ends_every_line(corpus_file):
    corpus = load_corpus(corpus_file, vocabulary_size=1000, format="tokens")
    expected = [[UNKNOWN_TOKEN if t == "<unk>" else t for t in line.split()] for line in LINES]
    assert corpus.sentences == expected  # case kept, links and r/, u/ paths untouched
    vocab = corpus.vocabulary
    for x, y, tokens in zip(corpus.X, corpus.Y, expected):
        assert vocab.decode(x) == [SENTENCE_START] + tokens
        assert vocab.decode(y) == tokens + [SENTENCE_END]
    assert "URL_TOKEN" not in vocab.word_to_index and "Cat" in vocab.word_to_index
    wlm = word_language_model_tokens(TEXT)
    assert corpus.num_tokens == len(wlm) == sum(len(line.split()) for line in LINES) + len(LINES)
    # the predicted tokens are word_language_model's, <eos> as SENTENCE_END and <unk> as UNKNOWN_TOKEN
    predicted = [t for y in corpus.Y for t in vocab.decode(y)]
    assert predicted == [{"<eos>": SENTENCE_END, "<unk>": UNKNOWN_TOKEN}.get(t, t) for t in wlm]


def test_the_vocabulary_keeps_every_token_when_the_size_allows(corpus_file):
    corpus = load_corpus(corpus_file, vocabulary_size=1000, format="tokens")
    distinct = {t for line in LINES for t in line.split()} - {"<unk>"}
    assert set(corpus.vocabulary.index_to_word) == distinct | {SENTENCE_START, SENTENCE_END, UNKNOWN_TOKEN}
    assert corpus.report.unique_tokens == len(corpus.vocabulary)
    assert "every token kept" in str(corpus.report)
    assert corpus.vocabulary.counts[corpus.vocabulary.unknown_index] == 2  # the two <unk>s
    small = load_corpus(corpus_file, vocabulary_size=5, format="tokens")
    assert "raise --vocab-size to" in str(small.report)


def test_stream_mode_ends_every_line_with_the_line_break(corpus_file):
    stream = load_stream(corpus_file, vocabulary_size=1000, format="tokens")
    wlm = word_language_model_tokens(TEXT)
    assert stream.vocabulary.decode(stream.ids) == [{"<eos>": "\n", "<unk>": UNKNOWN_TOKEN}.get(t, t) for t in wlm]
    assert token_stream("a <unk>\nb") == ["a", UNKNOWN_TOKEN, "\n", "b", "\n"]


def test_tokens_is_word_level():
    with pytest.raises(ConfigError, match="word level"):
        DataConfig(format="tokens", level="char")


TINY = ["--vocab-size", "100", "--hidden", "8", "--batch-size", "2", "--seed", "1", "--epochs", "1",
        "--valid-fraction", "0", "--no-progress"]


@pytest.mark.parametrize("stream", [False, True])
def test_train_evaluate_generate_with_tokens(capsys, tmp_path, corpus_file, stream):
    out = tmp_path / "model.npz"
    extra = ["--stream", "--seq-length", "4"] if stream else []
    code, stdout, err = run(capsys, "train", corpus_file, "--format", "tokens", "--out", out, *TINY, *extra)
    assert code == 0, err
    code, stdout, err = run(capsys, "evaluate", "--model", out, corpus_file)  # auto: the model's tokens format
    assert code == 0, err
    wlm = word_language_model_tokens(TEXT)
    scored = len(wlm) - 1 if stream else len(wlm)  # a stream's first token is read, never predicted
    assert f"Predicted tokens: {scored:,}" in stdout
    assert "2 (" in stdout.split("Predicted tokens:")[1].split("\n")[0]  # the two <unk>s, counted
    code, stdout, err = run(capsys, "generate", "--model", out, "--prefix", "Don't LOWER", "--seed", "1",
                            "-n", "1", "--length", "3", "--max-length", "6")
    assert code == 0, err
    assert "LOWER" in stdout and err == ""
    code, stdout, err = run(capsys, "generate", "--model", out, "--prefix", "<unk> Zorblax", "--seed", "1",
                            "-n", "1", "--length", "3", "--max-length", "6")
    assert code == 0 and err.count("'Zorblax'") == 1 and "UNKNOWN_TOKEN'" not in err  # only the real stranger noted


def test_generate_format_tokens_keeps_the_prefix_as_written(capsys):
    code, stdout, err = run(capsys, "generate", "--format", "tokens", "--prefix", "I Think", "-n", "1",
                            "--seed", "1", "--max-length", "4")
    assert code == 0 and stdout.startswith("I Think")
    assert "'Think'" in err  # the bundled model's vocabulary is lowercased: "Think" is unknown, read as UNKNOWN_TOKEN
