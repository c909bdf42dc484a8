"""Shared fixtures: a seeded generator and tiny corpora written by the tests themselves."""

import numpy as np
import pytest

REDDIT_CSV = (
    'body\n'
    '"I love this game. It\'s the best one, really!"\n'
    '"He left!\nThen he came back, with a dog."\n'
    '"Don\'t do that. I said: don\'t."\n'
    '"Emoji are fine 🙂 and so is café au lait."\n'
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def reddit_csv(tmp_path):
    path = tmp_path / "comments.csv"
    path.write_text(REDDIT_CSV, encoding="utf-8")
    return path


@pytest.fixture
def tiny_text(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("the cat sat on the mat.\nthe dog sat on the log.\na cat and a dog.\n", encoding="utf-8")
    return path
