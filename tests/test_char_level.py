"""Character-level models: a tiny poem in Chinese is learned well enough to be recited from its first characters.

The poem in fixtures/poem-zh.txt was written for this test: 8 lines of 5 to 7 characters,
each starting with a different character, so greedy decoding from that character must
reproduce the whole line (and stop at its end).
"""

from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm import cli
from rnnlm.data.corpus import load_corpus

from helpers import run

POEM = Path(__file__).parent / "fixtures" / "poem-zh.txt"
LINES = POEM.read_text(encoding="utf-8").split()


CHAR_TRAINING = ["--level", "char", "--vocab-size", "100", "--valid-fraction", "0", "--batch-size", "8",
                 "--bptt-truncate", "10", "--optimizer", "adam", "--learning-rate", "0.05", "--no-progress"]


def test_the_poem_fixture_is_what_the_test_assumes():
    assert len(LINES) == 8 and all(5 <= len(line) <= 7 for line in LINES)
    assert len({line[0] for line in LINES}) == 8


def test_char_corpus_is_one_sequence_of_code_points_per_line():
    corpus = load_corpus(POEM, vocabulary_size=100, level="char")
    assert [len(s) for s in corpus.sentences] == [len(line) for line in LINES]
    assert corpus.report.unknown_fraction == 0.0


@pytest.fixture(scope="module")
def poem_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("poem") / "poem.npz"
    assert cli.main(["train", str(POEM), "--out", str(path), "--hidden", "32", "--epochs", "150",
                     "--seed", "0", *CHAR_TRAINING]) == 0
    return path


def test_greedy_generation_recites_every_line_from_its_first_character(poem_model, capsys):
    loaded = ckpt.load_model(poem_model)
    assert loaded.level == "char" and loaded.kind == "fast-rnn"
    for line in LINES:
        code, out, err = run(capsys, "generate", "--model", poem_model, "--prefix", line[0], "--temperature", 0,
                             "-n", 1, "--min-length", 1)
        assert code == 0 and out == line + "\n", err


def test_longer_prefix_continues_the_line_and_sampling_is_reproducible(poem_model, capsys):
    line = LINES[2]
    code, out, _ = run(capsys, "generate", "--model", poem_model, "--prefix", line[:3], "--temperature", 0, "-n", 1)
    assert code == 0 and out == line + "\n"
    argv = ("generate", "--model", poem_model, "-n", 5, "--seed", 4, "--min-length", 3, "--max-length", 9)
    _, first, _ = run(capsys, *argv)
    _, second, _ = run(capsys, *argv)
    assert first == second and " " not in first
    assert all(3 <= len(s) <= 9 for s in first.splitlines())


def test_char_level_evaluate(poem_model, capsys):
    code, out, _ = run(capsys, "evaluate", "--model", poem_model, POEM)
    perplexity = float(out.split("perplexity: ")[1])
    # 8 equally likely first characters, then (almost) certain continuations
    assert code == 0 and perplexity < 2.0


@pytest.mark.parametrize("cell", ["gru", "lstm", "jordan"])
def test_char_level_gated_cells(tmp_path, capsys, cell):
    path = tmp_path / f"{cell}.npz"
    code, _, err = run(capsys, "train", POEM, "--out", path, "--cell", cell, "--hidden", "24", "--epochs", "120",
                       "--seed", "0", *CHAR_TRAINING)
    assert code == 0, err
    recited = 0
    for line in LINES:
        code, out, _ = run(capsys, "generate", "--model", path, "--prefix", line[0], "--temperature", 0, "-n", 1,
                           "--min-length", 1)
        recited += out == line + "\n"
    assert recited == 8, f"{cell} recited only {recited} of 8 lines"
    assert np.isfinite(ckpt.load_model(path).state.history[-1].train_loss)
