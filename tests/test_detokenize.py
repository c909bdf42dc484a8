"""Tokens back to text (rnnlm.data.detokenize): contractions, quotes, placeholders."""

import pytest

from rnnlm.config import SUBREDDIT_TOKEN, URL_TOKEN, USER_TOKEN
from rnnlm.data.detokenize import PLACEHOLDER_TEXT, detokenize, detokenize_stream
from rnnlm.data.text import replace_links, tokenize_words


def words(text):
    """What training makes of a text: lowercased, links replaced, Treebank tokens."""
    return tokenize_words(replace_links(text.lower()))


CONTRACTIONS = [("don't", "Don't"), ("it's", "It's"), ("they're", "They're"), ("we've", "We've"),
                ("you'll", "You'll"), ("he'd", "He'd"), ("i'm", "I'm"), ("can't", "Can't"),
                ("won't", "Won't"), ("isn't", "Isn't")]


@pytest.mark.parametrize("apostrophe", ["'", "’"])
@pytest.mark.parametrize("word, expected", CONTRACTIONS)
def test_every_contraction_with_either_apostrophe(word, expected, apostrophe):
    text = detokenize(words(f"{word.replace(chr(39), apostrophe)} go"))
    assert text == f"{expected} go"


@pytest.mark.parametrize("text, expected", [
    ("i don’t know what it’s for", "I don't know what it's for"),
    ("the cat’s toy", "The cat's toy"),
    ("the cats’ toys", "The cats’ toys"),
    ("the cats' toys", "The cats' toys"),
    ('he said “hi” to me', "He said “hi” to me"),
    ("he said ‘hi’ to me", "He said ‘hi’ to me"),
    ('he said "hi" to me', 'He said "hi" to me'),
    ("he said 'hello there' and left", "He said 'hello there' and left"),
    ("'quoted' first", "'Quoted' first"),
])
def test_curly_and_straight_quotes(text, expected):
    assert detokenize(words(text)) == expected


@pytest.mark.parametrize("tokens, expected", [
    (["they", "'re", "n't", "here"], "They're not here"),
    (["he", "'d", "n't", "go"], "He'd not go"),
    (["it", "'s", "'s", "fine"], "It's is fine"),
    (["i", "'m", "'ll", "go"], "I'm will go"),
    (["n't", "now"], "Not now"),
    ([",", "'s", "it"], ", Is it"),
    (["they", "’", "re", "n't"], "They're not"),
    (["i", "like", "n't", "it"], "I like not it"),
    (["you", "could", "n't", "and", "wo", "n't"], "You couldn't and won't"),
])
def test_a_second_clitic_is_written_out_not_glued(tokens, expected):
    assert detokenize(tokens) == expected


@pytest.mark.parametrize("text, expected, raw", [
    ("see [this](https://x.com/a) now", "See this (<link>) now", "See [this](URL_TOKEN) now"),
    ("ask on /r/python or u/someone", "Ask on r/<subreddit> or u/<user>", "Ask on SUBREDDIT_TOKEN or USER_TOKEN"),
    ("https://x.com is down", "<link> is down", "URL_TOKEN is down"),
    ("read (http://x.org) first", "Read (<link>) first", "Read (URL_TOKEN) first"),
    ("read [the rules](http://x.org/r).", "Read the rules (<link>).", "Read [the rules](URL_TOKEN)."),
])
def test_placeholders_read_for_people_or_raw(text, expected, raw):
    assert detokenize(words(text)) == expected
    assert detokenize(words(text), raw_placeholders=True) == raw


def test_a_broken_markdown_link_around_a_placeholder():
    assert detokenize(["the", "system", "]", "(", URL_TOKEN]) == "The system (<link>)"
    assert detokenize(["the", "system", "]", "(", URL_TOKEN], raw_placeholders=True) == "The system](URL_TOKEN"
    assert detokenize([USER_TOKEN, "!"]) == "u/<user>!"
    assert set(PLACEHOLDER_TEXT) == {URL_TOKEN, SUBREDDIT_TOKEN, USER_TOKEN}


def test_a_stream_keeps_its_lines_and_the_raw_flag():
    tokens = ["i", "’", "m", "here", "\n", URL_TOKEN]
    assert detokenize_stream(tokens) == "I'm here\n<link>"
    assert detokenize_stream(tokens, raw_placeholders=True) == "I'm here\nURL_TOKEN"
    assert detokenize_stream(list("a\nb"), "char") == "a\nb"
