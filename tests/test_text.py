"""Reading corpora and tokenizing, offline: CSV quirks, plain text, bad input."""

import nltk
import pytest

from rnnlm.errors import DataError
from rnnlm.data.text import (SentenceSplitter, detect_format, read_documents, tokenize_documents,
                        tokenize_words)


def test_csv_with_quoted_newlines_commas_and_emoji(reddit_csv):
    docs, fmt = read_documents(reddit_csv)
    assert fmt == "reddit-csv"
    assert len(docs) == 4
    assert docs[1] == "He left!\nThen he came back, with a dog."
    assert "🙂" in docs[3] and "café" in docs[3]


def test_csv_body_column_found_among_others_and_crlf(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'id,Body\r\n1,"first, comment"\r\n2,"second\r\nline"\r\n')
    docs, _ = read_documents(path)
    assert docs == ["first, comment", "second\nline"]


def test_plain_text_one_document_per_nonempty_line(tiny_text):
    docs, fmt = read_documents(tiny_text)
    assert fmt == "text"
    assert docs == ["the cat sat on the mat.", "the dog sat on the log.", "a cat and a dog."]


def test_format_by_extension_or_explicit():
    assert detect_format("a.CSV") == "reddit-csv"
    assert detect_format("a.txt") == "text"
    assert detect_format("a.csv", "text") == "text"


def test_word_tokenization_matches_the_tutorial_example():
    assert tokenize_words("he left!") == ["he", "left", "!"]
    assert tokenize_words("don't stop.") == ["do", "n't", "stop", "."]


def test_documents_are_lowercased_and_split_into_sentences(reddit_csv):
    docs, _ = read_documents(reddit_csv)
    sentences, _ = tokenize_documents(docs)
    assert ["he", "left", "!"] in sentences
    assert ["then", "he", "came", "back", ",", "with", "a", "dog", "."] in sentences
    assert all(t == t.lower() for s in sentences for t in s)


def test_char_level_keeps_case_and_splits_lines():
    sentences, _ = tokenize_documents(["Ab c\n\n春眠"], level="char")
    assert sentences == [["A", "b", " ", "c"], ["春", "眠"]]


def test_no_punkt_data_installed_trains_punkt_and_never_downloads(monkeypatch, tmp_path):
    # an empty nltk_data search path: the pretrained model cannot be found
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])

    def no_download(*args, **kwargs):
        raise AssertionError("nltk.download must never be called")

    monkeypatch.setattr(nltk, "download", no_download)
    splitter = SentenceSplitter(training_text="One sentence here. Another one there! A third?")
    assert splitter.source == "Punkt trained on this corpus"
    assert splitter.split("it works. it really does!") == ["it works.", "it really does!"]


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"", "is empty"),
    (b"   \n\n", "is empty"),
    (b"body\n\x00\x01\x02binary", "binary"),
    (b"body\n\"caf\xe9\"\n", "not UTF-8 text: byte 0xe9 at offset 9 (line 2)"),
    (b"text,score\n\"hello\",1\n", "no 'body' column"),
    (b"body\n\"\"\n", "holds no text"),
])
def test_bad_input_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_documents(path)
    text = str(info.value)
    assert message in text and str(path) in text
    assert "\n" not in text


def test_directory_is_rejected(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_documents(tmp_path)
