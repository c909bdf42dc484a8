"""The tutorial's model end to end (save, load, generate, evaluate), and `rnnlm info` on every kind of model file."""

import re
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io.checkpoint import load_model, save_model
from rnnlm.cli import main
from rnnlm.data.corpus import load_corpus
from rnnlm.models.generate import generate_sentence
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.reference import RNNNumpy
from rnnlm.training.tutorial import train_with_sgd

COMMENTS = Path(__file__).resolve().parent / "fixtures" / "comments.csv"
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(COMMENTS, vocabulary_size=60)


def test_rnnnumpy_trained_with_its_own_loop_saves_loads_and_generates(corpus, tmp_path, capsys):
    model = RNNNumpy(len(corpus.vocabulary), 8, seed=0)
    train_with_sgd(model, corpus.X[:20], corpus.Y[:20], learning_rate=0.01, nepoch=2)
    path = tmp_path / "ref.npz"
    save_model(path, model, corpus.vocabulary)
    checkpoint = load_model(path)
    assert isinstance(checkpoint.model, RNNNumpy) and checkpoint.kind == "reference-rnn"
    for name in "UVW":  # float64 kept, bit for bit
        np.testing.assert_array_equal(checkpoint.model.params[name], model.params[name])
    assert checkpoint.model.bptt_truncate == model.bptt_truncate
    # step() is forward_propagation's loop body: the same distribution at every position
    x = corpus.X[0]
    o, _ = model.forward_propagation(x)
    state = model.start_state(1)
    for t, token in enumerate(x):
        scores, state = model.step(state, np.array([token]))
        p = np.exp(scores[0] - scores[0].max())
        np.testing.assert_allclose(p / p.sum(), o[t], rtol=1e-12)
    tokens = generate_sentence(model, corpus.vocabulary, np.random.default_rng(0), min_length=0, max_length=12)
    assert 0 < len(tokens) <= 12 and "UNKNOWN_TOKEN" not in tokens
    code, out, _ = run(capsys, "generate", "--model", path, "-n", 3, "--seed", 1, "--min-length", 0)
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = run(capsys, "evaluate", "--model", path, COMMENTS)
    loss = model.calculate_loss(corpus.X, corpus.Y)
    assert code == 0 and f"cross-entropy: {loss:.4f}" in out


def _info(capsys, path=None):
    code, out, err = run(capsys, "info", *([] if path is None else ["--model", path]))
    assert code == 0, err
    return out


def test_info_on_the_bundled_model(capsys):
    out = _info(capsys)
    assert "kind: fast-rnn" in out and "vocabulary 2000, hidden 128" in out and "level: word" in out
    assert "528,384 parameters" in out
    assert re.search(r"most frequent: '\.' [\d,]+, 'the'", out)
    assert "training: 11 epochs" in out and "best validation: epoch 11" in out


def test_info_on_a_fast_rnn_trained_by_the_cli(tmp_path, capsys):
    path = tmp_path / "fast.npz"
    assert run(capsys, "train", COMMENTS, "--out", path, "--epochs", 2, *TINY)[0] == 0
    checkpoint = load_model(path)
    history = checkpoint.state.history
    out = _info(capsys, path)
    assert "kind: fast-rnn" in out and "hidden 8" in out and "resumable: yes" in out
    assert f"epoch 2: train loss {history[-1].train_loss:.4f}" in out
    words = [w for w in checkpoint.vocabulary.index_to_word if not w.isupper()]
    assert f"most frequent: {words[0]!r}" in out  # the vocabulary is ordered by count


def test_info_on_an_rnnnumpy_file(corpus, tmp_path, capsys):
    path = tmp_path / "ref.npz"
    save_model(path, RNNNumpy(len(corpus.vocabulary), 5, bptt_truncate=None, seed=0), corpus.vocabulary)
    out = _info(capsys, path)
    assert "kind: reference-rnn: RNNNumpy" in out and "bptt_truncate full" in out and "stored as float64" in out
    assert "training: none recorded" in out


def test_info_on_a_language_model_file(corpus, tmp_path, capsys):
    path = tmp_path / "lm.npz"
    model = LanguageModel(len(corpus.vocabulary), 6, cell="gru", num_layers=2, embed_size=4, seed=0)
    save_model(path, model, corpus.vocabulary, level="word")
    out = _info(capsys, path)
    n = sum(p.size for p in model.params.values())
    assert "kind: language-model" in out and "cell gru, layers 2, embedding 4" in out and f"{n:,} parameters" in out


def test_info_refuses_bad_input(tmp_path, capsys):
    code, _, err = run(capsys, "info", "--model", tmp_path / "missing.npz")
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, _, err = run(capsys, "info", "--words", 0)
    assert code == 2 and "--words" in err


def test_one_epoch_is_singular_in_info_and_evaluate(tmp_path, capsys):
    path = tmp_path / "one.npz"
    assert run(capsys, "train", COMMENTS, "--out", path, "--epochs", 1, *TINY)[0] == 0
    out = _info(capsys, path)
    assert "training: 1 epoch;" in out and "over 1 epoch," in out and "1 epochs" not in out
    code, out, _ = run(capsys, "evaluate", COMMENTS, "--model", path)
    assert code == 0 and "trained 1 epoch." in out
