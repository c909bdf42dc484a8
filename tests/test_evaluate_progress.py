"""`rnnlm evaluate` shows progress while tokenizing and while scoring: the library reports through callbacks,
the command draws bars on stderr (a terminal only), and --no-progress leaves stderr empty."""

from pathlib import Path

import numpy as np
import pytest

from rnnlm.cli import main, progress as cli_progress
from rnnlm.data.corpus import load_corpus
from rnnlm.data.text import tokenize_documents
from rnnlm.models.fast import FastRNN
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.reference import RNNNumpy
from rnnlm.training.stream import stream_total_loss

COMMENTS = Path(__file__).resolve().parent / "fixtures" / "comments.csv"


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(COMMENTS, vocabulary_size=60)


@pytest.mark.parametrize("make", [lambda v: FastRNN(v, 6, seed=0), lambda v: LanguageModel(v, 5, cell="gru", seed=0),
                                  lambda v: RNNNumpy(v, 4, seed=0)], ids=["fast", "lstm", "reference"])
def test_total_loss_reports_batches_and_gives_the_same_sum(corpus, make):
    model = make(len(corpus.vocabulary))
    X, Y = corpus.X * 3, corpus.Y * 3  # 138 sentences: batches of 64, 64 and 10
    seen = []
    total = model.total_loss(X, Y, progress=lambda done, n: seen.append((done, n)))
    assert total == model.total_loss(X, Y)
    n = 3
    assert seen == [(k, n) for k in range(1, n + 1)]


def test_tokenizing_reports_documents_done():
    documents = ["The first comment. It has two sentences.", "A second one!", "And a third, the last."]
    seen = []
    sentences, _ = tokenize_documents(documents, progress=lambda done, n: seen.append((done, n)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)] and len(sentences) == 4
    seen.clear()
    tokenize_documents(documents, format="tokens", progress=lambda done, n: seen.append((done, n)))
    assert seen == [(3, 3)]


def test_load_corpus_passes_progress_on():
    seen = []
    corpus = load_corpus(COMMENTS, vocabulary_size=60, progress=lambda done, n: seen.append((done, n)))
    assert seen[0][0] == 0 and seen[-1] == (corpus.report.documents,) * 2


def test_stream_loss_reports_windows():
    model = LanguageModel(20, 4, seed=0)
    X = np.arange(50).reshape(1, 50) % 20
    seen = []
    loss = stream_total_loss(model, X, (X + 1) % 20, 16, progress=lambda done, n: seen.append((done, n)))[0]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and loss == stream_total_loss(model, X, (X + 1) % 20, 16)[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    assert main(["train", str(COMMENTS), "--out", str(path), "--epochs", "1", "--vocab-size", "60", "--hidden", "6",
                 "--no-progress"]) == 0
    return path


def test_evaluate_draws_bars_on_a_terminal_and_none_with_no_progress(model_file, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    capsys.readouterr()
    monkeypatch.setattr(cli_progress, "_is_terminal", lambda stream: True)
    assert main(["evaluate", "--model", str(model_file), str(COMMENTS)]) == 0
    out, err = capsys.readouterr()
    assert "tokenizing" in err and "doc" in err and "scoring" in err and "batch" in err
    assert "perplexity: " in out and "tokenizing" not in out
    assert main(["evaluate", "--model", str(model_file), str(COMMENTS), "--no-progress"]) == 0
    quiet, err = capsys.readouterr()
    assert err == "" and quiet == out


def test_evaluate_draws_no_bar_off_a_terminal(model_file, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model_file), str(COMMENTS)]) == 0
    assert capsys.readouterr().err == ""
